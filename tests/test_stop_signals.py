"""Stopping a build or an export: SIGINT, SIGTERM, SIGHUP, and SIGKILL.

Real processes, real signals, as users and schedulers send them: Ctrl-C
sends SIGINT to the terminal's whole process group, `timeout` and
Kubernetes SIGTERM to the main process, SLURM and systemd SIGTERM to every
process, a closed terminal SIGHUP, the OOM killer SIGKILL. The build runs
through `tfds build` itself; it is paused mid-way by a handshake
(tests/pause_build.py wraps TFDS's shuffler, nothing of the package), with
its workers running and spill files written. What must hold:

* a signal stops it with one line on stderr, saying what was stopped and
  that nothing was kept, no traceback from any process, and the process
  ends by that signal (the exit status schedulers read);
* nothing is kept: no `incomplete.*` folder, no spill file, no temporary
  file of an export, no fingerprint;
* the workers are gone, also when the main process is SIGKILLed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import REPO, TFDS_CLI, wait_until_gone
from imagenet_resized.tools import fake

pytestmark = pytest.mark.slow

SIZE = 8
# (signal, whether it goes to the whole process group).
CASES = [
    (signal.SIGINT, True),  # Ctrl-C in a terminal.
    (signal.SIGTERM, False),  # timeout, Kubernetes.
    (signal.SIGTERM, True),  # SLURM, systemd.
    (signal.SIGHUP, True),  # The terminal closed.
]


def _ids(case) -> str:
  sig, group = case
  return f'{sig.name}-{"group" if group else "process"}'


@pytest.fixture(scope='module')
def manual(tmp_path_factory):
  folder = tmp_path_factory.mktemp('stop') / 'manual'
  fake.write_sources(str(folder), SIZE, train_batches=3, examples_per_batch=300)
  return folder


def _start(args, **kwargs) -> subprocess.Popen:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  env['PYTHONPATH'] = os.pathsep.join([str(REPO / 'tests'), str(REPO)])
  return subprocess.Popen(
      args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
      **kwargs,
  )


def _paused_build(manual, data_dir) -> tuple[subprocess.Popen, list[int]]:
  """`tfds build` of our builder, paused mid-way; and its workers' pids."""
  build = _start([
      TFDS_CLI, 'build', 'imagenet_resized', '--imports',
      'imagenet_resized,pause_build', '--config', f'{SIZE}x{SIZE}',
      '--manual_dir', str(manual), '--data_dir', str(data_dir),
  ])
  for line in build.stdout:  # TFDS's command line logs there too.
    if line.startswith('paused'):
      break
  else:
    build.wait()
    pytest.fail(f'the build did not pause: {build.stderr.read()[-3000:]}')
  workers = [int(pid) for pid in line.split()[1:]]
  assert workers, 'no worker was running at the pause'
  return build, workers


def _send(proc: subprocess.Popen, sig: int, group: bool) -> None:
  if group:
    os.killpg(proc.pid, sig)
  else:
    proc.send_signal(sig)


def _assert_stopped_in_one_line(err: str, line: str) -> None:
  """`err` (TFDS's logs and progress bars too) ends with `line`, says it
  once, and holds no traceback."""
  assert 'Traceback' not in err, err[-3000:]
  lines = err.splitlines()
  assert [x for x in lines if x.startswith('imagenet_resized: stopped')] == [
      line
  ], err[-3000:]
  assert lines[-1] == line, err[-3000:]


def _left_files(folder) -> list[str]:
  return sorted(
      os.path.relpath(os.path.join(root, name), folder)
      for root, dirs, files in os.walk(folder)
      for name in dirs + files
  )


@pytest.mark.parametrize('case', CASES, ids=_ids)
def test_a_signal_stops_a_build_in_one_line_keeping_nothing(manual, tmp_path, case):
  sig, group = case
  data_dir = tmp_path / 'data'
  build, workers = _paused_build(manual, data_dir)
  config_dir = data_dir / 'imagenet_resized' / f'{SIZE}x{SIZE}'
  (incomplete,) = [n for n in os.listdir(config_dir) if n.startswith('incomplete.')]
  assert any(
      n.startswith('bucket_') for n in _left_files(config_dir / incomplete)
  )  # Spill files were written before the stop.
  _send(build, sig, group)
  _, err = build.communicate(timeout=300)
  assert build.returncode == -sig, err[-3000:]
  _assert_stopped_in_one_line(
      err,
      f'imagenet_resized: stopped the build of imagenet_resized/{SIZE}x{SIZE}/'
      f'0.1.0 ({sig.name}); nothing of it was kept',
  )
  # Nothing kept but the (empty, reusable) lock file.
  assert _left_files(config_dir) == ['.0.1.0.build.lock']
  wait_until_gone(workers, guard_s=10)


def test_a_killed_build_takes_its_workers_with_it(manual, tmp_path):
  build, workers = _paused_build(manual, tmp_path / 'data')
  _send(build, signal.SIGKILL, group=False)
  build.wait()
  wait_until_gone(workers, guard_s=10)
  assert 'Traceback' not in build.stderr.read()


# The export, through the command line (`imagenet-resized arrays`), paused at
# its first write of pixels: the standard library's os.pwrite is wrapped.
_EXPORT = r'''
import os, sys
import psutil
real = os.pwrite
def paused(fd, data, offset):
  if 'images.npy' in os.readlink(f'/proc/self/fd/{fd}'):
    children = psutil.Process().children()
    print('paused', *(p.pid for p in children), flush=True)
    sys.stdin.read()
  return real(fd, data, offset)
os.pwrite = paused
from imagenet_resized.__main__ import main
sys.exit(main(['arrays', '--config', '8x8', '--split', 'train',
               '--data-dir', sys.argv[1]]))
'''


@pytest.fixture(scope='module')
def built(manual, tmp_path_factory):
  from conftest import build
  return build(f'{SIZE}x{SIZE}', manual, tmp_path_factory.mktemp('built'))


@pytest.mark.parametrize('case', CASES, ids=_ids)
def test_a_signal_stops_an_export_in_one_line_keeping_nothing(built, tmp_path, case):
  sig, group = case
  data_dir = os.path.dirname(os.path.dirname(os.path.dirname(built.data_dir)))
  export = _start([sys.executable, '-c', _EXPORT, data_dir])
  line = export.stdout.readline()
  assert line.startswith('paused'), export.stderr.read()[-3000:]
  workers = [int(pid) for pid in line.split()[1:]]
  assert workers
  _send(export, sig, group)
  _, err = export.communicate(timeout=300)
  assert export.returncode == -sig, err[-3000:]
  _assert_stopped_in_one_line(
      err,
      f'imagenet_resized: stopped the export of imagenet_resized/{SIZE}x{SIZE}'
      f' 0.1.0 train to arrays ({sig.name}); nothing of it was kept',
  )
  folder = os.path.join(built.data_dir, 'arrays', 'train')
  assert os.listdir(folder) == []
  wait_until_gone(workers, guard_s=10)
