"""From the batches of a split to TFDS (key, example) pairs.

Each example is `{'image': PNG bytes, 'label': 0-based int}`; its key is the
batch's key followed by the row index, as TFDS's own builder forms it.
Pure Python + numpy + zlib: no TFDS here.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

from imagenet_resized import png_codec, sources, worker_pool

# Rows handed to a worker at a time. Small enough to keep workers busy and
# memory flat, large enough to amortise the inter-process hop.
ENCODE_CHUNK_ROWS = 1024


def _encode_chunk(images, item: tuple[str, int, list[int]]):
  key, start, labels = item
  return key, start, png_codec.encode_pngs(images), labels


# Called with each batch and its number of rows once the batch has been read.
BatchDone = Callable[[sources.Batch, int], None]


def _chunks(batches: Iterable[sources.Batch], size: int, batch_done: BatchDone | None):
  """(HWC images, (batch key, first row, labels)) of each chunk of rows."""
  for batch in batches:
    rows = 0
    for chunk in batch.chunks(size, chunk_rows=ENCODE_CHUNK_ROWS):
      rows = chunk.start + len(chunk.labels)
      yield chunk.images, (batch.key, chunk.start, chunk.labels.tolist())
    if batch_done is not None:
      batch_done(batch, rows)


def iter_examples(
    batches: Iterable[sources.Batch], size: int, workers: int = 0,
    batch_done: BatchDone | None = None,
) -> Iterator[tuple[str, dict]]:
  """Examples of `batches`, PNG-encoded in `workers` processes (0: here)."""
  encoded = worker_pool.parallel_map_arrays(
      _encode_chunk, _chunks(batches, size, batch_done), workers,
      slot_bytes=ENCODE_CHUNK_ROWS * size * size * 3,
  )
  for key, start, pngs, labels in encoded:
    for i, (png, label) in enumerate(zip(pngs, labels), start):
      yield f'{key}{i}', {'image': png, 'label': label}


def iter_split_examples(
    source: sources.SplitSource, size: int, workers: int = 0
) -> Iterator[tuple[str, dict]]:
  """Examples of a whole split, checked to be whole where it is published."""
  rows_by_batch: dict[str, int] = {}

  def batch_done(batch: sources.Batch, rows: int) -> None:
    rows_by_batch[batch.name] = rows
    sources.check_batch_rows(source, batch, rows)

  yield from iter_examples(source.batches, size, workers, batch_done)
  sources.check_split_rows(source, rows_by_batch)
