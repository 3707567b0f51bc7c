"""Work spread over worker processes, with flat memory.

Two shapes of work:

* `parallel_map(fn, items, workers)` is `map(fn, items)` spread over forked
  processes: results come back in input order, and at most a few items are
  pending at once (so a streamed source stays streamed and memory stays
  flat). `prefetch` is its read-ahead: it iterates the source in a background
  thread, so that reading overlaps with the caller's work. Used by the
  ILSVRC2012 JPEG path (`ilsvrc`) and the benchmarks' source writer.
* `parallel_streams(fn, items, workers)`: each item is handed whole to one
  worker, which runs the generator `fn(item)` and streams what it yields back
  to the caller, items interleaved as their values arrive. Used for the
  authors' batches (`examples`): a worker owns a whole batch (inflating,
  reading and PNG-encoding it), so the caller, TFDS's main process, only
  receives finished PNGs. Its workers are fresh interpreters that import only
  the modules the work needs (`_Worker`), not forks of the caller.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator, Sequence
import json
import multiprocessing
from multiprocessing import connection
import os
import queue
import signal
import subprocess
import sys
import threading
from typing import TypeVar

T = TypeVar('T')
R = TypeVar('R')


def default_workers() -> int:
  """Worker processes for encoding: one per core, none where fork is absent."""
  if 'fork' not in multiprocessing.get_all_start_methods():
    return 0
  return (
      len(os.sched_getaffinity(0))
      if hasattr(os, 'sched_getaffinity')
      else (os.cpu_count() or 1)
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
    except BaseException as e:
      ready.put((_DONE, e))
    finally:
      if hasattr(source, 'close'):
        source.close()  # Closes the files of an abandoned generator now.

  thread = threading.Thread(
      target=fill, name='imagenet_resized-prefetch', daemon=True
  )
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


# ---------------------------------------------------------------------------
# parallel_streams: whole items to fresh worker processes, values streamed back.

# What a worker runs: a fresh interpreter (`python -c`), given the parent's
# sys.path, the package's name and folder, and the file descriptor of its end
# of a socket pair. The package's module object is made from its folder
# without running its __init__, which imports the TFDS builder (TFDS, ~0.6 s
# and ~27 MiB per worker, measured): the worker imports only the submodules
# the work needs.
_WORKER_MAIN = """
import importlib.util, json, os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # The parent handles Ctrl-C.
path, package, folder, fd = json.loads(sys.argv[1])
sys.path[:] = path
spec = importlib.util.spec_from_file_location(
    package, os.path.join(folder, '__init__.py'),
    submodule_search_locations=[folder])
sys.modules[package] = importlib.util.module_from_spec(spec)
from multiprocessing import connection
from %s.pipeline import worker_pool
worker_pool._serve(connection.Connection(fd))
"""

_PACKAGE = __name__.partition('.')[0]
_in_worker = False


def in_worker() -> bool:
  """Whether this process is a worker of `parallel_streams` (so that a work
  function may tune the process, which is its own, not the caller's)."""
  return _in_worker


def _serve(conn: connection.Connection) -> None:
  """Worker loop: (index, fn, item) in; each value of fn(item) out, then done.

  Messages out: ('value', index, value), ('done', index, None) and
  ('error', index, exception). None in: stop.
  """
  global _in_worker
  _in_worker = True
  while True:
    try:
      task = conn.recv()
    except EOFError:  # The parent is gone.
      return
    if task is None:
      return
    index, fn, item = task
    try:
      for value in fn(item):
        conn.send(('value', index, value))
    except Exception as e:
      try:
        conn.send(('error', index, e))
      except Exception:
        # Not picklable: its type and text are kept.
        conn.send(('error', index, RuntimeError(f'{type(e).__name__}: {e}')))
      continue
    conn.send(('done', index, None))


class _Worker:
  """One worker process and the parent's end of its socket pair."""

  def __init__(self):
    parent_end, child_end = connection.Pipe(duplex=True)
    package = sys.modules[_PACKAGE]
    args = [
        list(sys.path),
        _PACKAGE,
        list(package.__path__)[0],
        child_end.fileno(),
    ]
    self.process = subprocess.Popen(
        [sys.executable, '-c', _WORKER_MAIN % _PACKAGE, json.dumps(args)],
        pass_fds=[child_end.fileno()],
        stdin=subprocess.DEVNULL,
    )
    child_end.close()
    self.conn = parent_end

  def stop(self) -> None:
    """Ends the process now (it may be mid-item) and waits for it."""
    self.conn.close()
    if self.process.poll() is None:
      self.process.send_signal(signal.SIGKILL)
    self.process.wait()


def can_start_workers() -> bool:
  """Whether `parallel_streams` can start worker processes here."""
  return bool(sys.executable) and os.name == 'posix'


def parallel_streams(
    fn: Callable[[T], Iterable[R]], items: Sequence[T], workers: int
) -> Iterator[tuple[int, R]]:
  """(i, value) for each value of the generator `fn(items[i])`, for every item.

  Each item goes whole to one of `workers` worker processes (the next free
  one); the values of one item come in the order `fn` yields them, but the
  items are interleaved as their values arrive, so the overall order depends
  on timing. `fn` must be a module-level function of this package (or of a
  module on sys.path that does not need this package's __init__), and items
  and values picklable. A worker sends a value as soon as it is made and then
  waits until it is read, so each worker holds at most one value ahead of the
  caller: memory stays flat however long an item's stream is.

  An exception raised by `fn` is re-raised here, the other workers stopped:
  that of the first item (in `items`' order) that fails, so the same input
  gives the same error whatever the timing; the items before it finish first.
  With `workers` == 0 (or where no worker can start), items are run here, one
  after the other, in order.
  """
  items = list(items)
  if workers <= 0 or not can_start_workers():
    for index, item in enumerate(items):
      for value in fn(item):
        yield index, value
    return
  started = [_Worker() for _ in range(min(workers, len(items)))]
  todo = iter(enumerate(items))
  busy: dict[connection.Connection, int] = {}  # A worker's end -> its item.
  by_conn = {worker.conn: worker for worker in started}
  # The first failure, by item: items are handed out in order, so once item i
  # fails, the items before it are all running or done; they run on, and the
  # lowest failing item's exception is raised, whatever the timing.
  failed: tuple[int, BaseException] | None = None
  try:

    def hand_out(conn: connection.Connection) -> None:
      task = next(todo, None) if failed is None else None
      if task is not None:
        conn.send((task[0], fn, task[1]))
        busy[conn] = task[0]

    for worker in started:
      hand_out(worker.conn)
    while busy:
      for conn in connection.wait(list(busy)):
        if conn not in busy:  # Its item came after a failed one: dropped.
          continue
        try:
          kind, index, payload = conn.recv()
        except EOFError:
          code = by_conn[conn].process.wait()
          raise RuntimeError(
              f'a worker process ended (exit code {code}) before finishing its'
              ' item; expected it to run until told to stop'
          ) from None
        if kind == 'value':
          yield index, payload
        elif kind == 'done':
          del busy[conn]
          hand_out(conn)
        else:
          del busy[conn]
          if failed is None or index < failed[0]:
            failed = (index, payload)
          # Items after the failed one no longer matter.
          for other, item in list(busy.items()):
            if item > failed[0]:
              del busy[other]
      if failed is not None and not busy:
        raise failed[1]
    for worker in started:
      worker.conn.send(None)
  finally:
    for worker in started:
      worker.stop()
