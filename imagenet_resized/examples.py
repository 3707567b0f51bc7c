"""From the batches of a split to TFDS (key, example) pairs.

Each example is `{'image': PNG bytes, 'label': 0-based int}`; its key is the
batch's key followed by the row index, as TFDS's own builder forms it.
Pure Python + numpy + zlib: no TFDS here.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

from imagenet_resized import png_codec, row_selection, sources, worker_pool

# Rows handed to a worker at a time. Small enough to keep workers busy and
# memory flat, large enough to amortise the inter-process hop.
ENCODE_CHUNK_ROWS = 1024


def _encode_chunk(images, item: tuple[str, list[int], list[int]]):
  key, rows, labels = item
  return key, rows, png_codec.encode_pngs(images), labels


# Called with each batch and its number of rows once the batch has been read.
BatchDone = Callable[[sources.Batch, int], None]
# Called with the number of examples a split kept, once it is done, if the
# split is the published one (e.g. to check a class subset's published size).
CheckKept = Callable[[int], None]


def _chunks(
    batches: Iterable[sources.Batch], size: int, batch_done: BatchDone | None,
    selection,
):
  """(HWC images, (batch key, row indices, labels)) of the rows `selection`
  takes from each chunk of rows."""
  for batch in batches:
    keep = selection.for_batch()
    rows = 0
    for chunk in batch.chunks(size, chunk_rows=ENCODE_CHUNK_ROWS):
      rows = chunk.start + len(chunk.labels)
      mask = keep(chunk.labels)
      if mask.all():
        images, labels = chunk.images, chunk.labels
      elif mask.any():
        images, labels = chunk.images[mask], chunk.labels[mask]
      else:
        continue
      indices = (chunk.start + mask.nonzero()[0]).tolist()
      yield images, (batch.key, indices, labels.tolist())
    if batch_done is not None:
      batch_done(batch, rows)


def iter_examples(
    batches: Iterable[sources.Batch], size: int, workers: int = 0,
    batch_done: BatchDone | None = None,
    selection=row_selection.EveryRow(),
) -> Iterator[tuple[str, dict]]:
  """Examples of the rows `selection` takes from `batches`, PNG-encoded in
  `workers` processes (0: here)."""
  encoded = worker_pool.parallel_map_arrays(
      _encode_chunk, _chunks(batches, size, batch_done, selection), workers,
      slot_bytes=ENCODE_CHUNK_ROWS * size * size * 3,
  )
  for key, rows, pngs, labels in encoded:
    for row, png, label in zip(rows, pngs, labels):
      yield f'{key}{row}', {'image': png, 'label': label}


def check_split(
    source: sources.SplitSource, rows_by_batch: dict[str, int], kept: int,
    check_kept: CheckKept | None = None,
) -> None:
  """Once a split is done: whole where it is published, and what it kept."""
  sources.check_split_rows(source, rows_by_batch)
  if check_kept is not None and sources.is_published(source, rows_by_batch):
    check_kept(kept)


def iter_split_examples(
    source: sources.SplitSource, size: int, workers: int = 0,
    selection=row_selection.EveryRow(), check_kept: CheckKept | None = None,
) -> Iterator[tuple[str, dict]]:
  """Examples of a whole split, checked to be whole where it is published."""
  rows_by_batch: dict[str, int] = {}

  def batch_done(batch: sources.Batch, rows: int) -> None:
    rows_by_batch[batch.name] = rows
    sources.check_batch_rows(source, batch, rows)

  kept = 0
  for key_example in iter_examples(source.batches, size, workers, batch_done, selection):
    kept += 1
    yield key_example
  check_split(source, rows_by_batch, kept, check_kept)


def count_rows_of_classes(
    source: sources.SplitSource, size: int, num_classes: int
) -> int:
  """Rows of the first `num_classes` classes in a split (read, not encoded)."""
  return sum(
      int((chunk.labels < num_classes).sum())
      for batch in source.batches
      for chunk in batch.chunks(size, chunk_rows=ENCODE_CHUNK_ROWS)
  )
