"""The worker pool: ordered results, bounded read-ahead, errors and closing."""

import itertools

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
