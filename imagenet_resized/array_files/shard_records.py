"""A prepared split's examples read straight from its shard files: the
export's worker function (`decode_range`), which imports no TFDS or TensorFlow.

* The records of a range of a shard: TFRecord (`tfrecord_files`), array_record
  (the array_record package's reader, as TFDS) or parquet (pyarrow: the
  `data` column of TFDS's parquet files).
* Each record, a tf.train.Example of an `image` (one PNG) and a `label`: one
  as this package writes it is proven such by rebuilding its bytes
  (`usual_stream`); any other is parsed (`example_wire.parse_example`).
* The PNGs of a chunk of records, decoded together (`png_decoding`): PNG is
  lossless, so the pixels are TensorFlow's (the tests compare).
"""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import functools

import numpy as np

from imagenet_resized import common
from imagenet_resized.formats import example_wire
from imagenet_resized.formats import png_codec
from imagenet_resized.formats import png_decoding
from imagenet_resized.formats import tfrecord_files
from imagenet_resized.formats.tfrecord_files import RecordError
from imagenet_resized.pipeline import pixel_statistics
from imagenet_resized.readers import one_line

TFRECORD = 'tfrecord'
ARRAY_RECORD = 'array_record'
PARQUET = 'parquet'
FORMATS = (TFRECORD, ARRAY_RECORD, PARQUET)
# Records decoded per message to the exporting process.
CHUNK_RECORDS = 2048
# The column of TFDS's parquet shards that holds the serialized examples.
_PARQUET_COLUMN = 'data'


@dataclasses.dataclass(frozen=True)
class ShardRange:
  """Records `start` .. `start + count` of one shard file."""

  path: str
  file_format: str  # One of FORMATS.
  start: int
  count: int
  size: int  # Image height and width.
  sums: bool = True  # Whether to add up the pixels (`pixel_statistics`).
  chunk_records: int = CHUNK_RECORDS  # Records decoded per chunk.


@dataclasses.dataclass(frozen=True)
class DecodedChunk:
  """Consecutive examples of a ShardRange: images, labels, pixel sums."""

  images: np.ndarray  # (n, size, size, 3) uint8
  labels: np.ndarray  # (n,) int64
  sums: pixel_statistics.PixelSums


def _tfrecords(task: ShardRange) -> Iterator[bytes]:
  if common.is_local(task.path):
    opened = open(task.path, 'rb')
  else:  # gs://... (not tried here): through etils.
    from etils import epath

    opened = epath.Path(task.path).open('rb')
  with opened as f:
    yield from tfrecord_files.read_records(f, task.path, task.start, task.count)


def _array_records(task: ShardRange) -> Iterator[bytes]:
  from array_record.python import array_record_module

  reader = array_record_module.ArrayRecordReader(task.path)
  try:
    total = reader.num_records()
    if task.start + task.count > total:
      raise RecordError(
          f'{task.path}: holds {total} records; expected at least'
          f' {task.start + task.count}'
      )
    end = task.start + task.count
    for first in range(task.start, end, task.chunk_records):
      last = min(first + task.chunk_records, end)
      yield from reader.read(list(range(first, last)))
  finally:
    reader.close()


def _parquet_records(task: ShardRange) -> Iterator[bytes]:
  import pyarrow.parquet as pq

  with pq.ParquetFile(task.path) as shard:
    total = shard.metadata.num_rows
    if task.start + task.count > total:
      raise RecordError(
          f'{task.path}: holds {total} records; expected at least'
          f' {task.start + task.count}'
      )
    seen, left = 0, task.count
    for batch in shard.iter_batches(
        batch_size=task.chunk_records, columns=[_PARQUET_COLUMN]
    ):
      skip = max(0, task.start - seen)
      seen += batch.num_rows
      for value in batch.column(0).slice(skip, left).to_pylist():
        yield value
        left -= 1
      if not left:
        return


_RECORDS = {
    TFRECORD: _tfrecords,
    ARRAY_RECORD: _array_records,
    PARQUET: _parquet_records,
}


# A usual record: an Example and its PNG as this package writes them.
_PNG_BEFORE_STREAM = len(png_codec.before_stream(8, 0))
# Label by a usual record's tail after IDAT's CRC: IEND, the `label` entry.
_LABEL_OF_TAIL = {
    png_codec.IEND + example_wire.int_entry('label', label): label
    for label in range(1000)
}
_TAIL_LENGTHS = tuple(sorted({len(tail) for tail in _LABEL_OF_TAIL}))


@functools.lru_cache(maxsize=1 << 14)
def _usual_prefix(record_length: int, tail_length: int, size: int):
  """(the bytes before the zlib stream, the stream's end) of a usual record of
  these lengths (all follow from the PNG's length), or None if there is none."""
  label_entry = tail_length - len(png_codec.IEND)
  for heads in range(8, 40):  # The two heads' length, tried.
    png = record_length - label_entry - heads
    stream = png - _PNG_BEFORE_STREAM - png_codec.IEND_AFTER_STREAM
    if stream < 0:
      return None
    image_head = example_wire.bytes_entry_head('image', png)
    head = example_wire.example_head(len(image_head) + png + label_entry)
    if len(head) + len(image_head) == heads:
      prefix = head + image_head + png_codec.before_stream(size, stream)
      return prefix, len(prefix) + stream
  return None


def usual_stream(record: bytes, size: int) -> tuple[bytes, int] | None:
  """(zlib stream, label) of a usual record, or None for any other record.

  Proven by rebuilding every byte but the stream and IDAT's CRC (the stream's
  Adler-32 is checked on inflating; the record's CRC-32C covers it all).
  """
  for tail_length in _TAIL_LENGTHS:
    label = _LABEL_OF_TAIL.get(record[-tail_length:])
    if label is None:
      continue
    layout = _usual_prefix(len(record), tail_length, size)
    if layout is not None and record.startswith(layout[0]):
      return record[len(layout[0]) : layout[1]], label
  return None


def decode_range(task: ShardRange) -> Iterator[DecodedChunk]:
  """The examples of `task`, decoded, `task.chunk_records` at a time."""
  read = _RECORDS.get(task.file_format)
  if read is None:
    raise RecordError(
        f'{task.path}: file format {task.file_format!r}; expected'
        f' one of {FORMATS}'
    )
  size = task.size
  streams, pngs, labels = [], [], []
  index = task.start
  for record in read(task):
    usual = usual_stream(record, size)
    if usual is not None:
      streams.append((len(labels), usual[0]))
      labels.append(usual[1])
    else:
      try:
        png, label = example_wire.parse_example(record)
      except example_wire.WireError as e:
        raise RecordError(
            f'{task.path}: record {index}: {e}; expected a tf.train.Example'
            ' of imagenet_resized'
        ) from None
      pngs.append((len(labels), png))
      labels.append(label)
    index += 1
    if len(labels) == task.chunk_records:
      yield _decoded(task, index - len(labels), streams, pngs, labels)
      streams, pngs, labels = [], [], []
  if labels:
    yield _decoded(task, index - len(labels), streams, pngs, labels)


def _decoded(
    task: ShardRange, first: int, streams, pngs, labels
) -> DecodedChunk:
  try:
    images = png_decoding.decode_images(
        task.size, len(labels), streams, pngs, first
    )
  except (OSError, ValueError, SyntaxError) as e:
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
