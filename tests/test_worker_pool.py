"""The worker pool: every value, bounded read-ahead, errors, closing, dying."""

import fcntl
import itertools
import subprocess
import sys
from multiprocessing import connection
import os

import pytest

from imagenet_resized.pipeline import worker_pool
from conftest import REPO, wait_until_gone
from imagenet_resized.common import SourceError


# ---------------------------------------------------------------------------
# parallel_streams: whole items to fresh worker processes.


def _count_to(n: int):
  for i in range(n):
    yield n, i


@pytest.mark.slow
@pytest.mark.parametrize('workers', [0, 2, 5])
def test_every_value_of_every_item_arrives_each_item_in_its_own_order(workers):
  items = [3, 0, 7, 1, 5, 2]
  got = list(worker_pool.parallel_streams(_count_to, items, workers))
  # Each item's values, in order, under its index; items may interleave.
  by_item = {}
  for index, value in got:
    by_item.setdefault(index, []).append(value)
  assert by_item == {i: [(n, k) for k in range(n)] for i, n in enumerate(items) if n}
  if workers == 0:
    assert got == [(i, (n, k)) for i, n in enumerate(items) for k in range(n)]


def _pid_and_modules(_):
  import os
  import sys
  yield os.getpid(), sorted(m for m in sys.modules if m.split('.')[0] in (
      'tensorflow', 'tensorflow_datasets'))


@pytest.mark.slow
def test_workers_are_other_processes_without_tfds():
  import os
  got = [v for _, v in worker_pool.parallel_streams(_pid_and_modules, [0, 1], 2)]
  assert all(pid != os.getpid() for pid, _ in got)
  assert [modules for _, modules in got] == [[], []]


def _fail_on_b(tag):
  yield tag
  if tag == 'b':
    raise SourceError('b.npz: row 3 is bad')


@pytest.mark.slow
def test_a_worker_error_is_reraised_as_it_was_raised():
  with pytest.raises(SourceError, match=r'^b\.npz: row 3 is bad$'):
    list(worker_pool.parallel_streams(_fail_on_b, ['a', 'b', 'c'], 2))


# ---------------------------------------------------------------------------
# Handshakes between the test and the worker processes. A gate is a file the
# test holds an exclusive lock on; a worker item waits at it by taking a
# shared lock, and passes once the test lets go. A worker item reports where it
# is by writing a line to a FIFO the test reads.


def _close_gate(path: str) -> int:
  """Creates the gate `path`, closed; returns the descriptor that holds it."""
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
  fcntl.flock(fd, fcntl.LOCK_EX)
  return fd


def _wait_at_gate(path: str) -> None:
  fd = os.open(path, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_SH)
  finally:
    os.close(fd)


# Gates held by this (the test's) process, by path: opened by `_open_gate`.
_HELD_GATES: dict[str, int] = {}


def _open_gate(path: str) -> None:
  os.close(_HELD_GATES.pop(path))


def _report(fifo: str, line: str) -> None:
  with open(fifo, 'w') as f:
    f.write(line + '\n')


class _Reports:
  """The test's end of a FIFO that worker items write lines to."""

  def __init__(self, path: str):
    os.mkfifo(path)
    # Opened for reading without waiting for a writer, then read blocking.
    # Our own write end keeps the FIFO open between the workers' writes.
    self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(self._fd, True)
    self._keep_open = os.open(path, os.O_WRONLY)
    self._file = os.fdopen(self._fd, 'r')

  def next_line(self) -> str:
    return self._file.readline().rstrip('\n')

  def close(self) -> None:
    os.close(self._keep_open)
    self._file.close()


class _GateOpeningError(SourceError):
  """A SourceError that opens a gate when the parent unpickles it: the test's
  way of knowing that the parent has received this error."""

  def __init__(self, text: str, gate: str):
    super().__init__(text)
    self.gate = gate

  def __reduce__(self):
    return _received_error, (str(self), self.gate)


def _received_error(text: str, gate: str) -> SourceError:
  _open_gate(gate)
  return SourceError(text)


def _fail_at_gate(args):
  tag, gate = args
  if tag == 'batch_1':
    yield tag
    _wait_at_gate(gate)  # Until the parent has received batch_2's error.
    raise SourceError(f'{tag}.npz: bad')
  if tag == 'batch_2':
    raise _GateOpeningError(f'{tag}.npz: bad', gate)
  yield tag  # batch_3: must not start.


@pytest.mark.slow
def test_the_first_items_error_wins_when_a_later_item_fails_first(tmp_path):
  """batch_2 fails first (batch_1 fails only once the parent holds batch_2's
  error); batch_1's error is raised, its value before the error arrives, and
  batch_3 is not started."""
  gate = str(tmp_path / 'gate')
  _HELD_GATES[gate] = _close_gate(gate)
  items = [(f'batch_{i}', gate) for i in (1, 2, 3)]
  got = []
  with pytest.raises(SourceError, match=r'^batch_1\.npz: bad$'):
    for value in worker_pool.parallel_streams(_fail_at_gate, items, 2):
      got.append(value)
  assert gate not in _HELD_GATES  # batch_2's error did come first.
  assert got == [(0, 'batch_1')]


def _pid_then_endless(start):
  yield os.getpid()
  yield from itertools.count(start)


def _gone(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return True
  return False


@pytest.mark.slow
def test_an_abandoned_stream_stops_its_workers():
  results = worker_pool.parallel_streams(_pid_then_endless, [0, 10**9], 2)
  pids = {}
  while len(pids) < 2:  # Each item's first value is its worker's pid.
    index, value = next(results)
    pids.setdefault(index, value)
  assert all(not _gone(pid) for pid in pids.values())
  results.close()
  # Killed and reaped: neither running nor left as a zombie.
  assert [_gone(pid) for pid in pids.values()] == [True, True]


def _counted_values(args):
  """1 MiB values (more than a socket's buffer holds), each made after
  reporting how many values the reader had taken (`taken` grows by one byte
  per value taken)."""
  taken, reports = args
  for i in range(200):
    _report(reports, f'{i} {os.path.getsize(taken)}')
    yield bytes(1 << 20)


@pytest.mark.slow
def test_a_worker_runs_at_most_one_value_ahead_of_the_reader(tmp_path):
  """The worker blocks on sending until its value is read: flat memory.

  Each value is made after the worker reports how many the reader had taken
  by then; the reader takes the next value only once the worker has reported
  making the one after the value it holds, so the worker never waits on a
  slow reader that it could have run ahead of.
  """
  taken = tmp_path / 'taken'
  taken.write_bytes(b'')
  reports = _Reports(str(tmp_path / 'reports'))
  try:
    results = worker_pool.parallel_streams(
        _counted_values, [(str(taken), str(tmp_path / 'reports'))], 1
    )
    ahead = []  # Values made minus values taken, as each value was made.

    def made(i: int) -> None:
      k, seen_taken = map(int, reports.next_line().split())
      assert k == i
      ahead.append(k + 1 - seen_taken)

    value = next(results)  # Starts the worker.
    made(0)
    for i in range(200):
      assert value == (0, bytes(1 << 20))
      with open(taken, 'ab') as f:
        f.write(b'.')
      if i < 199:
        made(i + 1)  # Value i was sent whole: the worker went on.
        value = next(results)
    assert next(results, None) is None
  finally:
    reports.close()
  # The value taken, one being sent, one made.
  assert max(ahead) <= 2, ahead


def _end_at_gate(args):
  tag, fails, gate = args
  if tag == 'batch_1':
    yield tag
  _wait_at_gate(gate)
  if fails:
    raise SourceError(f'{tag}.npz: bad')


@pytest.mark.slow
def test_an_error_and_a_later_items_end_read_together(tmp_path):
  """Both workers have sent their last message by the time the reader looks:
  the first batch's error and the second batch's end arrive in one wait. The
  error is raised as it was (the end of an item no longer awaited is
  ignored)."""
  gate = str(tmp_path / 'gate')
  _HELD_GATES[gate] = _close_gate(gate)
  items = [('batch_1', True, gate), ('batch_2', False, gate),
           ('batch_3', False, gate)]
  results = worker_pool.parallel_streams(_end_at_gate, items, 2)
  assert next(results) == (0, 'batch_1')
  _open_gate(gate)  # Now batch_1 fails and batch_2 ends.
  # Blocks until both workers' last messages (batch_1's error, batch_2's
  # end) are there to be read: the kernel says so, not a clock.
  conns = [worker.conn for worker in worker_pool._live]
  ready = set()
  while len(ready) < 2:
    ready.update(connection.wait(conns))
  with pytest.raises(SourceError, match=r'^batch_1\.npz: bad$'):
    next(results)


def _draw(_):
  yield os.getpid()


@pytest.mark.slow
def test_items_are_drawn_as_workers_become_free():
  """A streamed source stays streamed: an item is drawn only when a worker
  is free for it."""
  drawn = []

  def items():
    for i in itertools.count():
      drawn.append(i)
      yield i

  results = worker_pool.parallel_streams(_draw, items(), 2)
  next(results)
  assert len(drawn) <= 3  # One per worker, and one handed on at most.
  results.close()


_ORPHANS = r"""
import sys
sys.path[:0] = [{repo!r}, {tests!r}]
from imagenet_resized.pipeline import worker_pool
import test_worker_pool
seen = set()
for index, value in worker_pool.parallel_streams(
    test_worker_pool._pid_then_endless, [0, 0], 2):
  if index not in seen:  # Each item's first value: its worker's pid.
    seen.add(index)
    print(value, flush=True)
"""


@pytest.mark.slow
def test_workers_die_with_their_caller_silently(tmp_path):
  """SIGKILL the caller (as the OOM killer does): its workers end within
  seconds (the kernel is asked to kill them with it), writing nothing."""
  caller = subprocess.Popen(
      [sys.executable, '-c', _ORPHANS.format(repo=str(REPO), tests=str(REPO / 'tests'))],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
  )
  pids = set()
  while len(pids) < 2:
    pids.add(int(caller.stdout.readline()))
  caller.kill()
  caller.wait()
  wait_until_gone(pids, guard_s=10)
  assert caller.stderr.read() == ''
