"""TFRecord files written and read without TensorFlow.

Each record: the data's length (8 bytes, little-endian), the masked CRC-32C
of those 8 bytes (4 bytes), the data, the masked CRC-32C of the data (4
bytes); both checksums are verified on reading, as TensorFlow's reader does.
Not `tf.io.TFRecordWriter`: a build from local files would import TensorFlow
for it alone (docs/speed.md). The bytes are TensorFlow's (tests compare).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
import functools
import io
import os
import struct

import google_crc32c

_HEADER = struct.Struct('<QI')  # The length and its checksum.
_LENGTH = struct.Struct('<Q')
_CRC = struct.Struct('<I')
# TFRecord's checksum mask (as in TensorFlow's crc32c::Mask).
_MASK_DELTA = 0xA282EAD8
# Bytes buffered before a write to the file, and read at a time.
_BUFFER_BYTES = 1 << 20


class RecordError(ValueError):
  """Bytes that are not the records they should be."""


def masked_crc32c(data: bytes) -> int:
  """CRC-32C of `data`, masked as TFRecord stores it."""
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@functools.lru_cache(maxsize=1 << 16)
def _header(length: int) -> bytes:
  """A record's first 12 bytes: its length and the length's checksum."""
  packed = _LENGTH.pack(length)
  return packed + _CRC.pack(masked_crc32c(packed))


def framed(data: bytes) -> bytes:
  """One record: length, its checksum, the data, its checksum."""
  return b''.join((_header(len(data)), data, _CRC.pack(masked_crc32c(data))))


def write_records(path: str | os.PathLike, records: Iterable[bytes]) -> int:
  """Writes `records` to a new TFRecord file at `path`; returns how many."""
  count = 0
  with open(path, 'wb', buffering=_BUFFER_BYTES) as f:
    for data in records:  # Three writes into the buffer: no joined copy.
      f.write(_header(len(data)))
      f.write(data)
      f.write(_CRC.pack(masked_crc32c(data)))
      count += 1
  return count


def read_records(
    f: io.BufferedIOBase, path: str, start: int, count: int
) -> Iterator[bytes]:
  """Records start..start+count of the TFRecord file `f` (`path` for
  messages), read in blocks, checksums verified, each length checked against
  the file's size first; RecordError (one line) for a short or corrupt file.
  """
  f.seek(0, io.SEEK_END)
  file_size = f.tell()
  f.seek(0)
  block, pos, offset = b'', 0, 0  # offset: the file position of block[0].
  for index in range(start + count):
    if len(block) - pos < _HEADER.size:
      block, pos, offset = block[pos:] + f.read(_BUFFER_BYTES), 0, offset + pos
    if len(block) - pos < _HEADER.size:
      raise RecordError(
          f'{path}: ends after {index} records; expected at least'
          f' {start + count}'
      )
    length, length_crc = _HEADER.unpack_from(block, pos)
    if masked_crc32c(block[pos : pos + 8]) != length_crc:
      raise RecordError(
          f'{path}: record {index} has a corrupt length (checksum'
          ' mismatch); expected a TFRecord file'
      )
    end = pos + _HEADER.size + length + _CRC.size
    if offset + end > file_size:
      raise RecordError(
          f'{path}: record {index} is cut short'
          f' ({file_size - offset - pos - _HEADER.size} of {length} bytes);'
          ' expected a whole TFRecord file'
      )
    if index < start:  # Skipped: its length is checked, not its data.
      if end > len(block):
        f.seek(offset + end)
        block, pos, offset = b'', 0, offset + end
      else:
        pos = end
      continue
    if end > len(block):
      block = block[pos:] + f.read(max(_BUFFER_BYTES, end - pos))
      block, pos, offset, end = block, 0, offset + pos, end - pos
      if end > len(block):  # The file shrank while it was read.
        raise RecordError(
            f'{path}: record {index} is cut short; expected a whole'
            ' TFRecord file'
        )
    data = block[pos + _HEADER.size : end - _CRC.size]
    (crc,) = _CRC.unpack_from(block, end - _CRC.size)
    if masked_crc32c(data) != crc:
      raise RecordError(
          f'{path}: record {index} is corrupt (data checksum mismatch)'
      )
    pos = end
    yield data
