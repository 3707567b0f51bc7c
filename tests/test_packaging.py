"""What `pip install .` and `tfds build` give a user."""

import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest
import tensorflow_datasets as tfds

from conftest import DUMMY_DATA, REPO, TFDS_CLI, read_split, run

# Every test here builds a dataset or runs processes.
pytestmark = pytest.mark.slow


def check_built(data_dir: pathlib.Path, config: str):
  import imagenet_resized  # noqa: F401
  builder = tfds.builder(f'imagenet_resized/{config}', data_dir=str(data_dir))
  assert builder.is_prepared()
  size = int(config.split('x')[0])
  images = read_split(builder, 'validation')
  assert len(images) == 5 and images[0][0].shape == (size, size, 3)
  assert builder.info.metadata['sources']['train']['form'] == 'npz zip'


def test_tfds_build_with_imports(tmp_path):
  """The installed package, from an unrelated folder."""
  run([TFDS_CLI, 'build', 'imagenet_resized', '--imports', 'imagenet_resized',
       '--config', '32x32', '--manual_dir', str(DUMMY_DATA),
       '--data_dir', str(tmp_path / 'data')], cwd=tmp_path)
  check_built(tmp_path / 'data', '32x32')


def test_tfds_build_from_the_repo_folder(tmp_path):
  run([TFDS_CLI, 'build', 'imagenet_resized/', '--config', '16x16',
       '--manual_dir', str(DUMMY_DATA), '--data_dir', str(tmp_path / 'data')],
      cwd=REPO)
  check_built(tmp_path / 'data', '16x16')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> zipfile.ZipFile:
  out = tmp_path_factory.mktemp('wheel')
  # Build from a copy, so the checkout gets no build/ or egg-info litter.
  src = out / 'src'
  shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(
      '.git', '__pycache__', 'build', '*.egg-info', 'dist'))
  run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', str(out), str(src)],
      cwd=out)
  (path,) = out.glob('imagenet_resized-0.1.0-*.whl')
  return zipfile.ZipFile(path)


def test_wheel_ships_data_files_as_real_files(wheel):
  names = set(wheel.namelist())
  for f in ('labels.txt', 'checksums.tsv'):
    assert wheel.read(f'imagenet_resized/{f}') == (REPO / f).read_bytes()
  assert len(wheel.read('imagenet_resized/labels.txt').split()) == 1000
  for f in ('README.md', 'CITATIONS.bib', 'TAGS.txt'):
    assert f'imagenet_resized/{f}' in names, f
  # Every module of the package and of each of its wings (sub-packages).
  modules = {
      p.relative_to(REPO).as_posix()
      for p in (REPO / 'imagenet_resized').rglob('*.py')
  }
  assert len({m.count('/') for m in modules}) == 2  # The top and the wings.
  assert modules <= names, sorted(modules - names)
  assert not any(n.startswith(('tests/', 'dummy_data/', 'benchmarks/')) for n in names)


def test_wheel_metadata_declares_dependencies(wheel):
  """What `pip install .` alone must bring for `tfds build` and `tfds.load`."""
  (meta,) = [n for n in wheel.namelist() if n.endswith('.dist-info/METADATA')]
  requires = [
      line.split(':', 1)[1].strip().replace('_', '-').lower()
      for line in wheel.read(meta).decode().splitlines()
      if line.startswith('Requires-Dist:')
  ]
  runtime = {r.split('>')[0].split('<')[0].split('=')[0] for r in requires if 'extra' not in r}
  assert runtime == {
      'tensorflow', 'tensorflow-datasets', 'numpy', 'pillow', 'importlib-resources',
      'apache-beam', 'mlcroissant', 'deflate', 'google-crc32c', 'zlib-ng',
  }
  assert not any("extra == 'beam'" in r.replace('"', "'") for r in requires)
  assert 'Requires-Python: >=3.11' in wheel.read(meta).decode()


_READ_INSTALLED = """
import pathlib, sys
import imagenet_resized
from imagenet_resized import labels, resources
installed = pathlib.Path(sys.argv[1]).resolve()
package = pathlib.Path(imagenet_resized.__file__).resolve().parent
assert package.parent == installed, package
for path in (resources.path('labels.txt'), imagenet_resized.Builder._checksums_path):
  assert pathlib.Path(str(path)).resolve().parent == package, path
print(len(resources.wnids()), len(resources.checksums()), labels.NAMES[0])
"""


def test_installed_package_reads_installed_data(wheel, tmp_path):
  """The wheel, installed (unpacked) away from any checkout, reads its data
  files (labels, names, checksums) from its own folder."""
  installed = tmp_path / 'site'
  wheel.extractall(installed)
  elsewhere = tmp_path / 'elsewhere'
  elsewhere.mkdir()
  env = dict(os.environ, PYTHONPATH=str(installed))
  done = subprocess.run(
      [sys.executable, '-c', _READ_INSTALLED, str(installed)], cwd=elsewhere,
      env=env, capture_output=True, text=True, check=False,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  assert done.stdout.split('\n')[-2] == '1000 9 kit fox'
