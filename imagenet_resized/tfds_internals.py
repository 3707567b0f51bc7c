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
  5. `tensorflow_datasets.core.file_adapters.TfRecordFileAdapter.write_examples`
     (the classmethod TFDS's writer calls to write a shard) and
  6. `tensorflow_datasets.core.shuffle._Bucket` (the class of the shuffler's
     spill files, looked up when a shuffler is made): both go through
     TensorFlow's file API, which is why a build imports TensorFlow at all.
     For local paths they are swapped, for the length of a build, for
     equivalents on Python's own files (`local_files_without_tensorflow`):
     the same bytes, without TensorFlow's ~6 s of CPU and ~780 MiB import in
     the build process. Other paths (gs://...) keep TFDS's own code.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
from typing import Iterator

import google_crc32c

import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_serializer
from tensorflow_datasets.core import file_adapters
from tensorflow_datasets.core import shuffle
from tensorflow_datasets.core.download import resource as resource_lib
from tensorflow_datasets.core.utils import dtype_utils  # pylint: disable=unused-import

from imagenet_resized import tfrecord_writer

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
def _replaced(owner, name: str, value) -> Iterator[None]:
  """Within the block, `owner.name` (a module's or class's own attribute) is
  `value`; restored after it."""
  original = vars(owner)[name]
  setattr(owner, name, value)
  try:
    yield
  finally:
    setattr(owner, name, original)


def example_serializer_swapped(cls: type):
  """Within the block, TFDS's split writers serialize examples with `cls`."""
  return _replaced(example_serializer, 'ExampleSerializer', cls)


def shuffle_memory_capped(limit_bytes: int):
  """Within the block, TFDS's shuffler keeps at most `limit_bytes` in memory.

  The order of the output does not depend on it, only when buckets spill.
  """
  return _replaced(
      shuffle, 'MAX_MEM_BUFFER_SIZE', min(shuffle.MAX_MEM_BUFFER_SIZE, limit_bytes)
  )


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


def _is_local(path) -> bool:
  return '://' not in os.fspath(path)


class _LocalBucket(shuffle._Bucket):  # pylint: disable=protected-access
  """TFDS's shuffle bucket on Python's own files, for local paths.

  The same file format as TFDS's `_Bucket` (16-byte hashed key, 8-byte size,
  data; see its docstring), the same behaviour; only the file API differs.
  """

  def __init__(self, path):
    super().__init__(path)
    self._local = _is_local(path)

  def add(self, key, data: bytes) -> None:
    if not self._local:
      return super().add(key, data)
    if not self._fobj:
      os.makedirs(os.path.dirname(os.fspath(self._path)), exist_ok=True)
      try:
        self._fobj = open(self._path, 'wb')
      except OSError as e:
        if e.errno != errno.EMFILE:
          raise
        # Up to 1,000 bucket files are open at once, as with TFDS's own.
        shuffle._increase_open_files_limit()  # pylint: disable=protected-access
        self._fobj = open(self._path, 'wb')
    # pylint: disable-next=protected-access
    self._fobj.write(shuffle._hkey_to_bytes(key) + struct.pack('=Q', len(data)))
    self._fobj.write(data)
    self._length += 1
    self._size += len(data)

  def flush(self) -> None:
    # TFDS's flush closes the file; a closed Python file cannot be flushed
    # again, and read_values flushes first.
    if self._fobj and not (self._local and self._fobj.closed):
      super().flush()

  def read_values(self):
    if not self._local:
      yield from super().read_values()
      return
    self.flush()
    if not os.path.exists(self._path):  # Nothing was ever added.
      return
    with open(self._path, 'rb') as f:
      while True:
        head = f.read(shuffle.HKEY_SIZE_BYTES)
        if not head:
          return
        (size,) = struct.unpack('=Q', f.read(8))
        yield shuffle._read_hkey(head), f.read(size)  # pylint: disable=protected-access

  def del_file(self) -> None:
    if not self._local:
      return super().del_file()
    if os.path.exists(self._path):
      os.remove(self._path)


def _write_examples_locally(original):
  """TfRecordFileAdapter.write_examples, on Python's files for local paths."""

  def write_examples(cls, path, iterator):
    if not _is_local(path):
      return original.__func__(cls, path, iterator)
    tfrecord_writer.write_records(path, (data for _, data in iterator))
    return None  # As TFDS's: TFRecord shards record no positions.

  return classmethod(write_examples)


@contextlib.contextmanager
def local_files_without_tensorflow() -> Iterator[None]:
  """Within the block, TFDS writes local shards and shuffle buckets with
  Python's files (touches 5 and 6), when google-crc32c has its C code (its
  pure-Python fallback would be far slower than importing TensorFlow)."""
  if google_crc32c.implementation != 'c':
    yield
    return
  adapter = file_adapters.TfRecordFileAdapter
  write = _write_examples_locally(vars(adapter)['write_examples'])
  with _replaced(adapter, 'write_examples', write), _replaced(
      shuffle, '_Bucket', _LocalBucket
  ):
    yield
