"""The authors' pickled batches: nothing is unpickled; `inert_pickle` parses
the opcodes, `pickled_numpy` checks the arrays, the rows stream from the file.
"""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
from typing import BinaryIO

import numpy as np

from imagenet_resized import common
from imagenet_resized.readers import batch_chunks
from imagenet_resized.readers import inert_pickle
from imagenet_resized.readers import pickle_strings
from imagenet_resized.readers import pickled_numpy
from imagenet_resized.readers.one_line import listed
from imagenet_resized.readers.one_line import shown

# Values a batch pickle may push: one per label, a few hundred for the rest.
MAX_PICKLE_VALUES = batch_chunks.MAX_ROWS_PER_BATCH + 4096
# String bytes read while parsing; larger ones (the pixels) stay in the file.
PICKLE_EAGER_BYTES = 16 << 20


@dataclasses.dataclass(frozen=True)
class PickledBatch:
  """A batch pickle, checked: `data` rows, and `labels` as the file has them."""

  data: pickled_numpy.PickledArray  # 2-D uint8, C order.
  labels: list[int] | pickled_numpy.PickledArray  # One per row.


def _batch_value(batch: dict, key: str, where: str):
  for candidate in (key, key.encode('latin-1')):
    if candidate in batch:
      return batch[candidate]
  keys = sorted(
      k.decode('latin-1') if isinstance(k, bytes) else k for k in batch
  )
  raise common.SourceError(
      f'{where}: no `{key}` in the pickled dict (it holds {listed(keys)});'
      ' expected `data` and `labels`'
  )


def read_pickle_batch(
    fileobj: BinaryIO, where: str, eager_bytes: int = PICKLE_EAGER_BYTES
) -> PickledBatch:
  """Parses and checks a batch pickle; strings past `eager_bytes` in all (the
  pixels) stay in the file."""
  try:
    batch = inert_pickle.parse(
        fileobj,
        pickled_numpy.GLOBALS,
        MAX_PICKLE_VALUES,
        eager_bytes,
        batch_chunks.MAX_BATCH_BYTES,
    )
  except inert_pickle.Malformed as e:
    raise common.SourceError(
        f'{where}: corrupt or truncated pickle (UnpicklingError: {e});'
        ' expected a pickled dict with `data` and `labels`'
    ) from None
  except inert_pickle.Forbidden as e:
    raise common.SourceError(
        f'{where}: {e}; a batch pickle may only hold numpy arrays, dicts,'
        ' lists and numbers'
    ) from None
  if not isinstance(batch, dict):
    raise common.SourceError(
        f'{where}: the pickle holds a {inert_pickle.describe(batch)}; expected'
        ' a dict with `data` and `labels`'
    )
  data = _batch_value(batch, 'data', where)
  labels = _batch_value(batch, 'labels', where)
  if not pickled_numpy.is_array(data):
    raise common.SourceError(
        f'{where}: `data` is a {inert_pickle.describe(data)}; expected a uint8'
        ' numpy array'
    )
  try:
    data = pickled_numpy.read_array(data, '`data`', 'uint8 pixel values')
    if isinstance(labels, list):
      _check_flat_ints(labels, where)
    else:
      labels = pickled_numpy.read_array(labels, '`labels`', 'integers 1..1000')
  except pickled_numpy.NotAnArray as e:
    raise common.SourceError(f'{where}: {e}') from None
  return PickledBatch(data, labels)


def _check_flat_ints(labels: list, where: str) -> None:
  """A pickled list of labels holds ints only (no nested lists, no objects)."""
  for i, label in enumerate(labels):
    if type(label) is not int:
      raise common.SourceError(
          f'{where}: `labels` holds a {inert_pickle.describe(label)} at row'
          f' {i}; expected a flat list of integers 1..{common.NUM_CLASSES}'
      )


def _pickled_labels(
    batch: PickledBatch, fileobj: BinaryIO, where: str, num_rows: int
) -> np.ndarray:
  """The labels of a checked batch, 0-based, read and checked."""
  labels = batch.labels
  if isinstance(labels, list):
    batch_chunks.check_label_count(
        where, (len(labels),), np.dtype(np.int64), num_rows
    )
    bad = next(
        (i for i, v in enumerate(labels) if not 1 <= v <= common.NUM_CLASSES),
        None,
    )
    if bad is not None:
      raise common.SourceError(
          f'{where}: `labels` holds {shown(str(labels[bad]), 30)} at row'
          f" {bad}; expected labels 1..{common.NUM_CLASSES} (the authors'"
          ' labels are 1-based)'
      )
    return np.array(labels, dtype=np.int64) - 1
  batch_chunks.check_label_count(where, labels.shape, labels.dtype, num_rows)
  raw = labels.raw
  if not isinstance(raw, bytes):
    raw = b''.join(pickle_strings.iter_bytes(fileobj, raw))
  return batch_chunks.zero_based_labels(where, np.frombuffer(raw, labels.dtype))


def _rows_reader(fileobj: BinaryIO, raw: pickled_numpy.Raw, where: str):
  """read(n): the next n bytes of the pixels, from memory or the file."""
  if isinstance(raw, bytes):
    view = memoryview(raw)
    position = [0]

    def read(n: int) -> bytes:
      start = position[0]
      position[0] += n
      return view[start : start + n]

    return read
  reader = pickle_strings.StringReader(fileobj, raw)
  return lambda n: batch_chunks.read_exact(reader, n, where)


def iter_pickle_chunks(
    fileobj: BinaryIO,
    where: str,
    size: int,
    chunk_rows: int = batch_chunks.DEFAULT_CHUNK_ROWS,
    eager_bytes: int = PICKLE_EAGER_BYTES,
) -> Iterator[batch_chunks.Chunk]:
  """Reads a batch pickle: parsed, checked, then its rows in chunks."""
  batch = read_pickle_batch(fileobj, where, eager_bytes)
  data = batch.data
  batch_chunks.check_rows(where, data.shape, data.dtype, size, data.fortran)
  num_rows = data.shape[0]
  try:
    labels = _pickled_labels(batch, fileobj, where, num_rows)
    read = _rows_reader(fileobj, data.raw, where)
    yield from batch_chunks.iter_rows(read, num_rows, size, labels, chunk_rows)
  except pickle_strings.DecodeError as e:
    raise common.SourceError(
        f'{where}: corrupt or truncated pickle (UnpicklingError: {e});'
        ' expected a pickled dict with `data` and `labels`'
    ) from None
