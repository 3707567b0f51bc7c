"""A prepared split's examples read straight from its shard files, without
TensorFlow: record framing, tf.train.Example wire format, PNG decoding.

Runs in the export's worker processes (`array_export`), which import only
this module's few dependencies (numpy, Pillow, google-crc32c and, for
array_record shards, the array_record package), not TFDS or TensorFlow.

* TFRecord shards: records framed as length (8 bytes LE), masked CRC-32C of
  the length, data, masked CRC-32C of the data (`tfrecord_writer`); both
  checksums are verified, as TensorFlow's reader does.
* array_record shards: records read with the array_record package's reader
  (the library TFDS itself reads them with).
* Each record is a serialized tf.train.Example with the features `image`
  (a bytes_list holding one PNG) and `label` (an int64_list holding one int);
  parsed here from protobuf's wire format (varints and length-delimited
  fields), which is all those messages use.
* PNGs are decoded by Pillow; PNG is lossless, so the pixels are those
  TensorFlow's decoder gives (tests compare with `as_dataset`).
"""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import functools
import io
import struct
import zlib

import deflate
import numpy as np
from PIL import Image

from imagenet_resized import common
from imagenet_resized.pipeline import pixel_statistics
from imagenet_resized.pipeline import worker_pool
from imagenet_resized.readers import one_line
from imagenet_resized.writing import example_wire
from imagenet_resized.writing import tfrecord_writer

TFRECORD = 'tfrecord'
ARRAY_RECORD = 'array_record'
FORMATS = (TFRECORD, ARRAY_RECORD)
# Records decoded per message to the exporting process: ~6 MiB at 32x32.
CHUNK_RECORDS = 2048
# Bytes of a TFRecord file read at a time.
_READ_BYTES = 1 << 20

_HEADER = struct.Struct('<QI')
_CRC = struct.Struct('<I')


class RecordError(ValueError):
  """A shard whose bytes are not the records of a prepared split."""


@dataclasses.dataclass(frozen=True)
class ShardRange:
  """Records `start` .. `start + count` of one shard file."""

  path: str
  file_format: str  # TFRECORD or ARRAY_RECORD.
  start: int
  count: int
  size: int  # Image height and width.
  sums: bool = True  # Whether to add up the pixels (`pixel_statistics`).


@dataclasses.dataclass(frozen=True)
class DecodedChunk:
  """Consecutive examples of a ShardRange: images, labels, pixel sums."""

  images: np.ndarray  # (n, size, size, 3) uint8
  labels: np.ndarray  # (n,) int64
  sums: pixel_statistics.PixelSums


def _tfrecords(path: str, start: int, count: int) -> Iterator[bytes]:
  """Records start..start+count of a TFRecord file, checksums verified.

  Read in blocks of _READ_BYTES, each record sliced out of its block (not
  three reads per record); a declared length is checked against the file's
  size before anything is read for it.
  """
  if not common.is_local(path):  # gs://... (not tried here): through etils.
    from etils import epath

    opened = epath.Path(path).open('rb')
  else:
    opened = open(path, 'rb')
  with opened as f:
    f.seek(0, io.SEEK_END)
    file_size = f.tell()
    f.seek(0)
    block, pos, offset = b'', 0, 0  # offset: the file position of block[0].
    for index in range(start + count):
      if len(block) - pos < _HEADER.size:
        block, pos, offset = block[pos:] + f.read(_READ_BYTES), 0, offset + pos
      if len(block) - pos < _HEADER.size:
        raise RecordError(
            f'{path}: ends after {index} records; expected at least'
            f' {start + count}'
        )
      length, length_crc = _HEADER.unpack_from(block, pos)
      if tfrecord_writer.masked_crc32c(block[pos : pos + 8]) != length_crc:
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
        block = block[pos:] + f.read(max(_READ_BYTES, end - pos))
        block, pos, offset, end = block, 0, offset + pos, end - pos
        if end > len(block):  # The file shrank while it was read.
          raise RecordError(
              f'{path}: record {index} is cut short; expected a whole'
              ' TFRecord file'
          )
      data = block[pos + _HEADER.size : end - _CRC.size]
      (crc,) = _CRC.unpack_from(block, end - _CRC.size)
      if tfrecord_writer.masked_crc32c(data) != crc:
        raise RecordError(
            f'{path}: record {index} is corrupt (data checksum mismatch)'
        )
      pos = end
      yield data


def _array_records(path: str, start: int, count: int) -> Iterator[bytes]:
  """Records start..start+count of an array_record file."""
  from array_record.python import array_record_module

  reader = array_record_module.ArrayRecordReader(path)
  try:
    total = reader.num_records()
    if start + count > total:
      raise RecordError(
          f'{path}: holds {total} records; expected at least {start + count}'
      )
    for first in range(start, start + count, CHUNK_RECORDS):
      last = min(first + CHUNK_RECORDS, start + count)
      yield from reader.read(list(range(first, last)))
  finally:
    reader.close()


def _varint(data: bytes, pos: int) -> tuple[int, int]:
  if pos < len(data) and data[pos] < 0x80:  # One byte: most of them.
    return data[pos], pos + 1
  value = shift = 0
  while True:
    if pos >= len(data) or shift > 63:
      raise RecordError('a varint runs past its message')
    byte = data[pos]
    pos += 1
    value |= (byte & 0x7F) << shift
    if byte < 0x80:
      return value, pos
    shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, object]]:
  """(field number, wire type, value) of a protobuf message: ints for
  varints, bytes for length-delimited fields (other wire types skipped)."""
  pos = 0
  while pos < len(data):
    tag, pos = _varint(data, pos)
    number, wire = tag >> 3, tag & 7
    if wire == 0:
      value, pos = _varint(data, pos)
    elif wire == 2:
      length, pos = _varint(data, pos)
      if pos + length > len(data):
        raise RecordError('a field runs past its message')
      value, pos = data[pos : pos + length], pos + length
    elif wire == 1:
      value, pos = None, pos + 8
    elif wire == 5:
      value, pos = None, pos + 4
    else:
      raise RecordError(f'wire type {wire} is not in a tf.train.Example')
    yield number, wire, value


def _feature_values(feature: bytes) -> tuple[str, list]:
  """('bytes', [...]) or ('int64', [...]) of a tf.train.Feature."""
  for number, _, value in _fields(feature):
    if number == 1:  # BytesList
      return 'bytes', [v for n, w, v in _fields(value) if n == 1 and w == 2]
    if number == 3:  # Int64List: packed or not.
      values = []
      for n, w, v in _fields(value):
        if n != 1:
          continue
        if w == 0:
          values.append(v)
        else:
          pos = 0
          while pos < len(v):
            item, pos = _varint(v, pos)
            values.append(item)
      return 'int64', [x - (1 << 64) if x >= 1 << 63 else x for x in values]
  return 'other', []


# ---------------------------------------------------------------------------
# The usual record: an Example as this package's serializer writes it, whose
# PNG is laid out as this package's writer writes it.

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_IHDR = struct.Struct('>IIBBBBB')
_IEND_CHUNK = b'\x00\x00\x00\x00IEND\xaeB`\x82'
# Signature, IHDR chunk, IDAT's length and type; then the zlib stream.
_PNG_BEFORE_STREAM = len(_PNG_SIGNATURE) + 12 + _IHDR.size + 8
# IDAT's CRC, then the IEND chunk.
_PNG_AFTER_STREAM = 4 + len(_IEND_CHUNK)


@functools.cache
def _rgb_ihdr(size: int) -> bytes:
  """The IHDR chunk of an 8-bit RGB, non-interlaced size x size PNG."""
  body = b'IHDR' + _IHDR.pack(size, size, 8, 2, 0, 0, 0)
  return (
      struct.pack('>I', _IHDR.size) + body + struct.pack('>I', zlib.crc32(body))
  )


# The bytes after the zlib stream, by their bytes: IDAT's CRC excepted, the
# IEND chunk, then the `label` entry, for every label of a 1000-class
# ClassLabel (labels of up to 127 have a shorter entry than the others).
_LABEL_OF_TAIL = {
    _IEND_CHUNK + example_wire.int_entry('label', label): label
    for label in range(1000)
}
_TAIL_LENGTHS = tuple(sorted({len(tail) for tail in _LABEL_OF_TAIL}))


@functools.lru_cache(maxsize=1 << 14)
def _usual_prefix(record_length: int, tail_length: int, size: int):
  """(the bytes before the zlib stream, the stream's end) of a usual record
  of `record_length` bytes whose tail is `tail_length` bytes long, or None if
  no usual record has these lengths. The bytes: the Example's head, the
  `image` entry's head (example_wire), the PNG's signature, IHDR and IDAT's
  length and type; every one follows from the PNG's length."""
  label_entry = tail_length - len(_IEND_CHUNK)
  for heads in range(8, 40):  # The two heads' length, tried.
    png = record_length - label_entry - heads
    stream = png - _PNG_BEFORE_STREAM - _PNG_AFTER_STREAM
    if stream < 0:
      return None
    image_head = example_wire.bytes_entry_head('image', png)
    head = example_wire.example_head(len(image_head) + png + label_entry)
    if len(head) + len(image_head) == heads:
      prefix = head + image_head + _png_head(size, stream)
      return prefix, len(prefix) + stream
  return None


def _png_head(size: int, stream_length: int) -> bytes:
  """The bytes of our writer's PNG before its zlib stream: the signature,
  the IHDR chunk, IDAT's length and type."""
  return (
      _PNG_SIGNATURE
      + _rgb_ihdr(size)
      + struct.pack('>I', stream_length)
      + b'IDAT'
  )


def usual_stream(record: bytes, size: int) -> tuple[bytes, int] | None:
  """(zlib stream, label) of a usual record, or None for any other record
  (which then takes `parse_example` and `decode_pngs`).

  Proven by rebuilding every byte of the record but the stream and IDAT's
  CRC (the stream's own Adler-32 is checked when it is inflated, and the
  record's CRC-32C covers all its bytes): a dict lookup of the tail, one
  cached prefix and one comparison per record, far less than walking the
  message and then the PNG's chunks.
  """
  for tail_length in _TAIL_LENGTHS:
    label = _LABEL_OF_TAIL.get(record[-tail_length:])
    if label is None:
      continue
    layout = _usual_prefix(len(record), tail_length, size)
    if layout is not None and record.startswith(layout[0]):
      return record[len(layout[0]) : layout[1]], label
  return None


def parse_example(record: bytes) -> tuple[bytes, int]:
  """(PNG bytes, label) of a serialized tf.train.Example of this dataset."""
  features = {}
  for number, wire, value in _fields(record):
    if number != 1 or wire != 2:
      continue
    for n, w, entry in _fields(value):
      if n != 1 or w != 2:
        continue
      key = feature = b''
      for en, ew, ev in _fields(entry):
        if en == 1 and ew == 2:
          key = ev
        elif en == 2 and ew == 2:
          feature = ev
      features[key] = _feature_values(feature)
  image, label = features.get(b'image'), features.get(b'label')
  if not image or image[0] != 'bytes' or len(image[1]) != 1:
    raise RecordError('no `image` feature holding one byte string')
  if not label or label[0] != 'int64' or len(label[1]) != 1:
    raise RecordError('no `label` feature holding one int64')
  return image[1][0], label[1][0]


def decode_png(data: bytes, size: int) -> np.ndarray:
  """(size, size, 3) uint8 of an 8-bit RGB PNG."""
  with Image.open(io.BytesIO(data), formats=['PNG']) as image:
    if image.mode != 'RGB' or image.size != (size, size):
      raise RecordError(
          f'an image of mode {image.mode} and size {image.size}; expected an'
          f' 8-bit RGB image of {size}x{size}'
      )
    return np.asarray(image)


# ---------------------------------------------------------------------------
# PNG decoding, a chunk of images at a time.
#
# Written here rather than left to a PNG library: measured on photo crops
# (BENCHMARKS.md, "The export's PNG decoding"), this is as fast per image as
# libspng (pyspng), the fastest library tried, and faster than imagecodecs,
# OpenCV and Pillow one image at a time (3.5x and 2x at 32x32 and 64x64),
# with nothing beyond Pillow and libdeflate, which the package needs anyway.

_CHUNK_HEAD = struct.Struct('>I4s')


def _one_idat(data: bytes, size: int) -> bytes | None:
  """The IDAT body of a PNG laid out as this package's writer writes it
  (signature, IHDR of an 8-bit RGB size x size image, one IDAT, IEND), or
  None for any other layout."""
  stream = len(data) - _PNG_BEFORE_STREAM - _PNG_AFTER_STREAM
  if (
      stream < 0
      or not data.startswith(_png_head(size, stream))
      or not data.endswith(_IEND_CHUNK)
  ):
    return None
  return data[_PNG_BEFORE_STREAM : _PNG_BEFORE_STREAM + stream]


def _png_scanlines(data: bytes, size: int) -> bytes | None:
  """The inflated scanlines of an 8-bit RGB, non-interlaced size x size PNG
  (its IDAT chunks joined and inflated), or None for any other PNG."""
  expected = size * (1 + 3 * size)
  stream = _one_idat(data, size)
  if stream is not None:  # The usual layout: no walk through the chunks.
    return _inflated(stream, expected)
  if not data.startswith(_PNG_SIGNATURE):
    return None
  pos, idat = len(_PNG_SIGNATURE), []
  header = None
  while pos + 12 <= len(data):
    length, tag = _CHUNK_HEAD.unpack_from(data, pos)
    body = data[pos + 8 : pos + 8 + length]
    if len(body) != length:
      return None
    if tag == b'IHDR':
      if length != _IHDR.size:
        return None
      header = _IHDR.unpack(body)
    elif tag == b'IDAT':
      idat.append(body)
    elif tag == b'IEND':
      break
    elif (
        tag == b'PLTE' or not tag[0] & 0x20
    ):  # Palette or an unknown critical chunk.
      return None
    pos += 12 + length
  if header != (size, size, 8, 2, 0, 0, 0) or not idat:
    return None
  stream = idat[0] if len(idat) == 1 else b''.join(idat)
  return _inflated(stream, expected)


def _inflated(stream: bytes, expected: int) -> bytes | None:
  """A zlib stream inflated, if it holds exactly `expected` bytes."""
  try:  # libdeflate (the `deflate` package), given the size: ~2x zlib.
    rows = deflate.zlib_decompress(stream, expected)
  except deflate.DeflateError:
    try:
      rows = zlib.decompress(stream)
    except zlib.error:
      return None
  return rows if len(rows) == expected else None


def _unfilter(scanlines: list[bytes], size: int) -> np.ndarray:
  """(n, size, size, 3) uint8 from n images' inflated, filtered scanlines.

  Unfiltered by Pillow's PNG decoder in one call for all of them: the
  images are stacked into one tall image, each preceded by a row of zeros
  with filter type None, which is what the PNG spec takes as the row above
  an image's first row; the stack is wrapped in a stored (level 0) zlib
  stream, which costs a copy (libdeflate's level 0: its Adler-32 is faster
  than zlib's). One decoder call for thousands of images,
  instead of Pillow's fixed cost per image (most of its time at this size).
  """
  separator = bytes(1 + 3 * size)
  stacked = deflate.zlib_compress(separator + separator.join(scanlines), 0)
  tall = Image.frombytes(
      'RGB', (size, len(scanlines) * (size + 1)), stacked, 'zip', 'RGB'
  )
  return np.asarray(tall).reshape(len(scanlines), size + 1, size, 3)[:, 1:]


def _decoded_images(
    size: int, count: int, streams: list[tuple[int, bytes]], pngs, first=0
) -> np.ndarray:
  """(count, size, size, 3) uint8 from the usual records' zlib streams and
  the other records' PNGs, each given as (row, bytes). 8-bit RGB
  non-interlaced PNGs (all those of imagenet_resized's writers) are inflated
  and unfiltered together (`_unfilter`); any other PNG is decoded by Pillow
  (one line if it is not an 8-bit RGB image of size x size). `first`: the
  record number of row 0, for the error text."""
  out = np.empty((count, size, size, 3), np.uint8)
  expected = size * (1 + 3 * size)
  fast, rows = [], []
  for row, stream in streams:
    scan = _inflated(stream, expected)
    if scan is None:
      raise RecordError(
          f"record {first + row}: its PNG's image data does not inflate to"
          f' {expected} bytes'
      )
    fast.append(row)
    rows.append(scan)
  for row, data in pngs:
    scan = _png_scanlines(data, size)
    if scan is None:
      out[row] = decode_png(data, size)
    else:
      fast.append(row)
      rows.append(scan)
  if fast:
    out[fast] = _unfilter(rows, size)
  return out


def decode_pngs(pngs: list[bytes], size: int) -> np.ndarray:
  """(n, size, size, 3) uint8 of n PNGs (see `_decoded_images`)."""
  return _decoded_images(size, len(pngs), [], list(enumerate(pngs)))


@functools.cache
def _keep_freed_memory() -> None:
  """Asks glibc's malloc to keep freed memory for reuse, once per process.

  Each chunk allocates tens of MB in blocks of a few MB (the stack of
  scanlines, its zlib wrapping, Pillow's image, the arrays); by default
  glibc returns such blocks to the kernel when they are freed, and the next
  chunk faults them in again, zeroed, in system time (docs/arrays.md has the
  measurement). The memory kept is what the process peaked at anyway. Only
  in the export's worker processes (never the caller's own process, as when
  `workers` is 0); a no-op where the C library is not glibc.
  """
  if not worker_pool.in_worker():
    return
  try:
    import ctypes

    libc = ctypes.CDLL(None)
    mallopt = libc.mallopt
  except (OSError, AttributeError):
    return
  m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>.
  mallopt(m_trim_threshold, 256 << 20)
  mallopt(m_mmap_threshold, 64 << 20)


def decode_range(task: ShardRange) -> Iterator[DecodedChunk]:
  """The examples of `task`, decoded, CHUNK_RECORDS at a time (a worker
  function of `worker_pool.parallel_streams`)."""
  _keep_freed_memory()
  if task.file_format == TFRECORD:
    records = _tfrecords(task.path, task.start, task.count)
  elif task.file_format == ARRAY_RECORD:
    records = _array_records(task.path, task.start, task.count)
  else:
    raise RecordError(
        f'{task.path}: file format {task.file_format!r}; expected'
        f' one of {FORMATS}'
    )
  size = task.size
  streams, pngs, labels = [], [], []
  index = task.start
  for record in records:
    usual = usual_stream(record, size)
    if usual is not None:
      streams.append((len(labels), usual[0]))
      labels.append(usual[1])
    else:
      try:
        png, label = parse_example(record)
      except RecordError as e:
        raise RecordError(
            f'{task.path}: record {index}: {e}; expected a tf.train.Example'
            ' of imagenet_resized'
        ) from None
      pngs.append((len(labels), png))
      labels.append(label)
    index += 1
    if len(labels) == CHUNK_RECORDS:
      yield _decoded(task, index - len(labels), streams, pngs, labels)
      streams, pngs, labels = [], [], []
  if labels:
    yield _decoded(task, index - len(labels), streams, pngs, labels)


def _decoded(
    task: ShardRange, first: int, streams, pngs, labels
) -> DecodedChunk:
  try:
    images = _decoded_images(task.size, len(labels), streams, pngs, first)
  except (RecordError, OSError, ValueError, SyntaxError) as e:
    reason = one_line.first_line(e) or type(e).__name__
    raise RecordError(
        f'{task.path}: records {first}..{first + len(labels) - 1}: {reason};'
        ' expected PNGs of imagenet_resized'
    ) from None
  return DecodedChunk(
      images,
      np.array(labels, np.int64),
      pixel_statistics.PixelSums.of_images(images)
      if task.sums
      else pixel_statistics.PixelSums(),
  )
