"""Work spread over worker processes: whole items in, streams of values out.

`parallel_streams(fn, items, workers)` hands each item whole to one worker
process, which runs the generator `fn(item)` and streams its values back. It
is the package's one way to run work in parallel (`examples`,
`ilsvrc.split_examples`, `array_files.array_export`).

The workers are fresh interpreters (`python -c`), not forks of the caller
(which may run TensorFlow's threads), and import only what their work needs,
not the package's `__init__` (which imports TFDS). When told to stop, or when
the caller stops reading, they are killed (SIGKILL) and waited for; when the
caller dies, the kernel kills them (PR_SET_PDEATHSIG on Linux; elsewhere they
end when their socket closes). They ignore SIGINT, SIGTERM and SIGHUP sent to
the process group: the caller decides (`stop_signals`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
import ctypes
import json
from multiprocessing import connection
import os
import signal
import subprocess
import sys
from typing import TypeVar

T = TypeVar('T')
R = TypeVar('R')


def default_workers() -> int:
  """One worker per core this process may use."""
  if hasattr(os, 'sched_getaffinity'):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


# What a worker runs, given the caller's sys.path and pid, the package's name
# and folder, and its socket's file descriptor. The package's module is made
# from its folder without running its __init__ (which imports TFDS).
_WORKER_MAIN = """
import importlib.util, json, os, signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
  signal.signal(s, signal.SIG_IGN)
path, package, folder, fd, caller = json.loads(sys.argv[1])
try:
  import ctypes
  ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
  pass
if os.getppid() != caller:  # The caller died before the line above.
  os._exit(0)
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
# The workers of every running `parallel_streams` of this process.
_live: set[_Worker] = set()


def _keep_freed_memory() -> None:
  """Asks glibc's malloc to keep a worker's freed memory for reuse, rather
  than give each chunk's large blocks back to the kernel and fault them in
  again, zeroed (docs/speed.md). Workers only; a no-op without glibc."""
  try:
    mallopt = ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):
    return
  m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>.
  mallopt(m_trim_threshold, 256 << 20)
  mallopt(m_mmap_threshold, 64 << 20)


def _serve(conn: connection.Connection) -> None:
  """Worker loop: (index, fn, item) in; ('value', index, value) per value of
  fn(item), then ('done', index, None) or ('error', index, exception) out.
  None in: stop. When the caller is gone, the worker ends without a word."""
  _keep_freed_memory()
  try:
    while (task := conn.recv()) is not None:
      index, fn, item = task
      try:
        for value in fn(item):
          conn.send(('value', index, value))
      except (BrokenPipeError, ConnectionResetError):
        raise
      except Exception as e:
        try:
          conn.send(('error', index, e))
        except (BrokenPipeError, ConnectionResetError):
          raise
        except Exception:  # Not picklable: its type and text are kept.
          error = RuntimeError(f'{type(e).__name__}: {e}')
          conn.send(('error', index, error))
        continue
      conn.send(('done', index, None))
  except (EOFError, BrokenPipeError, ConnectionResetError):
    os._exit(0)  # The caller is gone: no word, no atexit work.


class _Worker:
  """One worker process and the caller's end of its socket pair."""

  def __init__(self):
    parent_end, child_end = connection.Pipe(duplex=True)
    package = sys.modules[_PACKAGE]
    args = [
        list(sys.path),
        _PACKAGE,
        list(package.__path__)[0],
        child_end.fileno(),
        os.getpid(),
    ]
    self.process = subprocess.Popen(
        [sys.executable, '-c', _WORKER_MAIN % _PACKAGE, json.dumps(args)],
        pass_fds=[child_end.fileno()],
        stdin=subprocess.DEVNULL,
    )
    child_end.close()
    self.conn = parent_end
    _live.add(self)

  def stop(self) -> None:
    """Ends the process now (it may be mid-item) and waits for it."""
    _live.discard(self)
    self.conn.close()
    if self.process.poll() is None:
      self.process.send_signal(signal.SIGKILL)
    self.process.wait()


def stop_all() -> None:
  """Kills and waits for every worker of this process (`stop_signals`)."""
  for worker in list(_live):
    worker.stop()


def parallel_streams(
    fn: Callable[[T], Iterable[R]],
    items: Iterable[T],
    workers: int,
    ordered: bool = False,
) -> Iterator[tuple[int, R]]:
  """(i, value) for each value of the generator `fn(item i)`, for every item.

  Each item goes whole, in order, to one of `workers` processes as they
  become free; an item's values come in order, items interleaved (with
  `ordered`, item after item). A worker waits until its value is read, so
  memory stays flat. `fn` must be importable without the package's
  __init__; items and values picklable. The exception of the first failing
  item in `items`' order is re-raised once the items before it finish, the
  other workers stopped, so the same input gives the same error whatever the
  timing. With `workers` == 0 (or where no worker can start), items run
  here, in order.
  """
  todo = enumerate(items)
  if workers <= 0 or not sys.executable or os.name != 'posix':
    for index, item in todo:
      for value in fn(item):
        yield index, value
    return
  started: list[_Worker] = []
  busy: dict[connection.Connection, int] = {}  # A worker's end -> its item.
  by_conn: dict[connection.Connection, _Worker] = {}
  # The lowest failing item: items are handed out in order, so those before
  # it are running or done, and run on.
  failed: tuple[int, BaseException] | None = None

  def hand_out(conn: connection.Connection | None) -> None:
    task = next(todo, None) if failed is None else None
    if task is None:
      return
    if conn is None:  # A worker is started for each of the first items.
      worker = _Worker()
      started.append(worker)
      conn = worker.conn
      by_conn[conn] = worker
    conn.send((task[0], fn, task[1]))
    busy[conn] = task[0]

  try:
    for _ in range(workers):
      hand_out(None)
    while busy:
      waited = [min(busy, key=busy.get)] if ordered else list(busy)
      for conn in connection.wait(waited):
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
