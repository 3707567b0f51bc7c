"""From the batches of a split to TFDS (key, example) pairs.

Each example is `{'image': PNG bytes, 'label': 0-based int}`; its key is the
batch's key followed by the row index, as TFDS's own builder forms it. No
TFDS here: the worker processes import this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
import dataclasses

import numpy as np

from imagenet_resized.authors import batch_files
from imagenet_resized.authors import completeness
from imagenet_resized.authors import row_selection
from imagenet_resized.formats import png_codec
from imagenet_resized.pipeline import pixel_statistics
from imagenet_resized.pipeline import worker_pool

# Rows read, selected and PNG-encoded at a time in a worker: one message.
ENCODE_CHUNK_ROWS = 1024


@dataclasses.dataclass(frozen=True)
class EncodedRows:
  """Examples of some rows as one message from a worker: a few objects, not a
  few per example (pickling many small objects is slow, docs/speed.md). Key i
  is `key_prefix` + `key_ends[i]`, PNG i `pngs[png_ends[i - 1]:png_ends[i]]`;
  `sums` are the images' pixel sums."""

  key_prefix: str
  key_ends: list[str] | np.ndarray
  pngs: bytes
  png_ends: np.ndarray
  labels: np.ndarray
  sums: pixel_statistics.PixelSums

  @classmethod
  def of(cls, key_prefix: str, key_ends, images, labels) -> EncodedRows:
    """The rows of (n, S, S, 3) uint8 `images`: PNG-encoded and summed."""
    pngs, ends = png_codec.encode_pngs_joined(images)
    return cls(
        key_prefix,
        key_ends,
        pngs,
        np.array(ends, np.int64),
        np.asarray(labels, np.int64),
        pixel_statistics.PixelSums.of_images(images),
    )


def examples_of(
    encoded: Iterable[EncodedRows], tally: pixel_statistics.Tally | None
) -> Iterator[tuple[str, dict]]:
  """The (key, example) pairs of encoded rows; their pixel sums go to
  `tally` (if given) before their examples are yielded."""
  for rows in encoded:
    if tally is not None:
      tally.add(rows.sums)
    prefix, pngs, start = rows.key_prefix, rows.pngs, 0
    ends = rows.key_ends
    ends = ends.tolist() if isinstance(ends, np.ndarray) else ends
    for end, png_end, label in zip(
        ends, rows.png_ends.tolist(), rows.labels.tolist()
    ):
      yield f'{prefix}{end}', {'image': pngs[start:png_end], 'label': label}
      start = png_end


@dataclasses.dataclass(frozen=True)
class BatchRead:
  """The end of a batch: how many rows it held (selected or not)."""

  rows: int


@dataclasses.dataclass(frozen=True)
class BatchTask:
  """One batch to read and encode, and which of its rows to take."""

  batch: batch_files.Batch
  size: int
  selection: object  # A row_selection selection.


def encode_batch(task: BatchTask) -> Iterator[EncodedRows | BatchRead]:
  """The examples of the rows `task.selection` takes from a batch, a chunk at
  a time, then its row count; run in a worker, so that the main process (busy
  with TFDS's per-example work) only receives keys, PNGs and labels."""
  batch = task.batch
  keep = task.selection.for_batch()
  rows = 0
  for chunk in batch.chunks(task.size, chunk_rows=ENCODE_CHUNK_ROWS):
    rows = chunk.start + len(chunk.labels)
    mask = keep(chunk.labels)
    if mask.all():
      images, labels = chunk.images, chunk.labels
    elif mask.any():
      images, labels = chunk.images[mask], chunk.labels[mask]
    else:
      continue
    rows_kept = chunk.start + np.flatnonzero(mask)
    yield EncodedRows.of(batch.key, rows_kept, images, labels)
  yield BatchRead(rows)


# Called with each batch and its number of rows once the batch has been read.
BatchDone = Callable[[batch_files.Batch, int], None]
# Called with the number of examples a split kept, if it is the published one.
CheckKept = Callable[[int], None]


def iter_examples(
    batches: Iterable[batch_files.Batch],
    size: int,
    workers: int = 0,
    batch_done: BatchDone | None = None,
    selection=row_selection.EveryRow(),
    tally: pixel_statistics.Tally | None = None,
    ordered: bool = False,
) -> Iterator[tuple[str, dict]]:
  """Examples of the rows `selection` takes from `batches`.

  With `workers` > 0, each batch is encoded whole by one worker process and
  batches interleave as they are ready (TFDS orders examples by a hash of
  their keys: timing does not change what it writes); with `workers` == 0,
  or `ordered`, batch after batch. `batch_done` is called in the batches'
  order all the same; `tally` gets each chunk's pixel sums first.
  """
  batches = list(batches)
  tasks = [BatchTask(batch, size, selection) for batch in batches]
  read: dict[int, int] = {}  # Rows of the batches read, not yet reported.
  reported = 0
  for index, result in worker_pool.parallel_streams(
      encode_batch, tasks, workers, ordered
  ):
    if isinstance(result, BatchRead):
      read[index] = result.rows
      while reported in read:
        rows = read.pop(reported)
        if batch_done is not None:
          batch_done(batches[reported], rows)
        reported += 1
      continue
    yield from examples_of([result], tally)


def check_split(
    source: batch_files.SplitBatches,
    rows_by_batch: dict[str, int],
    kept: int,
    check_kept: CheckKept | None = None,
) -> None:
  """Once a split is done: whole where it is published, and what it kept."""
  completeness.check_split_rows(source, rows_by_batch)
  if check_kept is not None and completeness.is_published(
      source, rows_by_batch
  ):
    check_kept(kept)


def iter_split_examples(
    source: batch_files.SplitBatches,
    size: int,
    workers: int = 0,
    selection=row_selection.EveryRow(),
    check_kept: CheckKept | None = None,
    tally: pixel_statistics.Tally | None = None,
    ordered: bool = False,
) -> Iterator[tuple[str, dict]]:
  """Examples of a whole split, checked to be whole where it is published;
  their pixel sums added to `tally` (if given); `ordered` as `iter_examples`."""
  rows_by_batch: dict[str, int] = {}

  def batch_done(batch: batch_files.Batch, rows: int) -> None:
    rows_by_batch[batch.name] = rows
    completeness.check_batch_rows(source, batch, rows)

  kept = 0
  for key_example in iter_examples(
      source.batches, size, workers, batch_done, selection, tally, ordered
  ):
    kept += 1
    yield key_example
  check_split(source, rows_by_batch, kept, check_kept)


def count_rows_of_classes(
    source: batch_files.SplitBatches, size: int, num_classes: int
) -> int:
  """Rows of the first `num_classes` classes in a split (read, not encoded)."""
  return sum(
      int((chunk.labels < num_classes).sum())
      for batch in source.batches
      for chunk in batch.chunks(size, chunk_rows=ENCODE_CHUNK_ROWS)
  )
