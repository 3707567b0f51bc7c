"""Source paths that are not regular files: refused in one line, at once.

Each build runs in its own process, through manual_dir, as a user's would;
the process has a 2 GiB address-space limit (so that a reader that reads an
endless device fails there, not on the machine) and a guard of 120 s (a
reader that blocks on a pipe would otherwise hang the suite; not a timing
threshold). To check that these cases fail on another version of the
readers, point IMAGENET_RESIZED_READERS at the root of its checkout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile

import pytest

from conftest import REPO
from imagenet_resized.tools import fake
from imagenet_resized.ilsvrc import layout
from imagenet_resized.readers import regular_files
from imagenet_resized.authors import discovery
from imagenet_resized.common import SourceError

READERS = os.environ.get('IMAGENET_RESIZED_READERS', str(REPO))
SIZE = 8
GUARD_S = 120
EXPECTED = "expected a regular file: one of the authors' archives or batch files"

_CHILD = r'''
import resource, sys
limit = 2 << 30
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.path[:0] = [{readers!r}, {tests!r}]
kind, root = {kind!r}, {root!r}
if kind == 'build':
  from conftest import build
  build({config!r}, root, {data_dir!r})
else:  # Reads every ILSVRC image of the validation split, as a build would.
  from imagenet_resized.ilsvrc import finding, split_examples
  for unit in split_examples.work_units(finding.find_sources(root)['validation']):
    for item in unit.images():
      pass
print('done')
'''


def _run(kind: str, root, data_dir=None, config=f'{SIZE}x{SIZE}') -> str:
  """Runs a build (or an ILSVRC read) in a fresh process; its last line."""
  script = _CHILD.format(
      readers=READERS, tests=str(REPO / 'tests'), kind=kind, root=str(root),
      config=config, data_dir=str(data_dir),
  )
  try:
    proc = subprocess.run(
        [sys.executable, '-c', script], capture_output=True, text=True,
        timeout=GUARD_S, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'),
        check=False,
    )
  except subprocess.TimeoutExpired:
    pytest.fail(f'no answer within {GUARD_S} s (the reader blocks)')
  assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
  return proc.stderr.strip().splitlines()[-1]


def _refusal(path, what: str, expected: str = EXPECTED) -> str:
  return (
      f'imagenet_resized.common.SourceError: {path}: is {what}, not a'
      f' regular file; {expected}'
  )


@pytest.mark.slow
def test_a_pipe_named_like_an_npz_batch_is_refused(tmp_path):
  manual = tmp_path / 'manual'
  fake.write_sources(str(manual), SIZE, zipped=False, train_batches=2, examples_per_batch=4)
  pipe = manual / 'Imagenet8_train_npz' / 'train_data_batch_2.npz'
  pipe.unlink()
  os.mkfifo(pipe)
  assert _run('build', manual, tmp_path / 'data') == _refusal(pipe, 'a named pipe (FIFO)')


@pytest.mark.slow
def test_a_pipe_named_like_a_pickle_batch_is_refused(tmp_path):
  manual = tmp_path / 'manual'
  fake.write_sources(
      str(manual), SIZE, fmt='pickle', zipped=False, train_batches=2,
      examples_per_batch=4,
  )
  pipe = manual / 'Imagenet8_train' / 'train_data_batch_1'
  pipe.unlink()
  os.mkfifo(pipe)
  assert _run('build', manual, tmp_path / 'data') == _refusal(pipe, 'a named pipe (FIFO)')


@pytest.mark.slow
def test_a_pipe_named_like_an_archive_is_refused(tmp_path):
  manual = tmp_path / 'manual'
  fake.write_sources(str(manual), SIZE, train_batches=2, examples_per_batch=4)
  pipe = manual / 'Imagenet8_val_npz.zip'
  pipe.unlink()
  os.mkfifo(pipe)
  assert _run('build', manual, tmp_path / 'data') == _refusal(pipe, 'a named pipe (FIFO)')


@pytest.mark.slow
@pytest.mark.parametrize('fmt', ['npz', 'pickle'])
def test_a_link_to_dev_zero_as_a_batch_is_refused(fmt, tmp_path):
  manual = tmp_path / 'manual'
  fake.write_sources(
      str(manual), SIZE, fmt=fmt, zipped=False, train_batches=2,
      examples_per_batch=4,
  )
  ext = '.npz' if fmt == 'npz' else ''
  link = manual / f'Imagenet8_val{"_npz" if ext else ""}' / f'val_data{ext}'
  link.unlink()
  os.symlink('/dev/zero', link)
  assert _run('build', manual, tmp_path / 'data') == _refusal(
      link, 'a character device (a link to /dev/zero)'
  )


def test_a_socket_named_like_a_batch_is_refused():
  # A short folder: a socket's path is at most 107 bytes.
  with tempfile.TemporaryDirectory(dir='/tmp') as folder:
    fake.write_sources(folder, SIZE, zipped=False, train_batches=1, examples_per_batch=4)
    path = os.path.join(folder, 'Imagenet8_val_npz', 'val_data.npz')
    os.unlink(path)
    with socket.socket(socket.AF_UNIX) as s:
      s.bind(path)
      with pytest.raises(SourceError) as e:
        discovery.find_sources(folder, SIZE)
    assert str(e.value) == f'{path}: is a socket, not a regular file; {EXPECTED}'


@pytest.mark.slow
def test_a_pipe_named_like_the_ilsvrc_tarball_is_refused(tmp_path):
  manual = tmp_path / 'manual'
  (manual / 'train' / 'n01440764').mkdir(parents=True)
  (manual / 'train' / 'n01440764' / 'x.JPEG').write_bytes(b'')
  manual.mkdir(exist_ok=True)
  pipe = manual / layout.VAL_TAR
  os.mkfifo(pipe)
  assert _run('ilsvrc', manual) == _refusal(
      pipe, 'a named pipe (FIFO)',
      'expected a regular file: the ILSVRC2012 tarball as downloaded',
  )


@pytest.mark.slow
def test_a_device_among_the_validation_images_is_refused(tmp_path):
  """Not skipped either: a split silently missing an image differs."""
  manual = tmp_path / 'manual'
  (manual / 'train' / 'n01440764').mkdir(parents=True)
  (manual / 'train' / 'n01440764' / 'x.JPEG').write_bytes(b'')
  (manual / 'val').mkdir()
  (manual / 'val' / 'ILSVRC2012_val_00000002.JPEG').write_bytes(b'')
  link = manual / 'val' / 'ILSVRC2012_val_00000001.JPEG'
  os.symlink('/dev/zero', link)
  assert _run('ilsvrc', manual) == _refusal(
      link, 'a character device (a link to /dev/zero)',
      'expected a regular file: a JPEG (or PNG) image',
  )


def test_reads_stop_at_the_size_when_opened(tmp_path):
  path = tmp_path / 'f'
  path.write_bytes(b'abc')
  with regular_files.open_regular(str(path), 'expected x') as f:
    with open(path, 'ab') as grow:
      grow.write(b'def' * 1000)
    assert f.size == 3
    assert f.read() == b'abc'
    assert f.seek(0, os.SEEK_END) == 3 and f.read(10) == b''
    f.seek(0)
    assert f.read(100) == b'abc'


def test_the_kind_is_that_of_the_opened_file_not_of_the_name(tmp_path):
  """A name swapped after it was opened does not change what is read."""
  path = tmp_path / 'val_data'
  path.write_bytes(b'regular')
  with regular_files.open_regular(str(path), 'expected x') as f:
    path.unlink()
    os.symlink('/dev/zero', path)
    assert f.read() == b'regular'
  with pytest.raises(SourceError, match='is a character device'):
    regular_files.open_regular(str(path), 'expected x')
