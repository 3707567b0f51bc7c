"""Whether a split's batches are all there, with their published rows."""

from __future__ import annotations

from collections.abc import Sequence

from imagenet_resized import common
from imagenet_resized.authors import batch_files
from imagenet_resized.authors import publication
from imagenet_resized.common import SourceError


def check_numbering(
    split: str, batches: Sequence[batch_files.Batch], looked_in: str
) -> None:
  """Refuses a split whose batches repeat a name or skip a number (a missing
  train batch would silently make the split smaller)."""
  by_name: dict[str, list[batch_files.Batch]] = {}
  for batch in batches:
    by_name.setdefault(batch.name, []).append(batch)
  for name, copies in sorted(by_name.items()):
    if len(copies) > 1:
      raise SourceError(
          f'{looked_in}: {name} appears {len(copies)} times'
          f' ({", ".join(b.where for b in copies)}); expected each batch once'
      )
  if split != common.TRAIN:
    return
  numbers = sorted(publication.train_number(name) for name in by_name)
  missing = [k for k in range(1, numbers[-1] + 1) if k not in numbers]
  if missing:
    ext = '.npz' if batches[0].is_npz else ''
    raise SourceError(
        f'{looked_in}: no {", ".join(f"train_data_batch_{k}{ext}" for k in missing)}'
        f' (found {", ".join(f"train_data_batch_{k}{ext}" for k in numbers)}); expected'
        f' train batches numbered 1..{numbers[-1]} without a gap (the published'
        f' train split has {publication.NUM_TRAIN_BATCHES})'
    )


def check_batch_rows(
    source: batch_files.SplitBatches, batch: batch_files.Batch, rows: int
) -> None:
  """Refuses a batch of the published size in a split that lacks batches
  (called once a batch is read: a real split stops at its first batch)."""
  if publication.PUBLISHED_BATCH_ROWS.get(batch.name) != rows:
    return
  present = {b.name for b in source.batches}
  missing = [
      n
      for n in publication.published_batch_names(source.split)
      if n not in present
  ]
  if missing:
    raise SourceError(
        f'{batch.where}: holds {rows:,} rows, as the published {batch.name}'
        f' does, but the {source.split} split has no {", ".join(missing)};'
        f' expected the whole published split'
        f' ({publication.PUBLISHED_SPLIT_SIZES[source.split]:,} examples)'
    )


def _published_size_batches(rows_by_batch: dict[str, int]) -> list[str]:
  """The batches read that hold their published number of rows."""
  rows = publication.PUBLISHED_BATCH_ROWS
  return [n for n, r in rows_by_batch.items() if rows.get(n) == r]


def is_published(
    source: batch_files.SplitBatches, rows_by_batch: dict[str, int]
) -> bool:
  """Whether a split read whole is the published one: from the registered
  archives, or made of batches of their published row counts."""
  return source.expected_examples is not None or bool(
      _published_size_batches(rows_by_batch)
  )


def check_split_rows(
    source: batch_files.SplitBatches, rows_by_batch: dict[str, int]
) -> None:
  """Refuses a split that claims to be the published one (registered
  archives, or a batch of published rows) but is not of the published size."""
  total = sum(rows_by_batch.values())
  if source.expected_examples is not None and total != source.expected_examples:
    raise SourceError(
        f'{", ".join(source.files)}: the {source.split} split has {total}'
        f' examples; the published archives hold {source.expected_examples}'
    )
  published = _published_size_batches(rows_by_batch)
  expected = publication.PUBLISHED_SPLIT_SIZES[source.split]
  if published and total != expected:
    odd = [
        f'{n} holds {r:,} rows, the published one {publication.PUBLISHED_BATCH_ROWS[n]:,}'
        for n, r in sorted(rows_by_batch.items())
        if n not in published
    ]
    raise SourceError(
        f'{", ".join(source.files)}: the {source.split} split holds {total:,}'
        f' examples, though {published[0]} is of the published size; expected'
        f' the published {expected:,} ({"; ".join(odd)})'
    )
