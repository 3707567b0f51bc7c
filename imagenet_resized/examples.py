"""From the batches of a split to TFDS (key, example) pairs.

Each example is `{'image': PNG bytes, 'label': 0-based int}`; its key is the
batch's key followed by the row index, as TFDS's own builder forms it.
Pure Python + numpy + zlib: no TFDS here.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

from imagenet_resized import batch_format, png_codec, sources

# Rows handed to a worker at a time. Small enough to keep workers busy and
# memory flat, large enough to amortise the inter-process hop.
ENCODE_CHUNK_ROWS = 1024


def _encode_chunk(item: tuple[str, batch_format.Chunk]):
  key, chunk = item
  return key, chunk.start, png_codec.encode_pngs(chunk.images), chunk.labels.tolist()


# Called with each batch and its number of rows once the batch has been read.
BatchDone = Callable[[sources.Batch, int], None]


def _chunks(batches: Iterable[sources.Batch], size: int, batch_done: BatchDone | None):
  for batch in batches:
    rows = 0
    for chunk in batch.chunks(size, chunk_rows=ENCODE_CHUNK_ROWS):
      rows = chunk.start + len(chunk.labels)
      yield batch.key, chunk
    if batch_done is not None:
      batch_done(batch, rows)


def iter_examples(
    batches: Iterable[sources.Batch], size: int, workers: int = 0,
    batch_done: BatchDone | None = None,
) -> Iterator[tuple[str, dict]]:
  """Examples of `batches`, PNG-encoded in `workers` processes (0: here)."""
  encoded = png_codec.parallel_map(
      _encode_chunk, _chunks(batches, size, batch_done), workers
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
