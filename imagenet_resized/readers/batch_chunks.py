"""What npz (`npz_batches`) and pickle (`pickle_batches`) batches share.

A batch holds `data` (uint8, N rows of 3*S*S planar CHW pixels) and `labels`
(N integers in 1..1000); both become chunks of HWC images and 0-based labels.
"""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import math
from typing import BinaryIO

import numpy as np

from imagenet_resized import common
from imagenet_resized.readers import one_line

DEFAULT_CHUNK_ROWS = 4096
# More rows are refused from the header, before anything is read.
MAX_ROWS_PER_BATCH = 1 << 20
# No array, string or member of a batch file may declare more bytes.
MAX_BATCH_BYTES = MAX_ROWS_PER_BATCH * 3 * 64 * 64


@dataclasses.dataclass(frozen=True)
class Chunk:
  """Consecutive rows of one batch, already in TFDS's conventions."""

  start: int  # Index of the first row within its batch.
  images: np.ndarray  # (n, S, S, 3) uint8, HWC.
  labels: np.ndarray  # (n,) int64, 0-based.


def rows_to_images(rows: np.ndarray, size: int) -> np.ndarray:
  """(n, 3*S*S) planar CHW rows -> (n, S, S, 3) HWC images (contiguous), a
  plane at a time: much faster than a transpose (docs/speed.md)."""
  n = rows.shape[0]
  planes = rows.reshape(n, 3, size * size)
  images = np.empty((n, size * size, 3), np.uint8)
  for channel in range(3):
    images[:, :, channel] = planes[:, channel]
  return images.reshape(n, size, size, 3)


def read_exact(fp: BinaryIO, n: int, where: str) -> bytes:
  buf = fp.read(n)
  if len(buf) != n:
    raise common.SourceError(
        f'{where}: file ends early (truncated): expected {n} more bytes, got'
        f' {len(buf)}'
    )
  return buf


def iter_rows(
    read, num_rows: int, size: int, labels: np.ndarray, chunk_rows: int
) -> Iterator[Chunk]:
  """Chunks of rows, `read(n)` giving the next n bytes of rows."""
  row_bytes = 3 * size * size
  for start in range(0, num_rows, chunk_rows):
    n = min(chunk_rows, num_rows - start)
    rows = np.frombuffer(read(n * row_bytes), dtype=np.uint8).reshape(
        n, row_bytes
    )
    yield Chunk(start, rows_to_images(rows, size), labels[start : start + n])


def size_of_width(width: int) -> int | None:
  """The image size S whose rows are `width` = 3*S*S values wide, if any."""
  side = math.isqrt(max(width, 0) // 3)  # Exact for any int a header declares.
  return side if 3 * side * side == width else None


def check_rows(
    where: str,
    shape: tuple[int, ...],
    dtype: np.dtype,
    size: int,
    fortran: bool = False,
) -> None:
  """SourceError unless `data` is 2-D uint8 C-order rows of the SxS config."""
  if np.dtype(dtype) != np.uint8:
    raise common.SourceError(
        f'{where}: `data` has dtype {np.dtype(dtype)}; expected uint8 pixel values'
    )
  if len(shape) != 2:
    raise common.SourceError(
        f'{where}: `data` has shape {one_line.shape(shape)}; expected a 2-D array of'
        f' rows, each 3*{size}*{size} = {3 * size * size} values wide'
    )
  if shape[0] > MAX_ROWS_PER_BATCH:
    raise common.SourceError(
        f'{where}: `data` declares {one_line.quantity(shape[0])} rows; expected at most'
        f' {MAX_ROWS_PER_BATCH} (the published batches hold at most 128123)'
    )
  width = shape[1]
  if width != 3 * size * size:
    fits = size_of_width(width)
    hint = (
        f'rows of {width} values are {fits}x{fits} images'
        if fits
        else f'rows of {width} values fit no square RGB image'
    )
    raise common.SourceError(
        f'{where}: {hint}; this is the {size}x{size} config, which expects rows'
        f' of {3 * size * size} values'
    )
  if fortran and shape[0] > 1:
    raise common.SourceError(
        f'{where}: `data` is stored in Fortran order; expected C order'
        ' rows as np.savez writes them'
    )


def check_label_count(
    where: str, shape: tuple[int, ...], dtype: np.dtype, num_rows: int
) -> None:
  """SourceError unless `labels` (as declared) fit `num_rows` rows."""
  if len(shape) != 1:
    raise common.SourceError(
        f'{where}: `labels` has shape {one_line.shape(shape)}; expected a list of'
        f' {num_rows} labels, one per row of `data`'
    )
  if shape[0] != num_rows:
    raise common.SourceError(
        f'{where}: `labels` holds {one_line.quantity(shape[0])} labels but `data` holds'
        f' {num_rows} rows; expected one label per row'
    )
  if num_rows and not np.issubdtype(dtype, np.integer):
    raise common.SourceError(
        f'{where}: `labels` has dtype {dtype}; expected integers 1..1000'
    )


def zero_based_labels(where: str, labels: np.ndarray) -> np.ndarray:
  """Checks 1-based integer labels and returns them 0-based as int64."""
  labels = labels.astype(np.int64)
  bad = (labels < 1) | (labels > common.NUM_CLASSES)
  if bad.any():
    i = int(np.argmax(bad))
    raise common.SourceError(
        f'{where}: `labels` holds {labels[i]} at row {i}; expected labels'
        f" 1..{common.NUM_CLASSES} (the authors' labels are 1-based)"
    )
  return labels - 1
