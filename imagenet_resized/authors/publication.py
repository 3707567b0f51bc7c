"""What the authors published: archive and batch names at every size, split
sizes and batch row counts, the download URL. Facts only: reads no file."""

from __future__ import annotations

import os
import re

from imagenet_resized import common

URL_BASE = 'http://www.image-net.org/data/downsample/'
NUM_TRAIN_BATCHES = 10
VAL_BATCH = 'val_data'
# Split sizes of the published data.
PUBLISHED_SPLIT_SIZES = {common.TRAIN: 1_281_167, common.VALIDATION: 50_000}
# Rows of each published batch, the same at every size.
PUBLISHED_BATCH_ROWS = {
    **{f'train_data_batch_{k}': 128_116 for k in range(1, NUM_TRAIN_BATCHES)},
    f'train_data_batch_{NUM_TRAIN_BATCHES}': 128_123,
    VAL_BATCH: 50_000,
}

_BATCH_RE = re.compile(r'(train_data_batch_([1-9]|10)|val_data)(\.npz)?')


def archive_names(size: int, split: str, npz: bool = True) -> list[str]:
  """The authors' archive names holding `split` at `size`."""
  suffix = '_npz.zip' if npz else '.zip'
  if split == common.TRAIN:
    stems = (
        ['Imagenet64_train_part1', 'Imagenet64_train_part2']
        if size == 64
        else [f'Imagenet{size}_train']
    )
  elif split == common.VALIDATION:
    stems = [f'Imagenet{size}_val']
  else:
    raise ValueError(f'unknown split {split!r}')
  return [stem + suffix for stem in stems]


def download_names(size: int) -> list[str]:
  """The npz zips a config downloads, train first."""
  return archive_names(size, common.TRAIN) + archive_names(
      size, common.VALIDATION
  )


def batch_split(basename: str) -> str | None:
  """'train' / 'validation' for a batch file or member name, else None."""
  m = _BATCH_RE.fullmatch(basename)
  if not m:
    return None
  return common.VALIDATION if m.group(1) == 'val_data' else common.TRAIN


def normalize_member(name: str) -> str | None:
  """A zip member name as TFDS's archive iterator reports it (or None to skip)."""
  path = os.path.normpath(name)
  if (
      path.startswith('.')
      or os.path.isabs(path)
      or path.endswith('~')
      or os.path.basename(path).startswith('.')
  ):
    return None
  return path


def published_batch_names(split: str) -> list[str]:
  """The batch names of the published `split`, in order."""
  if split == common.TRAIN:
    return [f'train_data_batch_{k}' for k in range(1, NUM_TRAIN_BATCHES + 1)]
  return [VAL_BATCH]


def train_number(name: str) -> int:
  return int(name.rsplit('_', 1)[1])
