"""Ordered map over forked worker processes, with a bounded read-ahead thread.

`parallel_map(fn, items, workers)` is `map(fn, items)` spread over forked
processes: results come back in input order (so builds stay deterministic),
and at most a few items are pending at once (so a streamed source stays
streamed and memory stays flat). `prefetch` is its read-ahead: it iterates the
source in a background thread, so that reading (zip inflation, numpy copies,
which release the GIL) overlaps with the caller's work. `parallel_map_arrays`
is the same for items that carry a large numpy array (a chunk of pixels): the
array reaches the worker through memory shared with it, not through a pipe.
Used by the authors' batches (`examples`) and by the ILSVRC2012 JPEG path
(`ilsvrc`).
"""

from __future__ import annotations

import collections
import itertools
import mmap
import multiprocessing
import os
import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

T = TypeVar('T')


def default_workers() -> int:
  """Worker processes for encoding: one per core, none where fork is absent."""
  if 'fork' not in multiprocessing.get_all_start_methods():
    return 0
  return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (
      os.cpu_count() or 1
  )


_DONE = object()


def prefetch(items: Iterable[T], depth: int) -> Iterator[T]:
  """Iterates `items` in a background thread, at most `depth` items ahead.

  Lets reading (zip inflation and numpy copies, which release the GIL) overlap
  with whatever the caller does with the items. Exceptions raised by `items`
  are re-raised here, in order.
  """
  ready: queue.Queue = queue.Queue(maxsize=max(1, depth))
  stop = threading.Event()

  source = iter(items)

  def fill():
    try:
      for item in source:
        while not stop.is_set():
          try:
            ready.put((item, None), timeout=0.1)
            break
          except queue.Full:
            continue
        if stop.is_set():
          return
      ready.put((_DONE, None))
    except BaseException as e:  # pylint: disable=broad-except
      ready.put((_DONE, e))
    finally:
      if hasattr(source, 'close'):
        source.close()  # Closes the files of an abandoned generator now.

  thread = threading.Thread(target=fill, name='imagenet_resized-prefetch', daemon=True)
  thread.start()
  try:
    while True:
      item, error = ready.get()
      if item is _DONE:
        if error is not None:
          raise error
        return
      yield item
  finally:
    stop.set()
    # Let a blocked producer notice `stop`, then wait for it to finish.
    while thread.is_alive():
      try:
        ready.get(timeout=0.1)
      except queue.Empty:
        pass
    thread.join()


def parallel_map(
    fn: Callable[[T], object],
    items: Iterable[T],
    workers: int,
    in_flight_per_worker: int = 2,
) -> Iterator[object]:
  """`map(fn, items)` across forked processes, in order, with bounded read-ahead.

  multiprocessing.Pool.imap would drain `items` as fast as it can (its feeder
  thread has no bound), which would defeat the streaming reader; here at most
  `workers * in_flight_per_worker` items are pending at once, plus one being
  read ahead in a thread. With `workers` == 0 it runs in this process.
  """
  if workers <= 0:
    yield from map(fn, items)
    return
  # Fork: the children need only numpy and zlib, and start instantly with the
  # parent's modules. A 'forkserver' or 'spawn' child re-imports this package,
  # hence TFDS and TensorFlow: measured, +3 s on a 110,000-example 8x8 build
  # and ~550 MiB per worker. The pool is forked before the read-ahead thread
  # starts; Python >= 3.12 still warns (DeprecationWarning) because TensorFlow
  # runs threads of its own, which the children never touch.
  ctx = multiprocessing.get_context('fork')
  with ctx.Pool(workers) as pool:
    pending = collections.deque()
    limit = max(1, workers * in_flight_per_worker)
    for item in prefetch(items, depth=1):
      pending.append(pool.apply_async(fn, (item,)))
      if len(pending) >= limit:
        yield pending.popleft().get()
    while pending:
      yield pending.popleft().get()


# Shared memory of the running `parallel_map_arrays` calls, by call id: set in
# the parent before its pool forks, so the workers inherit the mappings.
_SHARED: dict[int, mmap.mmap] = {}
_CALL_IDS = itertools.count()


def _run_on_slot(task):
  """Worker: `fn(array, rest)` with the array read in place from its slot."""
  call_id, fn, offset, shape, dtype, rest = task
  array = np.ndarray(shape, np.dtype(dtype), buffer=_SHARED[call_id], offset=offset)
  return fn(array, rest)


def parallel_map_arrays(
    fn: Callable[[np.ndarray, T], object],
    items: Iterable[tuple[np.ndarray, T]],
    workers: int,
    slot_bytes: int,
    in_flight_per_worker: int = 2,
) -> Iterator[object]:
  """`fn(array, rest)` for each `(array, rest)` of items, as `parallel_map`.

  Each array (at most `slot_bytes` bytes) is copied into a slot of a ring of
  memory shared with the forked workers, in the read-ahead thread; the worker
  reads it in place. Only the slot's number crosses the pipe: sending a 3 MiB
  chunk of 32x32 pixels through multiprocessing's pipe pickled and copied it
  three times in the parent, whose time bounds a build's speed. `fn` must not
  keep the array after it returns: the slot is reused. The ring holds as many
  slots as items can be alive at once: `workers * in_flight_per_worker`
  pending, one read ahead, one being filled.
  """
  if workers <= 0:
    for array, rest in items:
      yield fn(array, rest)
    return
  limit = max(1, workers * in_flight_per_worker)
  slots = limit + 2
  shared = mmap.mmap(-1, slots * slot_bytes)
  call_id = next(_CALL_IDS)
  free: queue.Queue = queue.Queue()
  for slot in range(slots):
    free.put(slot)
  closing = threading.Event()

  def staged():
    for array, rest in items:
      array = np.asarray(array)
      if array.nbytes > slot_bytes:
        raise ValueError(
            f'an array of {array.nbytes} bytes (shape {array.shape}) does not'
            f' fit a slot; expected at most {slot_bytes} bytes'
        )
      slot = None
      while slot is None:
        if closing.is_set():
          return
        try:
          slot = free.get(timeout=0.1)
        except queue.Empty:
          pass
      offset = slot * slot_bytes
      np.ndarray(array.shape, array.dtype, buffer=shared, offset=offset)[...] = array
      yield slot, (call_id, fn, offset, array.shape, array.dtype.str, rest)

  _SHARED[call_id] = shared
  ahead = None
  try:
    ctx = multiprocessing.get_context('fork')  # Why fork: see parallel_map.
    with ctx.Pool(workers) as pool:
      ahead = prefetch(staged(), depth=1)
      pending = collections.deque()
      for slot, task in ahead:
        pending.append((slot, pool.apply_async(_run_on_slot, (task,))))
        if len(pending) >= limit:
          slot, result = pending.popleft()
          value = result.get()
          free.put(slot)
          yield value
      while pending:
        slot, result = pending.popleft()
        value = result.get()
        free.put(slot)
        yield value
  finally:
    closing.set()
    if ahead is not None:
      ahead.close()
    del _SHARED[call_id]
    shared.close()
