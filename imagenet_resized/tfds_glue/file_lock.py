"""An exclusive lock between processes, held on a local lock file.

Two builds (or array exports) of one dataset into one folder must not do the
same work at once: the second waits for the first, then finds its result. The
kernel releases an `fcntl.flock` when its holder exits, SIGKILL included, so
no stale lock is left behind (the lock file stays, and is reused). Remote
paths (gs://, ...) have no such lock: `held` then yields without locking, and
says so in one log line.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import fcntl
import logging
import os

from imagenet_resized import common

log = logging.getLogger(__name__)


@contextlib.contextmanager
def held(lock_path: str, what: str) -> Iterator[bool]:
  """Within the block, this process holds the lock `lock_path`; waits for
  another holder, logging once `what` ('build of imagenet_resized/32x32
  0.1.0') and its pid. Yields True, or False for a remote path (no lock)."""
  if not common.is_local(lock_path):
    log.info(
        'No lock for the %s: %s is not a local path; concurrent runs into it'
        ' are not kept apart',
        what,
        lock_path,
    )
    yield False
    return
  os.makedirs(os.path.dirname(lock_path) or '.', exist_ok=True)
  fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 32, 0).decode('ascii', 'replace').strip() or '?'
      log.warning(
          'Waiting for another %s (process %s holds %s) to finish',
          what,
          holder,
          lock_path,
      )
      fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'{os.getpid()}\n'.encode('ascii'), 0)
    yield True
  finally:
    os.close(fd)  # Closing the descriptor releases the lock.
