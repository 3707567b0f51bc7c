"""Every place where imagenet_resized reaches into TFDS's internals.

TFDS has no public hook for what these do, so they are kept here, named, and
checked when a build starts (`touch_checks.check_touches`): each touch checks that what it
replaces is still there and behaves as expected, and where anything differs
that build takes TFDS's own code for that touch instead, with one log line
saying which touch was skipped and why. A TFDS release that changes these
internals makes a build slower, never different and never refused
(docs/versions.md).

The touches:
  1. `tensorflow_datasets.core.example_serializer.ExampleSerializer`: the
     class TFDS's split writer instantiates when a split starts. Swapped for
     our deterministic subclass for the length of a build
     (`example_serializer_swapped`); the subclass uses the class's
     `_flat_example_specs` and `get_tf_example`, and
     `tensorflow_datasets.core.utils.dtype_utils`.
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

  7. `tensorflow_datasets.core.registered._get_existing_dataset_packages`:
     tensorflow-datasets 4.9.4 to 4.9.6 look a dataset name up in TFDS's own
     `datasets/` folder before the registry, and that folder holds an
     `imagenet_resized` of TFDS's own, so `tfds.builder('imagenet_resized')`
     imported TFDS's module, whose class then clashed with ours ("Dataset
     with name imagenet_resized already registered"). When this package is
     imported, our name is taken out of that (cached) folder listing, so the
     name finds the registry, as it does from 4.9.7 on, where the registry is
     asked first and nothing is touched (`name_resolves_to`).

How each touch is checked when a build starts: `touch_checks`.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import dataclasses
import errno
import inspect
import logging
import os
import struct

from tensorflow_datasets.core import example_serializer
from tensorflow_datasets.core import file_adapters
from tensorflow_datasets.core import shuffle
from tensorflow_datasets.core.download import download_manager
from tensorflow_datasets.core.download import resource as resource_lib

from imagenet_resized import common
from imagenet_resized.writing import tfrecord_writer

log = logging.getLogger(__name__)

ExampleSerializer = example_serializer.ExampleSerializer
DownloadManager = download_manager.DownloadManager

SERIALIZER = 1
SHUFFLE_MEMORY = 2
MANUAL_DIR = 3
DOWNLOAD_CACHE = 4
SHARD_WRITER = 5
SPILL_BUCKET = 6
NAME_LOOKUP = 7
TOUCH_NAMES = {
    SERIALIZER: 'example_serializer.ExampleSerializer',
    SHUFFLE_MEMORY: 'shuffle.MAX_MEM_BUFFER_SIZE',
    MANUAL_DIR: 'DownloadManager._manual_dir',
    DOWNLOAD_CACHE: 'DownloadManager._get_checksum_dl_result',
    SHARD_WRITER: 'file_adapters.TfRecordFileAdapter.write_examples',
    SPILL_BUCKET: 'shuffle._Bucket',
}
# Checked when the package is imported (`name_resolves_to`), not per build.
IMPORT_TOUCH_NAMES = {
    NAME_LOOKUP: 'registered._get_existing_dataset_packages',
}


@dataclasses.dataclass(frozen=True)
class Touches:
  """Which touches a build uses: {touch: why it is skipped, or None}."""

  skipped: dict[int, str]

  def uses(self, touch: int) -> bool:
    return touch not in self.skipped


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
      shuffle,
      'MAX_MEM_BUFFER_SIZE',
      min(shuffle.MAX_MEM_BUFFER_SIZE, limit_bytes),
  )


def _is_tfds_own(obj, name: str) -> bool:
  """Whether `obj.name`, looked up as Python would find it, is TFDS's own
  DownloadManager code, not a replacement (a test harness's mock, a user's
  function). Judged by the function's module and qualified name, which do not
  depend on when this module was imported or on how the replacement was
  made (mock.patch, monkeypatch, a subclass, a whole other object)."""
  try:
    found = inspect.getattr_static(obj, name)
  except AttributeError:
    return False
  found = getattr(found, 'func', found)  # functools.cached_property
  found = inspect.unwrap(getattr(found, 'fget', found))  # property
  return (
      getattr(found, '__module__', None) == DownloadManager.__module__
      and getattr(found, '__qualname__', None) == f'DownloadManager.{name}'
  )


def downloads_through_tfds(dl_manager) -> bool:
  """Whether `dl_manager.download` is TFDS's own downloader.

  Only TFDS's own downloader goes to the network (and retries for minutes,
  which the reachability probe spares users). When it was replaced, as TFDS's
  DatasetBuilderTestCase does to serve files from EXAMPLE_DIR, the builder
  cannot know where the replacement gets its files from, so it asks the
  replacement and nothing else: no probe, no look into TFDS's cache."""
  return _is_tfds_own(dl_manager, 'download')


def manual_dir_of(dl_manager, touches: Touches | None = None) -> str | None:
  """The manual folder given to the build (`~` expanded), or None; never raises.

  A `manual_dir` that is not TFDS's own property (TFDS's test harness sets it
  to EXAMPLE_DIR) is what the folder is. Otherwise touch 3, `_manual_dir`,
  gives the folder even when it is missing or empty (our error message names
  it); without it, TFDS's public property, None where it raises.
  """
  if not _is_tfds_own(dl_manager, 'manual_dir'):
    try:
      manual_dir = dl_manager.manual_dir
    except Exception:
      manual_dir = None
  elif (touches is None or touches.uses(MANUAL_DIR)) and (
      '_manual_dir' in vars(dl_manager)
  ):
    manual_dir = dl_manager._manual_dir
  else:
    try:
      manual_dir = dl_manager.manual_dir
    except Exception:
      manual_dir = None
  return os.path.expanduser(os.fspath(manual_dir)) if manual_dir else None


def is_download_cached(dl_manager, url: str) -> bool:
  """Whether TFDS would take `url`'s file from its download cache (touch 4).

  Callers check `check_touches` first: without touch 4 this cannot be told.
  """
  resource = resource_lib.Resource(url=url)
  return any(
      dl_manager._get_checksum_dl_result(resource, legacy_mode=legacy)
      is not None
      for legacy in (False, True)
  )


class LocalBucket(shuffle._Bucket):
  """TFDS's shuffle bucket on Python's own files, for local paths.

  The same file format as TFDS's `_Bucket` (16-byte hashed key, 8-byte size,
  data; see its docstring), the same behaviour; only the file API differs.
  """

  def __init__(self, path):
    super().__init__(path)
    self._local = common.is_local(path)

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
        shuffle._increase_open_files_limit()
        self._fobj = open(self._path, 'wb')
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
        yield shuffle._read_hkey(head), f.read(size)

  def del_file(self) -> None:
    if not self._local:
      return super().del_file()
    if os.path.exists(self._path):
      os.remove(self._path)


def write_examples_locally(original):
  """TfRecordFileAdapter.write_examples, on Python's files for local paths."""

  def write_examples(cls, path, iterator):
    if not common.is_local(path):
      return original.__func__(cls, path, iterator)
    tfrecord_writer.write_records(path, (data for _, data in iterator))
    return None  # As TFDS's: TFRecord shards record no positions.

  return classmethod(write_examples)


@contextlib.contextmanager
def local_files_without_tensorflow(touches: Touches) -> Iterator[None]:
  """Within the block, TFDS writes local shards (touch 5) and shuffle buckets
  (touch 6) with Python's files, each where `touches` allows it."""
  with contextlib.ExitStack() as stack:
    if touches.uses(SHARD_WRITER):
      adapter = file_adapters.TfRecordFileAdapter
      write = write_examples_locally(vars(adapter)['write_examples'])
      stack.enter_context(_replaced(adapter, 'write_examples', write))
    if touches.uses(SPILL_BUCKET):
      stack.enter_context(_replaced(shuffle, '_Bucket', LocalBucket))
    yield
