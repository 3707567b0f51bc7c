"""Opening only regular files, reading no further than their size when opened.

A name under `manual_dir` may be a FIFO (opening it blocks forever), a link
to `/dev/zero`, a socket or a directory: it is opened with O_NONBLOCK, its
kind checked by `fstat` on the descriptor (immune to a swap after the
check), and reads stop at the `fstat` size (docs/safety.md).
"""

from __future__ import annotations

import fcntl
import io
import os
import stat

from imagenet_resized.common import SourceError
from imagenet_resized.readers import one_line

_KINDS = (
    (stat.S_ISDIR, 'a directory'),
    (stat.S_ISFIFO, 'a named pipe (FIFO)'),
    (stat.S_ISCHR, 'a character device'),
    (stat.S_ISBLK, 'a block device'),
    (stat.S_ISSOCK, 'a socket'),
)


def kind_of(mode: int) -> str:
  """What a file of `st_mode` `mode` is, in words ('a named pipe (FIFO)')."""
  for test, kind in _KINDS:
    if test(mode):
      return kind
  return f'not a regular file (mode {stat.filemode(mode)})'


def _kind_by_name(path: str) -> str | None:
  try:
    mode = os.stat(path).st_mode
  except (OSError, ValueError):
    return None
  return None if stat.S_ISREG(mode) else kind_of(mode)


def _link_target(path: str) -> str:
  """' (a link to /dev/zero)' if `path` is a symbolic link (for messages)."""
  try:
    return f' (a link to {one_line.shown(os.readlink(path), None)})'
  except (OSError, ValueError):
    return ''


class _UpToSize(io.RawIOBase):
  """Reads up to `size` bytes only; SEEK_END too (a zip's end as opened)."""

  def __init__(self, raw: io.FileIO, size: int):
    super().__init__()
    self._raw = raw
    self._size = size

  @property
  def name(self):
    return self._raw.name

  def readable(self) -> bool:
    return True

  def seekable(self) -> bool:
    return True

  def fileno(self) -> int:
    return self._raw.fileno()

  def tell(self) -> int:
    return self._raw.tell()

  def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
    if whence == os.SEEK_END:
      return self._raw.seek(self._size + offset, os.SEEK_SET)
    return self._raw.seek(offset, whence)

  def readinto(self, buffer) -> int:
    left = self._size - self._raw.tell()
    if left <= 0:
      return 0
    with memoryview(buffer) as view:
      return self._raw.readinto(view[: min(len(view), left)])

  def close(self) -> None:
    try:
      self._raw.close()
    finally:
      super().close()


class RegularFile(io.BufferedReader):
  """A regular file opened for reading; `size` is its size when opened."""

  size: int


def open_regular(path: str, expected: str) -> RegularFile:
  """Opens `path` for binary reading if it is a regular file; else raises
  SourceError (the path, what it is, then `expected`)."""
  shown = one_line.shown(os.fspath(path), None)  # Whole, on one line.
  try:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
  except OSError as e:
    # A socket cannot be opened (ENXIO): its kind from its name, for messages.
    kind = _kind_by_name(path)
    if kind is not None:
      raise SourceError(
          f'{shown}: is {kind}{_link_target(path)}, not a regular file;'
          f' {expected}'
      ) from None
    raise SourceError(
        f'{shown}: cannot be opened ({e.strerror or type(e).__name__});'
        f' {expected}'
    ) from None
  try:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
      raise SourceError(
          f'{shown}: is {kind_of(st.st_mode)}{_link_target(path)}, not a'
          f' regular file; {expected}'
      )
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    raw = io.FileIO(fd, 'rb', closefd=True)
  except BaseException:
    os.close(fd)
    raise
  raw.name = os.fspath(path)
  f = RegularFile(_UpToSize(raw, st.st_size), buffer_size=1 << 16)
  f.size = st.st_size
  return f
