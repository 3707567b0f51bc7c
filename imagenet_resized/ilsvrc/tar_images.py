"""Images read out of the ILSVRC2012 tarballs, in stream mode or by member
offsets; links, devices and sparse members are refused."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import io
import posixpath
import tarfile

from imagenet_resized.common import SourceError
from imagenet_resized.ilsvrc import layout
from imagenet_resized.ilsvrc import resizing
from imagenet_resized.readers import one_line
from imagenet_resized.readers import regular_files

_EXPECTED_TAR = 'expected a regular file: the ILSVRC2012 tarball as downloaded'


def open_tar(path: str) -> regular_files.RegularFile:
  """A tarball opened if it is a regular file (SourceError otherwise); reads
  stop at its size when opened."""
  return regular_files.open_regular(path, _EXPECTED_TAR)


@contextlib.contextmanager
def tar_errors(path: str) -> Iterator[None]:
  """Within the block, an unreadable tar is a one-line SourceError."""
  try:
    yield
  except (tarfile.TarError, EOFError, OSError) as e:
    raise tar_error(path, e) from None


def tar_error(path: str, e: Exception) -> SourceError:
  reason = one_line.first_line(e) or type(e).__name__
  return SourceError(
      f'{path}: not a readable tar (corrupt or truncated: {reason}); expected'
      ' the ILSVRC2012 tarball as downloaded'
  )


# What a tar member that is not a regular file is, for messages.
_SPECIAL_MEMBERS = (
    (tarfile.TarInfo.issym, 'a symbolic link'),
    (tarfile.TarInfo.islnk, 'a hard link'),
    (tarfile.TarInfo.ischr, 'a character device'),
    (tarfile.TarInfo.isblk, 'a block device'),
    (tarfile.TarInfo.isfifo, 'a FIFO'),
    (tarfile.TarInfo.issparse, 'a sparse file'),
)


def _special_kind(member: tarfile.TarInfo) -> str | None:
  """What a member is if not a plain regular file (sparse counts as special)."""
  for test, kind in _SPECIAL_MEMBERS:
    if test(member):
      return kind
  return None if member.isreg() else f'a member of type {member.type!r}'


def member_path(name: str) -> str | None:
  """A tar member's normalised relative path, or None to skip it."""
  path = posixpath.normpath(name.replace('\\', '/'))
  if path.startswith(('/', '..')) or path == '.':
    return None
  if posixpath.basename(path).startswith('.'):  # ._ resource forks and such.
    return None
  return path


def _iter_tar_files(
    tar: tarfile.TarFile, where_tar: str
) -> Iterator[tuple[str, tarfile.TarInfo]]:
  """(normalised path, member) of a tar's regular files; folders and hidden
  members skipped, links, devices, FIFOs and sparse files (whose holes read
  as gigabytes of zeros) refused."""
  for member in tar:
    if member.isdir():
      continue
    path = member_path(member.name)
    if path is None:
      continue
    kind = _special_kind(member)
    if kind is not None:
      raise SourceError(
          f'{where_tar}:{one_line.shown(member.name)}: {kind}; expected'
          ' regular files only (JPEG images, or class tars of them)'
      )
    yield path, member


def iter_class_tar(
    fileobj, train_tar: str, class_member: str, wnid: str, label: int
) -> Iterator[resizing.Encoded]:
  """The images of one class tar, read from `fileobj` in stream mode."""
  where_tar = f'{train_tar}:{class_member}'
  with tar_errors(where_tar):
    with tarfile.open(fileobj=fileobj, mode='r|') as inner:
      for path, member in _iter_tar_files(inner, where_tar):
        where = f'{where_tar}/{one_line.shown(member.name)}'
        resizing.check_image_bytes(where, member.size)
        data = inner.extractfile(member).read()
        yield resizing.Encoded(f'train/{wnid}/{path}', where, data, label)


def class_tar_wnid(path: str, name: str, member: tarfile.TarInfo) -> str:
  """The WNID a member of the train tarball names; it must be a class tar."""
  m = layout.CLASS_TAR_RE.fullmatch(name)
  if not m:
    raise SourceError(
        f'{path}:{one_line.shown(member.name)}: unexpected member;'
        ' expected only the class tars nXXXXXXXX.tar'
    )
  return m.group(1)


class MemberSlice(io.RawIOBase):
  """`length` bytes of a file from its current position, read-only (a class
  tar inside the train tarball, not copied into memory)."""

  def __init__(self, f, length: int):
    super().__init__()
    self._f = f
    self._left = length

  def readable(self) -> bool:
    return True

  def readinto(self, buffer) -> int:
    n = min(len(buffer), self._left)
    if n <= 0:
      return 0
    data = self._f.read(n)
    buffer[: len(data)] = data
    self._left -= len(data)
    return len(data)


class _PiecewiseReads:
  """A file whose read(n) reads 1 MiB at a time, up to n or the end: tarfile
  asks for a long header's declared size (maybe terabytes) in one read, which
  a buffered file would allocate first."""

  def __init__(self, f):
    self._f = f

  def read(self, n: int = -1) -> bytes:
    if n is None or n < 0:
      return self._f.read()
    parts = []
    while n > 0:
      piece = self._f.read(min(n, 1 << 20))
      if not piece:
        break
      parts.append(piece)
      n -= len(piece)
    return b''.join(parts)

  def __getattr__(self, name):
    return getattr(self._f, name)


def tar_members(path: str) -> Iterator[tuple[str, tarfile.TarInfo]]:
  """The file members of an uncompressed tar, reading headers only."""
  with tar_errors(path):
    with (
        open_tar(path) as f,
        tarfile.open(fileobj=_PiecewiseReads(f), mode='r:') as tar,
    ):
      yield from _iter_tar_files(tar, path)
