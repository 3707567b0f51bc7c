"""Killed and concurrent builds, in real processes.

A build is paused mid-way by a handshake, not a sleep: the build process
(a plain `download_and_prepare` through manual_dir) wraps TFDS's
`Shuffler.add` so that after a few examples, once its shuffler has spilled
to disk in the `incomplete.*` folder, it creates a marker file and blocks
reading its stdin. The test waits for the marker, then SIGKILLs the build or
starts a second one, and lets the first go on by closing its stdin.
Nothing of the package is replaced in the build process: the hook is in
TFDS, and the shuffler's memory is set to 1 byte (Builder.SHUFFLE_MEMORY_BYTES)
so that it spills at once, as at the real sizes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO
from imagenet_resized.tools import fake

pytestmark = pytest.mark.slow

SIZE = 8
TRAIN_ROWS = 3 * 6
VERSION = '0.1.0'
GUARD_S = 300  # Only so that a broken build cannot hang the suite.
# To check that these cases fail on another version of the package, point
# IMAGENET_RESIZED_READERS at the root of its checkout.
CODE = os.environ.get('IMAGENET_RESIZED_READERS', str(REPO))

_BUILD = r'''
import logging, os, sys
sys.path.insert(0, {code!r})
logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format='%(levelname)s %(name)s: %(message)s')
from absl import logging as absl_logging
absl_logging.set_verbosity(absl_logging.INFO)
import tensorflow_datasets as tfds
from tensorflow_datasets.core import shuffle
import imagenet_resized
from imagenet_resized.imagenet_resized_dataset_builder import Builder

Builder.SHUFFLE_MEMORY_BYTES = 1  # Spill to disk at once.
marker = os.environ.get('PAUSE_MARKER')
if marker:
  add = shuffle.Shuffler.add
  seen = [0]
  def paused_add(self, key, data):
    out = add(self, key, data)
    seen[0] += 1
    if seen[0] == 3:
      open(marker, 'w').close()
      sys.stdin.read()  # Until the test closes stdin (or kills us).
    return out
  shuffle.Shuffler.add = paused_add

builder = tfds.builder('imagenet_resized/{size}x{size}', data_dir={data_dir!r})
builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir={manual!r}))
rows = sum(1 for _ in builder.as_dataset(split='train'))
print('train examples:', rows, flush=True)
'''


def _start(manual, data_dir, log_path, marker=None) -> subprocess.Popen:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  env.pop('PAUSE_MARKER', None)
  if marker:
    env['PAUSE_MARKER'] = str(marker)
  script = _BUILD.format(
      code=CODE, size=SIZE, data_dir=str(data_dir), manual=str(manual)
  )
  with open(log_path, 'w') as log:
    return subprocess.Popen(
        [sys.executable, '-c', script], stdin=subprocess.PIPE,
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO),
    )


def _wait_for(what: str, done, proc: subprocess.Popen, log_path) -> None:
  """Polls `done()` until true; fails if `proc` ends first."""
  deadline = time.monotonic() + GUARD_S
  while not done():
    if proc.poll() is not None:
      pytest.fail(
          f'the build ended (code {proc.returncode}) before {what}:'
          f' {open(log_path).read()[-3000:]}'
      )
    if time.monotonic() > deadline:
      proc.kill()
      pytest.fail(f'no {what} within {GUARD_S} s: {open(log_path).read()[-3000:]}')
    time.sleep(0.05)  # Polling interval of the handshake, not a wait for a race.


def _finish(proc: subprocess.Popen, log_path) -> str:
  proc.stdin.close()
  proc.wait(GUARD_S)
  text = open(log_path).read()
  assert proc.returncode == 0, text[-3000:]
  return text


def _incomplete(config_dir) -> list[str]:
  if not os.path.isdir(config_dir):
    return []
  return sorted(n for n in os.listdir(config_dir) if n.startswith('incomplete.'))


@pytest.fixture
def manual(tmp_path):
  folder = tmp_path / 'manual'
  fake.write_sources(str(folder), SIZE, train_batches=3, examples_per_batch=6)
  return folder


def test_killed_build_leaves_nothing_after_the_next_build(manual, tmp_path):
  data_dir = tmp_path / 'data'
  config_dir = data_dir / 'imagenet_resized' / f'{SIZE}x{SIZE}'
  marker = tmp_path / 'paused'
  killed = _start(manual, data_dir, tmp_path / 'killed.log', marker)
  _wait_for('the pause', marker.exists, killed, tmp_path / 'killed.log')
  (left,) = _incomplete(config_dir)
  spills = [n for n in os.listdir(config_dir / left) if n.startswith('bucket_')]
  assert spills, os.listdir(config_dir / left)
  killed.send_signal(signal.SIGKILL)
  killed.wait(GUARD_S)
  assert killed.returncode == -signal.SIGKILL
  # Other datasets' folders: another version, another config. Kept.
  other_version = config_dir / 'incomplete.ABC123_0.0.9'
  other_config = data_dir / 'imagenet_resized' / '16x16' / f'incomplete.XYZ789_{VERSION}'
  for folder in (other_version, other_config):
    folder.mkdir(parents=True)
    (folder / 'bucket_x_000.tmp').write_bytes(b'spill')

  rebuilt = _start(manual, data_dir, tmp_path / 'rebuild.log')
  text = _finish(rebuilt, tmp_path / 'rebuild.log')

  assert f'train examples: {TRAIN_ROWS}' in text
  lines = [x for x in text.splitlines() if 'Removed the leftovers' in x]
  assert len(lines) == 1, text[-3000:]
  assert (
      f'Removed the leftovers of 1 build of imagenet_resized/{SIZE}x{SIZE}/'
      f'{VERSION} that no longer runs: {left} ('
  ) in lines[0]
  assert f'{len(spills)} of them shuffler spill files' in lines[0]
  assert _incomplete(config_dir) == ['incomplete.ABC123_0.0.9']
  assert other_config.is_dir()
  assert sorted(os.listdir(config_dir)) == [
      f'.{VERSION}.build.lock', VERSION, 'incomplete.ABC123_0.0.9'
  ]


def test_second_build_waits_for_the_first_and_reuses_it(manual, tmp_path):
  data_dir = tmp_path / 'data'
  marker = tmp_path / 'paused'
  first_log, second_log = tmp_path / 'first.log', tmp_path / 'second.log'
  first = _start(manual, data_dir, first_log, marker)
  _wait_for('the pause', marker.exists, first, first_log)
  second = _start(manual, data_dir, second_log)
  waiting = (
      f'Waiting for another build of imagenet_resized/{SIZE}x{SIZE}/{VERSION}'
      f' (process {first.pid} holds'
  )
  _wait_for(
      'the second build waits', lambda: waiting in open(second_log).read(),
      second, second_log,
  )
  assert first.poll() is None  # Still paused: the second one waits for it.
  first_text = _finish(first, first_log)
  second_text = _finish(second, second_log)

  assert f'train examples: {TRAIN_ROWS}' in first_text
  assert f'train examples: {TRAIN_ROWS}' in second_text
  assert 'Reusing dataset imagenet_resized' in second_text
  assert 'Generating dataset imagenet_resized' not in second_text
  assert 'FileExistsError' not in second_text + first_text
  config_dir = data_dir / 'imagenet_resized' / f'{SIZE}x{SIZE}'
  assert _incomplete(config_dir) == []


def test_the_lock_file_is_not_taken_for_a_version(manual, tmp_path):
  """TFDS lists the versions of a config (and loads the latest) without
  reading the hidden lock file next to them."""
  import tensorflow_datasets as tfds
  import imagenet_resized  # noqa: F401  pylint: disable=unused-import
  from conftest import build
  data_dir = tmp_path / 'data'
  build(f'{SIZE}x{SIZE}', manual, data_dir)
  config_dir = data_dir / 'imagenet_resized' / f'{SIZE}x{SIZE}'
  assert (config_dir / f'.{VERSION}.build.lock').is_file()
  assert [str(v) for v in tfds.core.utils.version.list_all_versions(config_dir)] == [VERSION]
  ds = tfds.load(f'imagenet_resized/{SIZE}x{SIZE}', split='train', data_dir=str(data_dir))
  assert sum(1 for _ in ds) == TRAIN_ROWS


@pytest.mark.slow  # Not a build, but the module's mark covers every test.
def test_remote_data_dirs_have_no_lock_and_nothing_is_removed(caplog):
  import logging
  from imagenet_resized.tfds_glue import build_lock
  with caplog.at_level(logging.INFO):
    with build_lock.preparing('gs://bucket/imagenet_resized/8x8/0.1.0', 'x') as locked:
      assert locked is False
  assert (
      'No lock for the build of x: gs://bucket/imagenet_resized/8x8/.0.1.0.build.lock'
      ' is not a local path; concurrent runs into it are not kept apart'
  ) in caplog.text


def test_only_folders_named_as_tfds_names_them_are_leftovers(tmp_path):
  from imagenet_resized.tfds_glue import build_lock
  config = tmp_path / 'imagenet_resized' / '8x8'
  for name in ('incomplete.AB12CD_0.1.0', 'incomplete.AB12CD_0.1.1',
               'incomplete.ab12cd_0.1.0', 'incomplete.AB12CD_0.1.0x', '0.1.0'):
    (config / name).mkdir(parents=True)
  (config / 'incomplete.ZZ99ZZ_0.1.0').write_bytes(b'a file, not a folder')
  assert build_lock.stale_folders(str(config / '0.1.0')) == [
      str(config / 'incomplete.AB12CD_0.1.0')
  ]
