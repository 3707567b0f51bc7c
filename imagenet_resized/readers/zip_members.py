"""Opening a zip member so that no compression method can inflate past what
the zip declares, nor make its decompressor's memory grow without bound.

Members are decompressed here with `max_length` (`zipfile` does not bound
bzip2 and LZMA: docs/reliability.md), deflate by zlib-ng (zlib's bytes).
Methods zipfile cannot read are refused in one line naming the method.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import struct
from typing import BinaryIO
import zipfile
import zlib

from zlib_ng import zlib_ng

from imagenet_resized.common import SourceError

STORED, DEFLATED, BZIP2, LZMA = 0, 8, 12, 14
_DECOMPRESSED = (DEFLATED, BZIP2, LZMA)  # Here; stored members by zipfile.
_RAW_BLOCK = 64 << 10  # Compressed bytes handed to a decompressor at once.
_LOCAL_HEADER = struct.Struct('<4s22xHH')  # Signature ... name, extra lengths.
# A zip's LZMA member starts with 2 bytes of version, 2 of properties size,
# then LZMA1's 5 bytes of properties: lc/lp/pb, dictionary size.
_LZMA_PROPERTIES = 5


def method_name(method: int) -> str:
  """'bzip2', 'deflate64', ... or 'unknown' for a method number."""
  return zipfile.compressor_names.get(method, 'unknown')


def open_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo | str, where: str
) -> BinaryIO:
  """A seekable binary file of member `info` of `zf` (`where`: its name)."""
  if isinstance(info, str):
    info = zf.getinfo(info)
  method = info.compress_type
  if method == STORED:
    return zf.open(info)
  if method not in _DECOMPRESSED:
    raise SourceError(
        f'{where}: is compressed with method {method}'
        f' ({method_name(method)}), which cannot be read here; expected a'
        ' member stored or compressed with deflate, bzip2 or LZMA'
    )
  if info.flag_bits & 0x1:
    raise SourceError(f'{where}: is encrypted; expected a plain member')
  zf.open(info).close()  # zipfile's checks of the local header (name, flags).
  return io.BufferedReader(_Inflating(zf.fp, info, method))


def _data_start(fp, info: zipfile.ZipInfo) -> int:
  fp.seek(info.header_offset)
  header = fp.read(_LOCAL_HEADER.size)
  if len(header) != _LOCAL_HEADER.size:
    raise zipfile.BadZipFile(f'truncated local header of {info.filename!r}')
  signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
  if signature != b'PK\x03\x04':
    raise zipfile.BadZipFile(f'bad local header of {info.filename!r}')
  return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


class _RawDeflate:
  """zlib-ng's raw inflate with the interface of bz2's and lzma's."""

  def __init__(self):
    self._inflate = zlib_ng.decompressobj(-zlib.MAX_WBITS)

  @property
  def needs_input(self) -> bool:
    return not self._inflate.unconsumed_tail

  @property
  def eof(self) -> bool:
    return self._inflate.eof

  def decompress(self, data: bytes, max_length: int) -> bytes:
    try:
      return self._inflate.decompress(
          self._inflate.unconsumed_tail + data, max_length
      )
    except zlib_ng.error as e:  # zlib's own error, as zipfile would raise.
      raise zlib.error(str(e)) from None


class _Inflating(io.RawIOBase):
  """A compressed member, inflated as read; seeking back starts over."""

  def __init__(self, fp, info: zipfile.ZipInfo, method: int):
    super().__init__()
    self._fp = fp
    self._info = info
    self._method = method
    self._start = _data_start(fp, info)
    self._restart()

  def _restart(self) -> None:
    self._read = 0  # Compressed bytes handed to the decompressor.
    self._out = 0  # Inflated bytes given out.
    self._crc = 0
    self._decompressor = {
        DEFLATED: _RawDeflate,
        BZIP2: bz2.BZ2Decompressor,
        LZMA: self._lzma,
    }[self._method]()

  def _raw(self, n: int) -> bytes:
    n = min(n, self._info.compress_size - self._read)
    if n <= 0:
      return b''
    self._fp.seek(self._start + self._read)
    data = self._fp.read(n)
    self._read += len(data)
    return data

  def _lzma(self) -> lzma.LZMADecompressor:
    head = self._raw(4)
    if len(head) != 4:
      raise EOFError(f'{self._info.filename!r}: truncated LZMA header')
    (size,) = struct.unpack('<H', head[2:4])
    properties = self._raw(size)
    if size != _LZMA_PROPERTIES or len(properties) != size:
      raise zipfile.BadZipFile(
          f'LZMA properties of {size} bytes in {self._info.filename!r}'
          f' (LZMA1 has {_LZMA_PROPERTIES})'
      )
    lclppb = properties[0]
    if lclppb >= 9 * 5 * 5:
      raise zipfile.BadZipFile(
          f'bad LZMA properties in {self._info.filename!r}'
      )
    pb, rest = divmod(lclppb, 9 * 5)
    lp, lc = divmod(rest, 9)
    # LZMA refers back only into what it has written: a dictionary capped at
    # the member's size gives the same bytes, whatever size is declared.
    declared = int.from_bytes(properties[1:5], 'little')
    lzma1 = {'id': lzma.FILTER_LZMA1, 'lc': lc, 'lp': lp, 'pb': pb}
    lzma1['dict_size'] = max(4096, min(declared, self._info.file_size))
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma1])

  def readable(self) -> bool:
    return True

  def seekable(self) -> bool:
    return True

  def tell(self) -> int:
    return self._out

  def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
    base = {
        os.SEEK_SET: 0,
        os.SEEK_CUR: self._out,
        os.SEEK_END: self._info.file_size,
    }
    target = max(0, min(base[whence] + offset, self._info.file_size))
    if target < self._out:
      self._restart()
    while self._out < target:
      if not self.read(min(target - self._out, 1 << 20)):
        break
    return self._out

  def readinto(self, buffer) -> int:
    n = min(len(buffer), self._info.file_size - self._out)
    if n <= 0:
      return 0
    data = b''
    while not data:
      if self._decompressor.eof:
        raise EOFError(
            f'{self._info.filename!r}: the compressed stream ends after'
            f' {self._out} of the {self._info.file_size} bytes declared'
        )
      chunk = self._raw(_RAW_BLOCK) if self._decompressor.needs_input else b''
      if self._decompressor.needs_input and not chunk:
        raise EOFError(f'{self._info.filename!r}: truncated compressed data')
      data = self._decompressor.decompress(chunk, max_length=n)
    with memoryview(buffer) as view:
      view[: len(data)] = data
    self._out += len(data)
    self._crc = zlib_ng.crc32(data, self._crc)  # zlib's value, faster.
    if self._out == self._info.file_size and self._crc != self._info.CRC:
      raise zipfile.BadZipFile(f'Bad CRC-32 for file {self._info.filename!r}')
    return len(data)
