"""Every place where imagenet_resized reaches into TFDS's internals.

TFDS has no public hook for what these do, so they are kept here, named, and
used only with the versions of tensorflow-datasets the test suite has passed
on (`TESTED_TFDS_VERSIONS`, the same as pyproject.toml's range). A build with
any other version stops with one line saying so (`check_tfds_version`),
rather than risking a silently different build.

The touches:
  1. `tensorflow_datasets.core.example_serializer.ExampleSerializer`: the
     class TFDS's split writer instantiates when a split starts. Swapped for
     our deterministic subclass for the length of a build
     (`example_serializer_swapped`); the subclass uses the class's
     `_flat_example_specs` and `get_tf_example`, and
     `tensorflow_datasets.core.utils.dtype_utils` (exported below).
  2. `tensorflow_datasets.core.shuffle.MAX_MEM_BUFFER_SIZE`: the bytes of
     serialized examples TFDS's shuffler keeps in memory before spilling to
     disk; read each time a shuffler is made. Capped for the length of a build
     (`shuffle_memory_capped`).
  3. `DownloadManager._manual_dir`: the manual folder as given; the public
     `manual_dir` property raises when it is missing or empty, where we want
     to fall back to the download (`manual_dir_of`).
  4. `DownloadManager._get_checksum_dl_result`: whether a URL's file is
     already in TFDS's download cache, so that the reachability probe is
     skipped for it (`is_download_cached`).
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_serializer
from tensorflow_datasets.core import shuffle
from tensorflow_datasets.core.download import resource as resource_lib
from tensorflow_datasets.core.utils import dtype_utils  # pylint: disable=unused-import

# The tensorflow-datasets releases the whole test suite has passed on.
TESTED_TFDS_VERSIONS = ('4.9.9', '4.9.10')
# Set to 1 to build with another tensorflow-datasets anyway.
ALLOW_UNTESTED_ENV = 'IMAGENET_RESIZED_ALLOW_UNTESTED_TFDS'

ExampleSerializer = example_serializer.ExampleSerializer


class UntestedTfdsError(RuntimeError):
  """The installed tensorflow-datasets is not one we have tested."""


def check_tfds_version(version: str | None = None) -> None:
  """Raises UntestedTfdsError unless TFDS is a tested release (or allowed)."""
  version = version or tfds.__version__
  if version in TESTED_TFDS_VERSIONS or os.environ.get(ALLOW_UNTESTED_ENV) == '1':
    return
  raise UntestedTfdsError(
      f'tensorflow-datasets {version} is installed, but imagenet_resized was'
      f' tested with {" and ".join(TESTED_TFDS_VERSIONS)} only and relies on'
      ' TFDS internals (see imagenet_resized/tfds_internals.py) that another'
      ' release may change, which could make a different build; expected'
      f' tensorflow-datasets {" or ".join(TESTED_TFDS_VERSIONS)} (pip install'
      f' "tensorflow-datasets=={TESTED_TFDS_VERSIONS[-1]}"), or set'
      f' {ALLOW_UNTESTED_ENV}=1 to build anyway'
  )


@contextlib.contextmanager
def example_serializer_swapped(cls: type) -> Iterator[None]:
  """Within the block, TFDS's split writers serialize examples with `cls`."""
  original = example_serializer.ExampleSerializer
  example_serializer.ExampleSerializer = cls
  try:
    yield
  finally:
    example_serializer.ExampleSerializer = original


@contextlib.contextmanager
def shuffle_memory_capped(limit_bytes: int) -> Iterator[None]:
  """Within the block, TFDS's shuffler keeps at most `limit_bytes` in memory.

  The order of the output does not depend on it, only when buckets spill.
  """
  saved = shuffle.MAX_MEM_BUFFER_SIZE
  shuffle.MAX_MEM_BUFFER_SIZE = min(saved, limit_bytes)
  try:
    yield
  finally:
    shuffle.MAX_MEM_BUFFER_SIZE = saved


def manual_dir_of(dl_manager) -> str | None:
  """The manual folder given to the build (`~` expanded), or None; never raises."""
  manual_dir = dl_manager._manual_dir  # pylint: disable=protected-access
  return os.path.expanduser(os.fspath(manual_dir)) if manual_dir else None


def is_download_cached(dl_manager, url: str) -> bool:
  """Whether TFDS would take `url`'s file from its download cache."""
  resource = resource_lib.Resource(url=url)
  # pylint: disable=protected-access
  return any(
      dl_manager._get_checksum_dl_result(resource, legacy_mode=legacy) is not None
      for legacy in (False, True)
  )
