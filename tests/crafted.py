"""Writers of crafted files, byte by byte, independently of the package.

Pickle opcodes, .npy headers, zip and tar headers and PNG chunks are written
here from their specifications, so that a test can say exactly what a hostile
file holds (and so that no writer in the package can hide a reader's bug).
Large runs of zero bytes are kept as a count (`Zeros`) and deflated block by
block, so a file that inflates to gigabytes costs the test megabytes.
"""

from __future__ import annotations

import bz2
import dataclasses
import lzma
import pickletools
import struct
import tarfile
import zlib
from collections.abc import Sequence

# ---------------------------------------------------------------------------
# Pickle opcodes.

OP = {op.name: op.code.encode('latin-1') for op in pickletools.opcodes}


def glob(module: str, name: str) -> bytes:
  return OP['GLOBAL'] + f'{module}\n{name}\n'.encode()


def text(s: str) -> bytes:
  data = s.encode('utf-8')
  return OP['BINUNICODE'] + struct.pack('<I', len(data)) + data


def raw(data: bytes) -> bytes:
  return OP['BINBYTES'] + struct.pack('<I', len(data)) + data


def py2_str(data: bytes) -> bytes:
  return OP['BINSTRING'] + struct.pack('<i', len(data)) + data


def integer(n: int) -> bytes:
  return OP['BININT'] + struct.pack('<i', n)


def tup(*items: bytes) -> bytes:
  return OP['MARK'] + b''.join(items) + OP['TUPLE']


def call(func: bytes, args: bytes) -> bytes:
  return func + args + OP['REDUCE']


def dtype(code: str, state: bytes) -> bytes:
  """numpy.dtype(code, False, True) with BUILD `state`."""
  return (
      call(glob('numpy', 'dtype'), tup(text(code), OP['NEWFALSE'], OP['NEWTRUE']))
      + state + OP['BUILD']
  )


def dtype_state(
    endian: str = '|', names: bytes = OP['NONE'], fields: bytes = OP['NONE'],
    elsize: int = -1, alignment: int = -1, flags: int = 0,
) -> bytes:
  """The state tuple numpy pickles a dtype with (version 3)."""
  return tup(
      integer(3), text(endian), OP['NONE'], names, fields, integer(elsize),
      integer(alignment), integer(flags),
  )


U1 = dtype('u1', dtype_state('|'))
I8 = dtype('i8', dtype_state('<'))


def ndarray(shape: Sequence[int], dtype_ops: bytes, values: bytes) -> bytes:
  """An array as numpy pickles it: _reconstruct, then BUILD with its state."""
  return call(
      glob('numpy.core.multiarray', '_reconstruct'),
      tup(glob('numpy', 'ndarray'), tup(integer(0)), raw(b'b')),
  ) + tup(
      integer(1), tup(*map(integer, shape)), dtype_ops, OP['NEWFALSE'], values
  ) + OP['BUILD']


def strided_view(shape: Sequence[int], dtype_ops: bytes, values: bytes,
                 strides: Sequence[int]) -> bytes:
  """numpy.ndarray(shape, dtype, buffer, 0, strides) called directly: a view
  (zero strides repeat the same bytes), not how numpy pickles an array."""
  return call(glob('numpy', 'ndarray'), tup(
      tup(*map(integer, shape)), dtype_ops, raw(values), integer(0),
      tup(*map(integer, strides)),
  ))


def int_list(values: Sequence[int]) -> bytes:
  return OP['EMPTY_LIST'] + OP['MARK'] + b''.join(map(integer, values)) + OP['APPENDS']


def batch_pickle(data: bytes, labels: bytes) -> bytes:
  """A protocol 2 pickle of {'data': data, 'labels': labels} (opcodes given)."""
  return (
      OP['PROTO'] + b'\x02' + OP['EMPTY_DICT'] + OP['MARK']
      + text('data') + data + text('labels') + labels
      + OP['SETITEMS'] + OP['STOP']
  )


# ---------------------------------------------------------------------------
# .npy


def npy(descr: str, shape: Sequence[int], values: bytes) -> bytes:
  """A version 1.0 .npy file: magic, header dict padded to 64 bytes, values."""
  header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
  pad = 64 - (10 + len(header) + 1) % 64
  header = (header + ' ' * pad + '\n').encode('latin-1')
  return b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header + values


# ---------------------------------------------------------------------------
# Zip, from parts: bytes, or runs of zero bytes kept as a count.


@dataclasses.dataclass(frozen=True)
class Zeros:
  count: int


Part = bytes | Zeros
_BLOCK = 1 << 20


def length(parts: Sequence[Part]) -> int:
  return sum(p.count if isinstance(p, Zeros) else len(p) for p in parts)


def crc32(parts: Sequence[Part]) -> int:
  crc, zeros = 0, bytes(_BLOCK)
  for p in parts:
    if isinstance(p, Zeros):
      n = p.count
      while n:
        crc = zlib.crc32(zeros[: min(n, _BLOCK)], crc)
        n -= min(n, _BLOCK)
    else:
      crc = zlib.crc32(p, crc)
  return crc


def deflate(parts: Sequence[Part]) -> bytes:
  """A raw deflate stream of the parts (zeros deflated once per 1 MiB block).

  After a full flush a deflate stream refers to nothing before it, so the
  compressed form of one flushed block of zeros can be repeated.
  """
  co = zlib.compressobj(9, zlib.DEFLATED, -15)
  out = []
  zero_block = None
  for p in parts:
    if isinstance(p, Zeros):
      whole, rest = divmod(p.count, _BLOCK)
      if whole:
        if zero_block is None:
          zero_block = co.compress(bytes(_BLOCK)) + co.flush(zlib.Z_FULL_FLUSH)
          whole -= 1
          out.append(zero_block)
        out.append(zero_block * whole)
      if rest:
        out.append(co.compress(bytes(rest)) + co.flush(zlib.Z_FULL_FLUSH))
    else:
      out.append(co.compress(p) + co.flush(zlib.Z_FULL_FLUSH))
  out.append(co.flush(zlib.Z_FINISH))
  return b''.join(out)


def _streamed(compressor, parts: Sequence[Part]) -> bytes:
  out = []
  for p in parts:
    if isinstance(p, Zeros):
      n = p.count
      while n:
        out.append(compressor.compress(bytes(min(n, 8 * _BLOCK))))
        n -= min(n, 8 * _BLOCK)
    else:
      out.append(compressor.compress(p))
  out.append(compressor.flush())
  return b''.join(out)


def bzip2(parts: Sequence[Part]) -> bytes:
  """A bzip2 stream of the parts (zip method 12): 256 MiB of zeros take
  about 200 bytes (and 8 s to compress)."""
  return _streamed(bz2.BZ2Compressor(9), parts)


def lzma_zip(parts: Sequence[Part]) -> bytes:
  """The parts as a zip's LZMA member (method 14): a 2-byte version, the
  properties' size (5), LZMA1's properties, then the raw LZMA1 stream."""
  lc, lp, pb, dict_size = 3, 0, 2, 1 << 20
  properties = bytes([(pb * 5 + lp) * 9 + lc]) + dict_size.to_bytes(4, 'little')
  compressor = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=[{
      'id': lzma.FILTER_LZMA1, 'dict_size': dict_size, 'lc': lc, 'lp': lp,
      'pb': pb,
  }])
  return b'\x09\x04' + struct.pack('<H', len(properties)) + properties + (
      _streamed(compressor, parts)
  )


DEFLATE, BZIP2, LZMA = 8, 12, 14
_COMPRESS = {DEFLATE: deflate, BZIP2: bzip2, LZMA: lzma_zip}


@dataclasses.dataclass(frozen=True)
class Member:
  """A zip member: name, its content (parts), how it is stored.

  `declared` overrides the uncompressed size the headers give (a lie).
  `method` is a zip compression method (12 bzip2, 14 LZMA, ...); methods
  this writer cannot compress (deflate64: 9) store the parts as they are.
  """

  name: str
  parts: tuple
  deflated: bool = False
  declared: int | None = None
  method: int | None = None

  @property
  def method_number(self) -> int:
    return self.method if self.method is not None else 8 * self.deflated

  def data(self) -> list:
    compress = _COMPRESS.get(self.method_number)
    return [compress(self.parts)] if compress else list(self.parts)


def zip_parts(members: Sequence[Member], between: Sequence[Part] = (),
              after: Sequence[Part] = ()) -> list[Part]:
  """A zip (no zip64) as parts; `between` goes before the central directory,
  `after` after the end record."""
  out: list[Part] = []
  central = []
  for m in members:
    offset = length(out)
    data = m.data()
    usize = m.declared if m.declared is not None else length(m.parts)
    name = m.name.encode()
    fields = (20, 0, m.method_number, 0, 0x21, crc32(m.parts),
              length(data), usize, len(name), 0)
    out += [b'PK\x03\x04' + struct.pack('<HHHHHIIIHH', *fields) + name, *data]
    central.append(
        b'PK\x01\x02' + struct.pack('<HHHHHHIIIHHHHHII', 20, *fields, 0, 0, 0, 0, offset)
        + name
    )
  out += list(between)
  start = length(out)
  directory = b''.join(central)
  out.append(directory)
  out.append(b'PK\x05\x06' + struct.pack(
      '<HHHHIIH', 0, 0, len(members), len(members), len(directory), start, 0))
  out += list(after)
  return out


def join(parts: Sequence[Part]) -> bytes:
  """The parts as bytes (for small files only)."""
  return b''.join(bytes(p.count) if isinstance(p, Zeros) else p for p in parts)


# ---------------------------------------------------------------------------
# Tar


def tar_header(name: str, size: int, kind: bytes = tarfile.REGTYPE,
               sparse: Sequence[tuple[int, int]] = (), real_size: int = 0) -> bytes:
  """One 512-byte GNU tar header (old GNU sparse map in it if `sparse`)."""
  info = tarfile.TarInfo(name)
  info.size = size
  info.type = tarfile.REGTYPE
  block = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
  block[156:157] = kind
  for i, (offset, count) in enumerate(sparse):
    block[386 + 24 * i : 410 + 24 * i] = b'%011o\0%011o\0' % (offset, count)
  if sparse:
    block[483:495] = b'%011o\0' % real_size
  block[148:156] = b' ' * 8
  block[148:156] = b'%06o\0 ' % sum(block)
  return bytes(block)


def tar_end() -> bytes:
  return bytes(1024)


def padded(data: bytes) -> bytes:
  return data + bytes(-len(data) % 512)


# ---------------------------------------------------------------------------
# PNG


def png_of_zeros(width: int, height: int) -> bytes:
  """An RGB PNG of black pixels, written row block by row block."""
  def chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack('>I', len(body)) + kind + body
            + struct.pack('>I', zlib.crc32(kind + body)))
  co = zlib.compressobj(9)
  row = bytes(1 + 3 * width)  # Filter type 0, then the pixels.
  rows_per_piece = max(1, (1 << 20) // len(row))
  idat = []
  for start in range(0, height, rows_per_piece):
    idat.append(co.compress(row * min(rows_per_piece, height - start)))
  idat.append(co.flush())
  return (
      b'\x89PNG\r\n\x1a\n'
      + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
      + chunk(b'IDAT', b''.join(idat)) + chunk(b'IEND', b'')
  )
