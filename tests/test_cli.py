"""The command line, run as a user runs it: `python -m imagenet_resized ...`."""

import csv
import importlib
import io
import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import imagenet_resized
import fake_helpers
from conftest import REPO, build, read_split
from imagenet_resized.tools import fake, picture_grid
from imagenet_resized import labels
from imagenet_resized.authors import discovery, publication
from imagenet_resized import common

# Subprocesses import the package this test imports (checkout or installed).
PACKAGE_ROOT = pathlib.Path(imagenet_resized.__file__).resolve().parent.parent

TFDS_2012_WNIDS = (
    pathlib.Path(tfds.__file__).parent / 'datasets/imagenet2012/labels.txt'
).read_text().split()

# The fake sources of the show/build tests: one config, pickle zips, all knobs.
CONFIG, SIZE = '8x8', 8
FAKE_ARGS = dict(fmt='pickle', train_batches=2, examples_per_batch=6, val_examples=7, seed=3)


def run_cli(*args, cwd=None):
  """Runs the command line in a fresh Python; returns the CompletedProcess."""
  env = dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT))
  return subprocess.run(
      [sys.executable, '-m', 'imagenet_resized', *map(str, args)],
      capture_output=True, text=True, env=env, cwd=cwd or PACKAGE_ROOT, check=False,
  )


def one_error_line(result) -> str:
  """The single stderr line of a failed run (no traceback, no other output)."""
  assert result.returncode != 0, result.stdout
  lines = result.stderr.splitlines()
  assert len(lines) == 1, result.stderr
  return lines[0]


# ---------------------------------------------------------------------------
# labels


@pytest.mark.slow
def test_labels_csv_lists_the_1000_classes():
  result = run_cli('labels')
  assert result.returncode == 0 and result.stderr == ''
  rows = list(csv.reader(io.StringIO(result.stdout)))
  assert rows[0] == ['label', 'wnid', 'name', 'imagenet2012_label']
  assert len(rows) == 1001
  for k, row in enumerate(rows[1:]):
    wnid = labels.WNIDS[k]
    assert row == [str(k), wnid, labels.NAMES[k], str(TFDS_2012_WNIDS.index(wnid))]
  assert rows[1][:3] == ['0', 'n02119789', 'kit fox']


# ---------------------------------------------------------------------------
# help


@pytest.mark.slow
def test_help_explains_each_command():
  result = run_cli('--help')
  assert result.returncode == 0
  for command in ('labels', 'show', 'fake'):
    assert f'    {command} ' in result.stdout
  show = run_cli('show', '--help').stdout
  for option in ('--config', '--split', '--data-dir', '-n', '-o'):
    assert f'{option} ' in show
  fake_help = run_cli('fake', '--help').stdout
  for option in ('--config', '--out', '--format', '--train-batches',
                 '--examples-per-batch', '--val-examples', '--seed', '--dummy-data'):
    assert f'{option} ' in fake_help


# ---------------------------------------------------------------------------
# fake


@pytest.fixture(scope='module')
def fake_sources(tmp_path_factory) -> pathlib.Path:
  """Written by the command line, with every knob set."""
  out = tmp_path_factory.mktemp('fake_cli')
  result = run_cli(
      'fake', '--config', CONFIG, '--out', out, '--format', FAKE_ARGS['fmt'],
      '--train-batches', FAKE_ARGS['train_batches'],
      '--examples-per-batch', FAKE_ARGS['examples_per_batch'],
      '--val-examples', FAKE_ARGS['val_examples'], '--seed', FAKE_ARGS['seed'],
  )
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == [
      str(out / name) for name in
      publication.archive_names(SIZE, common.TRAIN, npz=False)
      + publication.archive_names(SIZE, common.VALIDATION, npz=False)
  ]
  return out


@pytest.mark.slow
def test_fake_writes_the_authors_names_as_write_sources_does(fake_sources, tmp_path):
  assert sorted(os.listdir(fake_sources)) == ['Imagenet8_train.zip', 'Imagenet8_val.zip']
  fake.write_sources(str(tmp_path), SIZE, **FAKE_ARGS)
  for name in os.listdir(fake_sources):
    assert (fake_sources / name).read_bytes() == (tmp_path / name).read_bytes()


@pytest.mark.slow
def test_fake_dummy_data_reproduces_the_bundled_dummy_data(dummy_data, tmp_path):
  result = run_cli('fake', '--dummy-data', '--out', tmp_path)
  assert result.returncode == 0, result.stderr
  assert sorted(os.listdir(tmp_path)) == sorted(os.listdir(dummy_data))
  for name in os.listdir(dummy_data):
    assert (tmp_path / name).read_bytes() == (dummy_data / name).read_bytes(), name


def _expected_split(source_dir: pathlib.Path, split: str) -> list[tuple[bytes, int]]:
  """(pixels, 0-based label) of every example of a split of fake sources."""
  found = discovery.find_sources(str(source_dir), SIZE)[split]
  expected = []
  for batch in found.batches:
    for chunk in batch.chunks(SIZE):
      expected += [(img.tobytes(), int(lbl)) for img, lbl in zip(chunk.images, chunk.labels)]
  return expected


@pytest.fixture(scope='module')
def built(fake_sources, tmp_path_factory):
  """The fake sources built with TFDS (the default tfrecord format)."""
  data_dir = tmp_path_factory.mktemp('data_cli')
  return build(CONFIG, fake_sources, data_dir)


@pytest.mark.slow
def test_fake_sources_build_into_their_examples(fake_sources, built):
  for split in common.SPLITS:
    got = read_split(built, split)
    expected = _expected_split(fake_sources, split)
    # TFDS orders examples by key hash: compare as sorted lists.
    assert sorted((img.tobytes(), label) for img, label in got) == sorted(expected)
  # The labels as stored (1..1000), read straight from the archive.
  with zipfile.ZipFile(fake_sources / 'Imagenet8_val.zip') as zf:
    stored = fake_helpers.read_batch_file(zf.read('val_data'), is_npz=False)['labels']
  assert sorted(label for _, label in expected) == sorted(np.asarray(stored) - 1)


# ---------------------------------------------------------------------------
# show


SHOWN = 7  # In 3 rows of 3, the last two cells blank.


@pytest.fixture(scope='module')
def shown(built, tmp_path_factory) -> pathlib.Path:
  """The grid `show` draws of the tfrecord build's first validation examples."""
  output = tmp_path_factory.mktemp('show') / 'grid.png'
  result = run_cli(
      'show', '--config', CONFIG, '--split', 'validation',
      '--data-dir', built.data_dir_root, '-n', SHOWN, '-o', output,
  )
  assert result.returncode == 0, result.stderr
  assert result.stdout == (
      f'{output}: {SHOWN} examples of imagenet_resized/{CONFIG} validation,'
      ' 400x448 pixels\n'
  )
  return output


@pytest.mark.slow
def test_show_draws_the_first_examples_upscaled(built, shown):
  with Image.open(shown) as picture:
    assert picture.format == 'PNG'
    grid = np.asarray(picture.convert('RGB'))
  # 8x8 pictures enlarged 16 times to 128 pixels, in a near-square grid.
  scale, rows, columns = 128 // SIZE, 3, 3
  assert picture_grid.scale_for(SIZE) == scale
  pad, caption = picture_grid.PAD_PX, picture_grid.CAPTION_PX
  assert picture.size == (
      pad + columns * (128 + pad), pad + rows * (128 + caption + pad)
  ) == (400, 448)
  examples = read_split(built, 'validation')[:SHOWN]
  for index, (image, label) in enumerate(examples):
    x, y = picture_grid.cell_origin(index, SHOWN, SIZE)
    upscaled = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    np.testing.assert_array_equal(grid[y:y + 128, x:x + 128], upscaled)
    # A caption is drawn under each picture.
    band = grid[y + 128:y + 128 + caption, x:x + 128]
    assert (band < 128).any(), labels.NAMES[label]
  for index in range(SHOWN, rows * columns):  # Cells left over stay blank.
    x, y = picture_grid.cell_origin(index, SHOWN, SIZE)
    assert (grid[y:y + 128 + caption, x:x + 128] == 255).all()


@pytest.mark.slow
def test_show_draws_array_record_as_tfrecord(fake_sources, shown, tmp_path):
  data_dir = tmp_path / 'array_record'
  builder = tfds.builder(
      f'imagenet_resized/{CONFIG}', data_dir=str(data_dir), file_format='array_record'
  )
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(fake_sources))
  )
  output = tmp_path / 'grid.png'
  result = run_cli(
      'show', '--config', CONFIG, '--split', 'validation', '--data-dir', data_dir,
      '-n', SHOWN, '-o', output,
  )
  assert result.returncode == 0 and result.stderr == ''
  assert output.read_bytes() == shown.read_bytes()


# ---------------------------------------------------------------------------
# A user's mistakes: one line, non-zero exit.


@pytest.mark.slow
def test_unknown_config():
  line = one_error_line(run_cli('show', '--config', '7x7', '--split', 'train', '-o', 'g.png'))
  assert line == (
      "imagenet-resized show: error: argument --config: invalid choice: '7x7'"
      " (choose from '8x8', '16x16', '32x32', '64x64', '8x8_ilsvrc2012',"
      " '16x16_ilsvrc2012', '32x32_ilsvrc2012', '64x64_ilsvrc2012', '16x16_120')"
      ' (see imagenet-resized show --help)'
  )


@pytest.mark.slow
def test_missing_dataset(tmp_path):
  result = run_cli(
      'show', '--config', '16x16', '--split', 'train', '--data-dir', tmp_path,
      '-o', tmp_path / 'g.png',
  )
  assert one_error_line(result) == (
      f'imagenet-resized: error: imagenet_resized/16x16 is not prepared in'
      f' {tmp_path}/imagenet_resized/16x16/0.1.0: build it first (tfds build'
      ' imagenet_resized --imports imagenet_resized --config 16x16'
      f' --manual_dir DIR --data_dir {tmp_path})'
  )
  assert result.returncode == 1
  assert not (tmp_path / 'g.png').exists()


@pytest.mark.slow
def test_bad_data_dir(tmp_path):
  missing = tmp_path / 'nowhere'
  result = run_cli(
      'show', '--config', CONFIG, '--split', 'train', '--data-dir', missing,
      '-o', tmp_path / 'g.png',
  )
  assert one_error_line(result) == (
      f'imagenet-resized: error: --data-dir {missing}: no such folder;'
      ' expected the data_dir the dataset was built into'
  )


@pytest.mark.slow
def test_unknown_split(built, tmp_path):
  result = run_cli(
      'show', '--config', CONFIG, '--split', 'test',
      '--data-dir', built.data_dir_root, '-o', tmp_path / 'g.png',
  )
  assert one_error_line(result) == (
      "imagenet-resized: error: --split test: Unknown split 'test'. Should be"
      " one of ['train', 'validation']."
  )


@pytest.mark.slow
def test_unwritable_output(built, tmp_path):
  output = tmp_path / 'no_such_folder' / 'g.png'
  result = run_cli(
      'show', '--config', CONFIG, '--split', 'train',
      '--data-dir', built.data_dir_root, '-o', output,
  )
  assert one_error_line(result) == (
      f'imagenet-resized: error: {output}: cannot write the picture (no'
      f' folder {output.parent})'
  )


@pytest.mark.slow
def test_fake_out_is_a_file(tmp_path):
  not_a_folder = tmp_path / 'file'
  not_a_folder.write_text('')
  result = run_cli('fake', '--config', '16x16', '--out', not_a_folder)
  assert one_error_line(result) == (
      f'imagenet-resized: error: --out {not_a_folder}: exists and is not a folder'
  )


@pytest.mark.slow
@pytest.mark.parametrize('args, message', [
    (['fake', '--config', '8x8', '--out', 'x', '--train-batches', '11'],
     "imagenet-resized fake: error: argument --train-batches: 11 is not in 1..10"),
    (['fake', '--config', '8x8', '--out', 'x', '--val-examples', 'many'],
     "imagenet-resized fake: error: argument --val-examples: 'many' is not a whole number"),
    (['fake', '--out', 'x'],
     'imagenet-resized fake: error: one of the arguments --config --dummy-data is required'),
    (['show', '--config', '8x8', '--split', 'train'],
     'imagenet-resized show: error: the following arguments are required: -o/--output'),
    ([], 'imagenet-resized: error: the following arguments are required: COMMAND'),
    (['build'],
     "imagenet-resized: error: argument COMMAND: invalid choice: 'build'"
     " (choose from 'labels', 'show', 'fake', 'arrays')"),
])
def test_usage_errors(args, message, tmp_path):
  result = run_cli(*args, cwd=tmp_path)
  assert result.returncode == 2
  prog = message.split(': error:')[0]
  assert one_error_line(result) == f'{message} (see {prog} --help)'
  assert os.listdir(tmp_path) == []


def test_console_script_entry_point_runs_main(capsys):
  """`imagenet-resized` (pyproject's [project.scripts]) calls __main__.main."""
  declared = re.search(
      r'^imagenet-resized = "(.+):(.+)"$', (REPO / 'pyproject.toml').read_text(), re.M
  )
  main = getattr(importlib.import_module(declared[1]), declared[2])
  assert main(['labels']) == 0
  kit_fox_2012 = TFDS_2012_WNIDS.index('n02119789')
  assert capsys.readouterr().out.splitlines()[1] == f'0,n02119789,kit fox,{kit_fox_2012}'
  assert main([
      'show', '--config', '8x8', '--split', 'train',
      '--data-dir', '/nonexistent', '-o', 'g.png',
  ]) == 1
  assert capsys.readouterr().err == (
      'imagenet-resized: error: --data-dir /nonexistent: no such folder;'
      ' expected the data_dir the dataset was built into\n'
  )


def test_long_captions_are_shortened_to_their_picture():
  images = [np.zeros((SIZE, SIZE, 3), np.uint8)] * 2
  long_name = max(labels.NAMES, key=len)
  grid = np.asarray(picture_grid.draw_grid(images, [long_name, long_name]))
  tile, caption = 128, picture_grid.CAPTION_PX
  x, y = picture_grid.cell_origin(1, 2, SIZE)
  # The white gaps beside each caption stay white; the captions have ink.
  band = grid[y + tile:y + tile + caption]
  assert (band[:, :picture_grid.PAD_PX] == 255).all()
  assert (band[:, x - picture_grid.PAD_PX:x] == 255).all()
  assert (band[:, x + tile:] == 255).all()
  assert (band[:, x:x + tile] < 128).any()


# Loaded first by every Python started with it on PYTHONPATH: when TensorFlow
# starts to import, writes a line to file descriptor 2 (as TensorFlow's C++
# start-up logging does, below Python's sys.stderr), whatever TensorFlow itself
# prints on this machine.
_IMPORT_NOISE = """
import os, sys

class _Noise:
  def find_spec(self, name, path=None, target=None):
    if name == 'tensorflow':
      sys.meta_path.remove(self)
      os.write(2, b'%s\\n')
    return None

sys.meta_path.insert(0, _Noise())
"""
NOISE_LINE = 'I0000 fake_cpp_logging.cc:1] TensorFlow starts to import'


@pytest.mark.slow
def test_show_speaks_only_for_itself(built, tmp_path):
  """TensorFlow's start-up logging stays out of the output, unless --verbose."""
  hook = tmp_path / 'hook'
  hook.mkdir()
  (hook / 'sitecustomize.py').write_text(_IMPORT_NOISE % NOISE_LINE)
  env = {k: v for k, v in os.environ.items() if not k.startswith('TF_CPP')}
  env['PYTHONPATH'] = str(hook)  # The hook only: the package is the installed one.
  # The hook does speak when TensorFlow is imported.
  noise = subprocess.run([sys.executable, '-c', 'import tensorflow'], capture_output=True,
                         text=True, env=env, check=True).stderr
  assert NOISE_LINE in noise.splitlines()
  script = shutil.which('imagenet-resized', path=os.path.dirname(sys.executable))
  args = ['show', '--config', CONFIG, '--split', 'validation',
          '--data-dir', built.data_dir_root, '-n', '4', '-o', str(tmp_path / 'g.png')]
  expected = (
      f'{tmp_path / "g.png"}: 4 examples of imagenet_resized/{CONFIG} validation,'
      ' 268x300 pixels\n'
  )
  for command in ([script], [sys.executable, '-m', 'imagenet_resized']):
    result = subprocess.run(command + args, capture_output=True, text=True, env=env,
                            cwd=tmp_path, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, expected, '')
    # With --verbose, what importing TensorFlow prints comes back.
    verbose = subprocess.run(command + ['--verbose'] + args, capture_output=True,
                             text=True, env=env, cwd=tmp_path, check=False)
    assert (verbose.returncode, verbose.stdout) == (0, expected), verbose.stderr
    assert NOISE_LINE in verbose.stderr.splitlines()
    for line in noise.splitlines():
      if 'absl::InitializeLog' in line:  # Timestamps differ; this line does not.
        assert line in verbose.stderr
