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
# parallel_map_arrays: arrays through shared memory.


def _checksum(array, tag):
  return tag, array.shape, str(array.dtype), int(array.astype(np.int64).sum()), array[-1].tolist()


def _arrays(n: int):
  rng = np.random.default_rng(0)
  for i in range(n):
    rows = 1 + i % 7  # Arrays of different sizes share the slots.
    yield rng.integers(0, 256, size=(rows, 4, 3), dtype=np.uint8), f'item {i}'


@pytest.mark.parametrize('workers', [0, 2])
def test_arrays_arrive_intact_and_in_order_through_reused_slots(workers):
  # 40 items through 2 * 2 + 2 = 6 slots: every slot is reused several times.
  expected = [_checksum(a, tag) for a, tag in _arrays(40)]
  got = list(worker_pool.parallel_map_arrays(
      _checksum, _arrays(40), workers, slot_bytes=7 * 4 * 3
  ))
  assert got == expected


def test_an_array_larger_than_a_slot_is_refused_in_one_line():
  items = [(np.zeros((2, 8), np.uint8), 'a'), (np.zeros((3, 8), np.uint8), 'b')]
  results = worker_pool.parallel_map_arrays(_checksum, items, workers=2, slot_bytes=16)
  with pytest.raises(ValueError) as e:
    list(results)
  assert str(e.value) == (
      'an array of 24 bytes (shape (3, 8)) does not fit a slot; expected at'
      ' most 16 bytes'
  )


def _fail_on_b(array, tag):
  if tag == 'b':
    raise SourceError('b.npz: row 3 is bad')
  return tag


def test_a_worker_error_is_reraised_and_an_abandoned_map_stops():
  items = [(np.zeros(4, np.uint8), t) for t in 'ab']
  with pytest.raises(SourceError, match=r'^b\.npz: row 3 is bad$'):
    list(worker_pool.parallel_map_arrays(_fail_on_b, items, workers=2, slot_bytes=4))
  # Closed after one result while the reader waits for free slots: no hang,
  # and the shared memory is released.
  results = worker_pool.parallel_map_arrays(
      _checksum, _arrays(1000), workers=2, slot_bytes=7 * 4 * 3
  )
  assert next(results)[0] == 'item 0'
  results.close()
  assert not worker_pool._SHARED  # pylint: disable=protected-access
