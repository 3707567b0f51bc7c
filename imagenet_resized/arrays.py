"""A prepared split as memory-mapped numpy arrays: `load(config, split)`.

  arrays = imagenet_resized.arrays.load('32x32', 'train')
  arrays.images   # (N, 32, 32, 3) uint8, memory-mapped from a .npy file
  arrays.labels   # (N,) int64
  arrays.mean, arrays.std  # the train split's per-channel statistics

Row i is example i in TFDS's index order (`split='train[i:i+1]'`,
`as_data_source(split)[i]`), the shards one after the other (docs/arrays.md).
The first call exports them (`array_export`); later calls check the files'
fingerprint (`array_fingerprint`) and open them. Files: `array_location`;
views for grain and tf.data: `RandomAccess`, `tf_random_batches`.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np

from imagenet_resized import configs
from imagenet_resized import imagenet_resized_dataset_builder as builder_module
from imagenet_resized.array_files import array_export
from imagenet_resized.array_files import array_fingerprint
from imagenet_resized.array_files import array_location
from imagenet_resized.array_files.array_fingerprint import ArraysError
from imagenet_resized.array_files.array_views import RandomAccess
from imagenet_resized.array_files.array_views import tf_random_batches
from imagenet_resized.pipeline import pixel_statistics
from imagenet_resized.pipeline import stop_signals
from imagenet_resized.pipeline import worker_pool
from imagenet_resized.tfds_glue import file_lock

__all__ = [
    'ArraysError',
    'RandomAccess',
    'SplitArrays',
    'load',
    'tf_random_batches',
]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SplitArrays:
  """The examples of one prepared split, as arrays.

  Attributes:
    images: (N, S, S, 3) uint8, memory-mapped (read-only) from images.npy.
    labels: (N,) int64.
    mean: per-channel (R, G, B) mean of the train split's pixels, 0..255;
      None where the dataset has no statistics and the split is not train.
    std: the same for the population standard deviation (ddof=0).
    folder: where the files are.
  """

  images: np.ndarray
  labels: np.ndarray
  mean: tuple[float, float, float] | None
  std: tuple[float, float, float] | None
  folder: str

  def __len__(self) -> int:
    return len(self.labels)


def _builder(config, data_dir):
  """The builder of `config`: a name ('32x32', '32x32_100') or a config."""
  try:
    if isinstance(config, str):
      config = configs.from_name(config)
    return builder_module.Builder(config=config, data_dir=data_dir)
  except configs.ConfigError as e:
    raise ArraysError(str(e)) from None


def _stored_statistics(builder, split: str) -> dict | None:
  """The split's {'mean', 'std'} stored by the build, or None (none were)."""
  metadata = builder.info.metadata
  if metadata is None:
    return None
  stored = metadata.get(pixel_statistics.METADATA_KEY, {}).get(split)
  return stored if stored and stored.get('mean') else None


def _train_statistics(builder, fingerprint: dict, split: str):
  """(mean, std) of the train split: the build's, else the export's own."""
  train = _stored_statistics(builder, 'train')
  if train:
    return tuple(train['mean']), tuple(train['std'])
  if split == 'train' and fingerprint.get('statistics'):
    sums = pixel_statistics.PixelSums.from_json(fingerprint['statistics'])
    if sums.pixels:
      return tuple(sums.mean()), tuple(sums.std())
  return None, None


def _open(folder: str, builder, fingerprint: dict, split: str) -> SplitArrays:
  images = np.load(
      os.path.join(folder, array_fingerprint.IMAGES), mmap_mode='r'
  )
  labels = np.load(os.path.join(folder, array_fingerprint.LABELS))
  mean, std = _train_statistics(builder, fingerprint, split)
  return SplitArrays(images, labels, mean, std, folder)


def _checked(folder, expected, verify, refresh) -> dict | None:
  """The folder's fingerprint if its files are a good export, else None
  (nothing complete there, or refresh asked for); ArraysError if refused."""
  try:
    fingerprint = array_fingerprint.read(folder)
    if fingerprint is None:
      return None
    verified = array_fingerprint.check(folder, fingerprint, expected, verify)
  except ArraysError:
    if refresh:
      return None
    raise
  if verified and not verify:
    log.info(
        'Checksums of %s verified (their mtime changed)', ', '.join(verified)
    )
  return None if refresh else fingerprint


def load(
    config,
    split: str,
    *,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    refresh: bool = False,
    verify: bool = False,
    workers: int | None = None,
) -> SplitArrays:
  """The examples of a prepared split as arrays (exported on first use).

  Args:
    config: '8x8' ... '64x64', 'SxS_ilsvrc2012', '16x16_120', 'SxS_K', or an
      ImagenetResizedConfig.
    split: a split of the prepared dataset ('train', 'x_valid'), not a slice.
    data_dir: where the dataset was built (TFDS's default if None).
    cache_dir: a local folder for the arrays (needed for a remote data_dir).
    refresh: export again, even over complete or refused files.
    verify: check the files' full checksums (reads them all) before opening.
    workers: decoding processes of an export (default: one per core).

  Raises:
    ArraysError: (one line) the dataset is not prepared, the split unknown,
      or the files there are not an export of this prepared split.
  """
  builder = _builder(config, data_dir)
  if not builder.is_prepared():
    raise ArraysError(builder.unprepared())
  if split not in builder.info.splits.keys():
    raise ArraysError(
        f'split {split!r}: not a split of imagenet_resized/'
        f'{builder.builder_config.name}; expected one of'
        f' {", ".join(builder.info.splits.keys())}'
    )
  folder = array_location.folder_for(builder, split, cache_dir)
  expected = array_location.identity(builder, split)
  fingerprint = _checked(folder, expected, verify, refresh)
  if fingerprint is not None:
    return _open(folder, builder, fingerprint, split)
  what = (
      f'export of imagenet_resized/{builder.builder_config.name}'
      f' {builder.version} {split} to arrays'
  )
  os.makedirs(os.path.dirname(folder), exist_ok=True)
  with (
      stop_signals.stopped_by_signals(f'the {what}'),
      file_lock.held(folder + '.lock', what),
  ):
    # Another process may have exported it while this one waited.
    fingerprint = None if refresh else _checked(folder, expected, verify, False)
    if fingerprint is None:
      split_info = builder.info.splits[split]
      fingerprint = array_export.export(
          folder,
          expected,
          list(
              zip(
                  (os.fspath(p) for p in split_info.filepaths),
                  split_info.shard_lengths,
              )
          ),
          builder.builder_config.size,
          worker_pool.default_workers() if workers is None else workers,
          f'{builder.builder_config.name} {split}',
          sums=_stored_statistics(builder, split) is None,
      )
  return _open(folder, builder, fingerprint, split)
