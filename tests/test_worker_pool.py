"""The worker pool: ordered results, bounded read-ahead, errors and closing."""

import itertools

import numpy as np
import pytest

from imagenet_resized import worker_pool
from imagenet_resized.batch_format import SourceError


def _square(x: int) -> int:
  return x * x


@pytest.mark.parametrize('workers', [0, 2])
def test_parallel_map_keeps_the_input_order(workers):
  assert list(worker_pool.parallel_map(_square, range(50), workers)) == [
      x * x for x in range(50)
  ]


def test_parallel_map_reads_ahead_a_bounded_number_of_items():
  drawn = []

  def items():
    for i in itertools.count():
      drawn.append(i)
      yield i

  results = worker_pool.parallel_map(_square, items(), workers=2, in_flight_per_worker=2)
  assert next(results) == 0
  # 4 pending in the pool, one waiting in the read-ahead queue, one in hand.
  assert len(drawn) <= 2 * 2 + 2
  results.close()


def test_parallel_map_reraises_a_reader_error():
  def items():
    yield 1
    yield 2
    raise SourceError('batch.npz: file ends early')

  results = worker_pool.parallel_map(_square, items(), workers=2)
  with pytest.raises(SourceError, match=r'^batch\.npz: file ends early$'):
    list(results)


def test_prefetch_closes_an_abandoned_source():
  closed = []

  def items():
    try:
      yield from range(100)
    finally:
      closed.append(True)

  ahead = worker_pool.prefetch(items(), depth=2)
  assert [next(ahead), next(ahead)] == [0, 1]
  ahead.close()
  assert closed == [True]


# ---------------------------------------------------------------------------
# parallel_streams: whole items to fresh worker processes.


def _count_to(n: int):
  for i in range(n):
    yield n, i


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
  import os  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  yield os.getpid(), sorted(m for m in sys.modules if m.split('.')[0] in (
      'tensorflow', 'tensorflow_datasets'))


def test_workers_are_other_processes_without_tfds():
  import os  # pylint: disable=g-import-not-at-top
  got = [v for _, v in worker_pool.parallel_streams(_pid_and_modules, [0, 1], 2)]
  assert all(pid != os.getpid() for pid, _ in got)
  assert [modules for _, modules in got] == [[], []]


def _fail_on_b(tag):
  yield tag
  if tag == 'b':
    raise SourceError('b.npz: row 3 is bad')


def test_a_worker_error_is_reraised_as_it_was_raised():
  with pytest.raises(SourceError, match=r'^b\.npz: row 3 is bad$'):
    list(worker_pool.parallel_streams(_fail_on_b, ['a', 'b', 'c'], 2))


def _fail_after(args):
  tag, seconds = args
  import time  # pylint: disable=g-import-not-at-top
  yield tag
  time.sleep(seconds)
  raise SourceError(f'{tag}.npz: bad')


def test_the_first_items_error_wins_whatever_the_timing():
  """The first batch's error is raised even when a later batch fails first,
  and the first batch's values before its error still arrive."""
  items = [('batch_1', 1.0), ('batch_2', 0.0), ('batch_3', 0.0)]
  got = []
  with pytest.raises(SourceError, match=r'^batch_1\.npz: bad$'):
    for value in worker_pool.parallel_streams(_fail_after, items, 2):
      got.append(value)
  assert (0, 'batch_1') in got
  assert (2, 'batch_3') not in got  # Not started after batch_2 failed.


def _endless(start):
  yield from itertools.count(start)


def test_an_abandoned_stream_stops_its_workers():
  results = worker_pool.parallel_streams(_endless, [0, 10**9], 2)
  assert next(results)[1] in (0, 10**9)
  workers = results.gi_frame.f_locals['started']
  results.close()
  assert [w.process.poll() for w in workers] == [-9, -9]


def _counted_values(path):
  for i in range(200):
    with open(path, 'w') as f:
      f.write(str(i))
    yield bytes(1 << 20)  # 1 MiB each: more than a socket's buffer holds.


def test_a_worker_runs_at_most_one_value_ahead_of_the_reader(tmp_path):
  """The worker blocks on sending until its value is read: flat memory."""
  import time  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / 'made')
  results = worker_pool.parallel_streams(_counted_values, [path], 1)
  next(results)
  time.sleep(1.0)  # Time to run ahead, if it could.
  with open(path) as f:
    assert int(f.read()) <= 2  # The value read, one being sent, one made.
  assert sum(1 for _ in results) == 199


def _first_value_then_end(args):
  tag, fails = args
  import time  # pylint: disable=g-import-not-at-top
  if tag == 'batch_1':
    yield tag
  time.sleep(0.5)
  if fails:
    raise SourceError(f'{tag}.npz: bad')


def test_an_error_and_a_later_items_end_read_together():
  """Both workers have finished by the time the reader looks: the first
  batch's error and the second batch's end arrive in one wait. The error is
  raised as it was (the end of an item no longer awaited is ignored)."""
  import time  # pylint: disable=g-import-not-at-top
  items = [('batch_1', True), ('batch_2', False), ('batch_3', False)]
  results = worker_pool.parallel_streams(_first_value_then_end, items, 2)
  assert next(results) == (0, 'batch_1')
  time.sleep(1.5)  # Meanwhile batch_1 fails and batch_2 ends.
  with pytest.raises(SourceError, match=r'^batch_1\.npz: bad$'):
    next(results)
