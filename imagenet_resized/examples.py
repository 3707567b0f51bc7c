"""From the batches of a split to TFDS (key, example) pairs.

Each example is `{'image': PNG bytes, 'label': 0-based int}`; its key is the
batch's key followed by the row index, as TFDS's own builder forms it.
Pure Python + numpy + zlib: no TFDS here.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from imagenet_resized import batch_format, png_codec, sources, worker_pool
from imagenet_resized.batch_format import SourceError

# Rows handed to a worker at a time. Small enough to keep workers busy and
# memory flat, large enough to amortise the inter-process hop.
ENCODE_CHUNK_ROWS = 1024


def _encode_chunk(images, item: tuple[str, int, list[int]]):
  key, start, labels = item
  return key, start, png_codec.encode_pngs(images), labels


def _chunks(batches: Iterable[sources.Batch], size: int):
  """(HWC images, (batch key, first row, labels)) of each chunk of rows."""
  for batch in batches:
    for chunk in batch.chunks(size, chunk_rows=ENCODE_CHUNK_ROWS):
      yield chunk.images, (batch.key, chunk.start, chunk.labels.tolist())


def iter_examples(
    batches: Iterable[sources.Batch], size: int, workers: int = 0
) -> Iterator[tuple[str, dict]]:
  """Examples of `batches`, PNG-encoded in `workers` processes (0: here)."""
  encoded = worker_pool.parallel_map_arrays(
      _encode_chunk, _chunks(batches, size), workers,
      slot_bytes=ENCODE_CHUNK_ROWS * size * size * 3,
  )
  for key, start, pngs, labels in encoded:
    for i, (png, label) in enumerate(zip(pngs, labels), start):
      yield f'{key}{i}', {'image': png, 'label': label}


def iter_split_examples(
    source: sources.SplitSource, size: int, workers: int = 0
) -> Iterator[tuple[str, dict]]:
  """Examples of a whole split; checks the published split size at the end."""
  count = 0
  for key_example in iter_examples(source.batches, size, workers):
    count += 1
    yield key_example
  check_count(source, count)


def check_count(source: sources.SplitSource, count: int) -> None:
  if source.expected_examples is not None and count != source.expected_examples:
    raise SourceError(
        f'{", ".join(source.files)}: the {source.split} split has {count}'
        f' examples; the published archives hold {source.expected_examples}'
    )
