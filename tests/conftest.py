"""Shared fixtures: fake sources made by the repo's own writer, deterministic."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

# Quieter TensorFlow in test logs.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

REPO = pathlib.Path(__file__).resolve().parent.parent
DUMMY_DATA = REPO / 'dummy_data'


@pytest.fixture(scope='session')
def repo_root() -> pathlib.Path:
  return REPO


@pytest.fixture(scope='session')
def dummy_data() -> pathlib.Path:
  return DUMMY_DATA


def source_examples(manual_dir, size: int, split: str) -> list:
  """(key, HWC image, 0-based label) of a split's npz zips in `manual_dir`.

  Read with plain zipfile and numpy, independently of the package's reader:
  each row's planes are stacked by hand (R, G, B), so a wrong transpose or
  channel order in the package cannot hide here too. Keys are TFDS's (member
  path + row index).
  """
  import io
  import zipfile
  import numpy as np
  from imagenet_resized.authors import publication
  plane = size * size
  out = []
  for name in publication.archive_names(size, split):
    with zipfile.ZipFile(os.path.join(manual_dir, name)) as zf:
      for member in zf.namelist():
        with np.load(io.BytesIO(zf.read(member)), allow_pickle=False) as z:
          data, labels = z['data'], z['labels']
        for i, (row, label) in enumerate(zip(data, labels)):
          image = np.stack(
              [row[c * plane : (c + 1) * plane].reshape(size, size) for c in range(3)],
              axis=-1,
          )
          out.append((f'{member}{i}', image, int(label) - 1))
  return out


def build(config: str, manual_dir, data_dir, **download_config):
  """Builds `imagenet_resized/<config>` from `manual_dir`; returns the builder."""
  import tensorflow_datasets as tfds
  import imagenet_resized  # noqa: F401  (registers the builder)

  builder = tfds.builder(f'imagenet_resized/{config}', data_dir=str(data_dir))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
          manual_dir=str(manual_dir), **download_config
      )
  )
  return builder


def read_split(builder, split: str, decoders=None):
  """All (key-free) examples of a split in file order: list of (image, label)."""
  import tensorflow_datasets as tfds
  ds = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
  return [(ex['image'], int(ex['label'])) for ex in tfds.as_numpy(ds)]



def batched_arrays(ds):
  """(images, labels) of a batched tf.data dataset of examples."""
  import numpy as np
  import tensorflow_datasets as tfds
  batches = list(tfds.as_numpy(ds))
  return (
      np.concatenate([b['image'] for b in batches]),
      np.concatenate([b['label'] for b in batches]).astype(np.int64),
  )


def tfds_index_order(builder, split: str, via: str = 'auto'):
  """(images, labels) of a split in TFDS's index order, read by TFDS.

  via: 'dataset' (as_dataset over the shards one after another,
  interleave_cycle_length=1), 'source' (as_data_source by index), or 'auto'
  (as_dataset for TFRecord, else as_data_source).
  """
  import numpy as np
  import tensorflow_datasets as tfds
  if via == 'auto':
    tfrecord = builder.info.file_format == tfds.core.FileFormat.TFRECORD
    via = 'dataset' if tfrecord else 'source'
  if via == 'source':
    source = builder.as_data_source(split=split)
    examples = [source[i] for i in range(len(source))]
    return (
        np.stack([e['image'] for e in examples]),
        np.array([int(e['label']) for e in examples], np.int64),
    )
  return batched_arrays(builder.as_dataset(
      split=split, shuffle_files=False, batch_size=1024,
      read_config=tfds.ReadConfig(interleave_cycle_length=1),
  ))


def assert_same_examples(found, want, what: str) -> None:
  """(images, labels) pairs equal row by row; names the first row that differs."""
  import numpy as np
  (images, labels), (want_images, want_labels) = found, want
  assert len(images) == len(labels) == len(want_labels) == len(want_images), (
      f'{what}: {len(labels)} examples, expected {len(want_labels)}'
  )
  same = (images == want_images).all(axis=(1, 2, 3)) & (labels == want_labels)
  if not same.all():
    i = int(np.argmin(same))
    pytest.fail(f'{what}: row {i} of {len(same)} differs ({int((~same).sum())} rows do)')

TFDS_CLI = shutil.which('tfds', path=os.path.dirname(sys.executable)) or shutil.which('tfds')


def run(args, cwd, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
  """Runs a command as a user would (no PYTHONPATH); asserts success if `check`."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  env.pop('PYTHONPATH', None)
  proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, **kwargs)
  if check:
    assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def pytest_collection_modifyitems(config, items):
  """Drops tf.test.TestCase's `test_session`, a helper that is 'Not a test'."""
  del config
  items[:] = [i for i in items if i.name != 'test_session']


# ---------------------------------------------------------------------------
# The fast tier (`pytest -m "not slow"`) stays fast: there, a test not marked
# `slow` that starts a process (subprocess, fork, a multiprocessing pool),
# builds a dataset, or asks the network (a DNS lookup, a socket connection)
# fails at once, saying so; and so does collecting the tests, which must do
# none of that and write no tarball.

_REFUSING = False  # Collecting, or running a test not marked slow.
_COLLECTING = False
_REFUSED: list[str] = []  # What was refused, also in a thread of the test.


class SlowTestNotMarked(Exception):
  pass


def _refuse_if_unmarked(what: str) -> None:
  if _REFUSING:
    where = 'collecting the tests' if _COLLECTING else 'this test'
    _REFUSED.append(
        f'{where} {what}: mark it @pytest.mark.slow (see pyproject.toml)'
    )
    raise SlowTestNotMarked(_REFUSED[-1])


def _fast_tier(config) -> bool:
  return 'not slow' in (config.getoption('markexpr', '') or '')


def _guard(owner, name: str, what: str, when=None) -> None:
  """Wraps `owner.name` so that it refuses (`_refuse_if_unmarked`)."""
  original = getattr(owner, name)

  def guarded(*args, **kwargs):
    if when is None or when(*args, **kwargs):
      _refuse_if_unmarked(what)
    return original(*args, **kwargs)

  setattr(owner, name, guarded)


def _writes_a_tar(self, name=None, mode='r', *args, **kwargs) -> bool:
  del self, name, args, kwargs
  return _COLLECTING and mode[:1] in 'wax'


def pytest_configure(config):
  if not _fast_tier(config):
    return
  import multiprocessing.process
  import socket
  import tarfile
  _guard(subprocess.Popen, '__init__', 'starts a process')
  _guard(os, 'fork', 'forks a process')
  _guard(multiprocessing.process.BaseProcess, 'start', 'starts a process')
  _guard(socket, 'getaddrinfo', 'looks up a name (DNS)')
  _guard(socket.socket, 'connect', 'opens a network connection')
  _guard(socket.socket, 'connect_ex', 'opens a network connection')
  _guard(tarfile.TarFile, '__init__', 'writes a tarball', when=_writes_a_tar)


def pytest_collection(session):
  global _REFUSING, _COLLECTING
  if _fast_tier(session.config):
    _REFUSING = _COLLECTING = True


def pytest_collection_finish(session):
  del session
  global _REFUSING, _COLLECTING
  _REFUSING = _COLLECTING = False


def _guard_tfds_builds() -> None:
  """Wraps download_and_prepare once TFDS is imported (the tests import it)."""
  tfds = sys.modules.get('tensorflow_datasets')
  builder = getattr(getattr(tfds, 'core', None), 'DatasetBuilder', None)
  if builder is None or getattr(builder.download_and_prepare, 'guarded', False):
    return
  prepare = builder.download_and_prepare

  def guarded_prepare(self, *args, **kwargs):
    _refuse_if_unmarked('builds a dataset')
    return prepare(self, *args, **kwargs)

  guarded_prepare.guarded = True
  builder.download_and_prepare = guarded_prepare


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
  """Before any fixture of the test (module and session ones too) is set up."""
  global _REFUSING
  if _fast_tier(item.config):
    _guard_tfds_builds()
    _REFUSING = item.get_closest_marker('slow') is None


def pytest_runtest_teardown(item):
  del item
  global _REFUSING
  _REFUSING = False
  if _REFUSED:  # Refused where the test could not see it (a thread).
    refused = _REFUSED[0]
    _REFUSED.clear()
    pytest.fail(refused, pytrace=False)


_SUBPROCESS_BUILD = """
import sys
if {block_beam!r}:
  sys.modules['apache_beam'] = None  # Any import of apache_beam now fails.
sys.path[:0] = [{repo!r}, {tests!r}]
import tensorflow_datasets as tfds
import imagenet_resized
builder = tfds.builder({name!r}, data_dir={data_dir!r})
print('tensorflow imported by the builder:', 'tensorflow' in sys.modules)
builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir={manual_dir!r}))
print('built without apache_beam:', sys.modules.get('apache_beam', 0) is None)
print('tensorflow imported:', 'tensorflow' in sys.modules)
"""


def build_in_subprocess(
    config: str, manual_dir, data_dir, block_beam: bool = False
) -> str:
  """`build` in a fresh Python process (new hash seeds and memory layout).

  block_beam: make `import apache_beam` fail there, as when it is not installed.
  Returns the process's stdout.
  """
  import subprocess
  import sys
  script = _SUBPROCESS_BUILD.format(
      block_beam=block_beam, repo=str(REPO), tests=str(REPO / 'tests'),
      name=f'imagenet_resized/{config}', manual_dir=str(manual_dir), data_dir=str(data_dir),
  )
  proc = subprocess.run(
      [sys.executable, '-c', script], capture_output=True, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'), check=False,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


def wait_until_gone(pids, guard_s: float = 30.0) -> None:
  """Returns once every process of `pids` has ended (the kernel wakes us
  through pidfds); fails if any is still running after `guard_s`."""
  import select
  handles = []
  for pid in pids:
    try:
      handles.append(os.pidfd_open(pid))
    except ProcessLookupError:
      continue  # Already gone.
  poller = select.poll()
  for fd in handles:
    poller.register(fd, select.POLLIN)
  try:
    left = set(handles)
    while left:
      events = poller.poll(int(guard_s * 1000))  # A guard only.
      assert events, f'processes still running after {guard_s} s: {pids}'
      for fd, _ in events:
        left.discard(fd)
        poller.unregister(fd)
  finally:
    for fd in handles:
      os.close(fd)
