"""Copying an npz out of a compressed zip member, never past what it declares.

Each seek back in a deflated member inflates it again, so an npz is inflated
once into a temporary file. A member may inflate to anything (a zip bomb), so
the copy walks the npz as it streams by: each `.npy` header must agree with
the zip's sizes before its data is copied, the directory and end records are
bounded, and the npz must end where the outer member does; else SourceError.
"""

from __future__ import annotations

import io
import math
import shutil
import struct
import tempfile
from typing import BinaryIO

from imagenet_resized.common import SourceError
from imagenet_resized.readers import batch_chunks
from imagenet_resized.readers import npz_batches
from imagenet_resized.readers import one_line
from imagenet_resized.readers import zip_members

_LOCAL = b'PK\x03\x04'
_CENTRAL = b'PK\x01\x02'
_END64 = b'PK\x06\x06'
_LOCATOR64 = b'PK\x06\x07'
_END = b'PK\x05\x06'
_DESCRIPTOR = b'PK\x07\x08'
# Copied as they are (compressed size bounded): reading them later inflates
# at most what their .npy header declares (`zip_members`).
_COMPRESSED = (zip_members.DEFLATED, zip_members.BZIP2, zip_members.LZMA)
_ZIP64_EXTRA = 0x0001
_NPY_MAGIC = b'\x93NUMPY'
# np.savez writes one member per array: a batch has two or three.
MAX_MEMBERS = 16
# A zip64 end record is 56 bytes, more only with extensible data.
MAX_END64_BYTES = 1024
_EXPECTED = 'expected an np.savez file with `data` and `labels`'


class _Truncated(Exception):
  """The npz ends early: nothing more to copy (the reader reports it)."""


class _Copy:
  """Copies bytes from src to dst, counting them; refuses a short read."""

  def __init__(self, src: BinaryIO, dst: BinaryIO, where: str):
    self._src, self._dst, self._where = src, dst, where
    self.copied = 0

  def take(self, n: int) -> bytes:
    """The next n bytes (small: headers), copied and returned."""
    data = self._src.read(n)
    self._dst.write(data)
    self.copied += len(data)
    if len(data) != n:
      raise _Truncated()
    return data

  def pipe(self, n: int) -> None:
    """Copies the next n bytes (large: array data) in blocks."""
    while n:
      self.take(min(n, 1 << 20))
      n -= min(n, 1 << 20)

  def refuse(self, what: str, expected: str = _EXPECTED) -> SourceError:
    return SourceError(f'{self._where}: {what}; {expected}')


def _zip64_sizes(extra: bytes, csize: int, usize: int) -> tuple[int, int, bool]:
  """Sizes from a zip64 extra field where the header holds 0xFFFFFFFF, and
  whether there is one (then a data descriptor has 8-byte sizes)."""
  zip64 = False
  pos = 0
  while pos + 4 <= len(extra):
    kind, length = struct.unpack('<HH', extra[pos : pos + 4])
    body = extra[pos + 4 : pos + 4 + length]
    if kind == _ZIP64_EXTRA:
      zip64 = True
      values = [
          v for (v,) in struct.iter_unpack('<Q', body[: len(body) // 8 * 8])
      ]
      if usize == 0xFFFFFFFF and values:
        usize = values.pop(0)
      if csize == 0xFFFFFFFF and values:
        csize = values.pop(0)
      break
    pos += 4 + length
  return csize, usize, zip64


def _npy_header(c: _Copy, where: str, shown: str) -> tuple[int, int]:
  """Copies a stored .npy member's header; returns the bytes of the header
  and of the data it declares. `where` names the member, `shown` its name."""
  magic = c.take(8)
  if magic[:6] != _NPY_MAGIC:
    raise c.refuse(f'{shown} is not a .npy array (no .npy magic)')
  length_bytes = c.take(2 if magic[6] == 1 else 4)
  header_length = int.from_bytes(length_bytes, 'little')
  if header_length > npz_batches.MAX_NPY_HEADER:
    raise c.refuse(
        f'{shown} has a .npy header of {header_length} bytes (over'
        f' {npz_batches.MAX_NPY_HEADER})'
    )
  header = c.take(header_length)
  shape, _, dtype = npz_batches.read_npy_header(
      io.BytesIO(magic + length_bytes + header), where
  )
  data_bytes = math.prod(shape) * dtype.itemsize
  if data_bytes > batch_chunks.MAX_BATCH_BYTES:
    raise c.refuse(
        f'{shown} declares shape {one_line.shape(shape)} of {dtype}'
        f' ({one_line.quantity(data_bytes)} bytes), over the'
        f' {batch_chunks.MAX_BATCH_BYTES} bytes of the largest batch allowed'
    )
  return len(magic) + len(length_bytes) + header_length, data_bytes


def _member(c: _Copy, where: str) -> None:
  """Copies one member after its local header's signature."""
  _, flags, method, _, _, _, csize, usize, name_length, extra_length = (
      struct.unpack('<HHHHHIIIHH', c.take(26))
  )
  name = c.take(name_length).decode('utf-8', 'replace')
  shown = one_line.shown(name, 60)
  csize, usize, zip64 = _zip64_sizes(c.take(extra_length), csize, usize)
  streamed = bool(flags & 0x08)  # Sizes in a descriptor after the data.
  if flags & 0x01:
    raise c.refuse(f'holds an encrypted member {shown}')
  if not name.endswith('.npy'):
    raise c.refuse(f'holds a member {shown} that is not a .npy array')
  if method == zip_members.STORED:
    header_bytes, data_bytes = _npy_header(c, f'{where}:{shown}', shown)
    declared = header_bytes + data_bytes
    if streamed:
      usize = csize = declared
    if not usize == csize == declared:
      raise c.refuse(
          f'{shown}: its .npy header declares {declared} bytes but its zip'
          f' header {usize}',
          'expected the sizes to agree, as np.savez' ' writes them',
      )
    c.pipe(data_bytes)
  elif method in _COMPRESSED and not streamed:
    if csize > batch_chunks.MAX_BATCH_BYTES:
      raise c.refuse(f'{shown} declares {csize} compressed bytes')
    c.pipe(csize)
  else:
    raise c.refuse(
        f'{shown} is compressed with method {method}'
        f' ({zip_members.method_name(method)})'
        f'{" of unknown size" if streamed else ""}'
    )
  if streamed:
    _descriptor(c, shown, csize, usize, zip64)


def _descriptor(
    c: _Copy, shown: str, csize: int, usize: int, zip64: bool
) -> None:
  """The data descriptor after a streamed member: its sizes must agree."""
  first = c.take(4)
  if first == _DESCRIPTOR:
    c.take(4)  # The CRC-32 (then first was the signature).
  sizes = struct.unpack('<QQ' if zip64 else '<II', c.take(16 if zip64 else 8))
  if sizes != (csize, usize):
    raise c.refuse(
        f'{shown}: its data descriptor gives sizes {sizes}, its .npy header'
        f' {(csize, usize)}',
        'expected the sizes to agree',
    )


def copy_npz(
    src: BinaryIO, dst: BinaryIO, where: str, declared_size: int
) -> None:
  """Copies the npz `src` streams (`declared_size` bytes) into `dst`; stops
  with SourceError at anything its headers do not declare. An npz cut short is
  copied as far as it goes (reading it then says so)."""
  folder = tempfile.gettempdir()
  free = shutil.disk_usage(folder).free
  if declared_size > free:
    raise SourceError(
        f'{where}: inflating this npz needs {declared_size} bytes of temporary'
        f' disk but {folder} has {free} free; expected room for one inflated'
        ' batch (set TMPDIR to a larger disk)'
    )
  try:
    _copy(_Copy(src, dst, where), where, declared_size)
  except _Truncated:
    pass


def _copy(c: _Copy, where: str, declared_size: int) -> None:
  members = 0
  signature = c.take(4)
  while signature == _LOCAL:
    members += 1
    if members > MAX_MEMBERS:
      raise c.refuse(f'holds more than {MAX_MEMBERS} members')
    _member(c, where)
    signature = c.take(4)
  entries = 0
  while signature == _CENTRAL:
    entries += 1
    if entries > members:
      raise c.refuse('lists more members in its directory than it holds')
    fixed = c.take(42)
    c.take(sum(struct.unpack('<HHH', fixed[24:30])))  # Name, extra, comment.
    signature = c.take(4)
  if signature == _END64:
    (size,) = struct.unpack('<Q', c.take(8))
    if size > MAX_END64_BYTES:
      raise c.refuse(f'has a zip64 end record of {size} bytes')
    c.take(size)
    signature = c.take(4)
  if signature == _LOCATOR64:
    c.take(16)
    signature = c.take(4)
  if signature != _END:
    raise c.refuse(
        f'holds unexpected bytes at byte {c.copied - 4} (not a zip header)'
    )
  (comment_length,) = struct.unpack('<H', c.take(18)[16:18])
  c.take(comment_length)
  if c.copied != declared_size:
    raise c.refuse(
        f'the npz ends after {c.copied} bytes but its zip member declares'
        f' {declared_size}'
    )
