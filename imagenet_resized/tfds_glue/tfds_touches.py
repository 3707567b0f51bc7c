"""Every place where imagenet_resized reaches into TFDS's internals.

TFDS has no public hook for what these do. Each touch is one small object:
its `name` (what of TFDS it touches), `problem()` (why a build cannot use it,
None when it can) and `applied()` (its replacement, in place for the length
of a build). `check` asks every touch when a build starts; one that cannot
be used is skipped for that build, with one log line, and TFDS's own code
runs instead: slower, never different, never refused (docs/versions.md).

The replacements that write bytes TFDS would write (the serializer, the
shard writer, the spill files) run only on the releases whose bytes the
test suite has compared with TFDS's own (`VERIFIED_TFDS_VERSIONS`); on any
other release TFDS's own code writes until a maintainer runs the suite on it
and adds it (docs/architecture.md, "Support a new TFDS release").
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import dataclasses
import inspect
import logging
import os

import google_crc32c
import tensorflow_datasets as tfds
from tensorflow_datasets.core import constants
from tensorflow_datasets.core import example_serializer
from tensorflow_datasets.core import file_adapters
from tensorflow_datasets.core import registered
from tensorflow_datasets.core import shuffle
from tensorflow_datasets.core.download import download_manager
from tensorflow_datasets.core.download import resource as resource_lib
from tensorflow_datasets.core.utils import dtype_utils

from imagenet_resized.tfds_glue import deterministic_serializer
from imagenet_resized.tfds_glue import local_files
from imagenet_resized.tfds_glue import parquet_shards

log = logging.getLogger(__name__)

# The tensorflow-datasets releases on which the test suite compared the
# replacements' bytes with TFDS's own (tests/test_versions.py).
VERIFIED_TFDS_VERSIONS = ('4.9.4', '4.9.9', '4.9.10')

DownloadManager = download_manager.DownloadManager


def _params(fn) -> list[str] | None:
  """The parameter names of `fn`, or None if it has no readable signature."""
  try:
    return list(inspect.signature(fn).parameters)
  except (TypeError, ValueError):
    return None


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


class Touch:
  """One touch of TFDS's internals."""

  name = ''  # What of TFDS it touches.
  # Whether its replacement writes bytes TFDS's code would write: then only
  # on VERIFIED_TFDS_VERSIONS.
  writes_tfds_bytes = False

  def problem(self, dl_manager, file_format: str | None) -> str | None:
    """Why a build cannot use this touch, or None."""
    if (
        self.writes_tfds_bytes
        and tfds.__version__ not in VERIFIED_TFDS_VERSIONS
    ):
      return (
          'its bytes have not been compared with this release'
          f" ({', '.join(VERIFIED_TFDS_VERSIONS)} were)"
      )
    return self.structure_problem(dl_manager, file_format)

  def structure_problem(self, dl_manager, file_format) -> str | None:
    del dl_manager, file_format
    return None

  def applied(self, builder) -> contextlib.AbstractContextManager:
    """Within the block, TFDS runs with this touch (a no-op for the touches
    that are asked for on demand)."""
    del builder
    return contextlib.nullcontext()


class SerializerSwap(Touch):
  """TFDS's split writer makes its serializer from the class
  `example_serializer.ExampleSerializer` when a split starts: swapped, for a
  build, for our deterministic subclass (`deterministic_serializer`)."""

  name = 'example_serializer.ExampleSerializer'
  writes_tfds_bytes = True

  def structure_problem(self, dl_manager, file_format) -> str | None:
    cls = getattr(example_serializer, 'ExampleSerializer', None)
    ours = deterministic_serializer.DeterministicExampleSerializer
    if cls is not ours.__bases__[0]:
      return 'it is not the class ours extends'
    for name, params in (
        ('__init__', ['self', 'example_specs']),
        ('get_tf_example', ['self', 'example']),
        ('serialize_example', ['self', 'example']),
    ):
      if _params(getattr(cls, name, None)) != params:
        return f'its {name} has not the parameters {params}'
    for name in ('is_string', 'is_integer'):
      if not callable(getattr(dtype_utils, name, None)):
        return f'dtype_utils.{name} is missing'
    return None

  def applied(self, builder):
    return _replaced(
        example_serializer,
        'ExampleSerializer',
        deterministic_serializer.DeterministicExampleSerializer,
    )


class ShuffleMemoryCap(Touch):
  """The bytes of examples TFDS's shuffler holds in memory before it spills
  to disk, read when a shuffler is made: capped for a build at the builder's
  SHUFFLE_MEMORY_BYTES (the order of the output does not depend on it)."""

  name = 'shuffle.MAX_MEM_BUFFER_SIZE'

  def structure_problem(self, dl_manager, file_format) -> str | None:
    value = vars(shuffle).get('MAX_MEM_BUFFER_SIZE')
    if type(value) is not int:
      return f'it is {value!r}, not a byte count'
    return None

  def applied(self, builder):
    limit = min(shuffle.MAX_MEM_BUFFER_SIZE, builder.SHUFFLE_MEMORY_BYTES)
    return _replaced(shuffle, 'MAX_MEM_BUFFER_SIZE', limit)


class ManualDirAsGiven(Touch):
  """The manual folder as given: TFDS's public `manual_dir` raises when it is
  missing or empty, where the builder falls back to the download and names
  the folder in its message (`manual_dir_of`)."""

  name = 'DownloadManager._manual_dir'

  def structure_problem(self, dl_manager, file_format) -> str | None:
    if dl_manager is not None and '_manual_dir' not in vars(dl_manager):
      return 'the download manager has no _manual_dir'
    return None


class DownloadCacheLookup(Touch):
  """Whether a URL's file is already in TFDS's download cache, so that the
  reachability probe is not asked for it (`is_download_cached`)."""

  name = 'DownloadManager._get_checksum_dl_result'

  def structure_problem(self, dl_manager, file_format) -> str | None:
    fn = getattr(DownloadManager, '_get_checksum_dl_result', None)
    if _params(fn) != ['self', 'resource', 'legacy_mode']:
      return 'it is missing, or takes other parameters'
    if 'url' not in (_params(resource_lib.Resource) or ()):
      return 'resource.Resource takes no url'
    return None


class LocalShardWriter(Touch):
  """The classmethod TFDS's writer calls to write a TFRecord shard: for a
  build, local shards are written by `local_files` (no TensorFlow)."""

  name = 'file_adapters.TfRecordFileAdapter.write_examples'
  writes_tfds_bytes = True

  def structure_problem(self, dl_manager, file_format) -> str | None:
    adapter = getattr(file_adapters, 'TfRecordFileAdapter', None)
    method = vars(adapter).get('write_examples') if adapter else None
    if not isinstance(method, classmethod) or _params(method.__func__) != [
        'cls',
        'path',
        'iterator',
    ]:
      return 'it is not a classmethod (cls, path, iterator)'
    if google_crc32c.implementation != 'c':
      # The pure-Python CRC would be far slower than importing TensorFlow.
      return 'google-crc32c has no C code here'
    return None

  def applied(self, builder):
    adapter = file_adapters.TfRecordFileAdapter
    write = local_files.shard_writer(vars(adapter)['write_examples'])
    return _replaced(adapter, 'write_examples', write)


class LocalSpillBucket(Touch):
  """The class of TFDS's shuffler's spill files, looked up when a shuffler
  is made: for a build, local ones are written by `local_files`."""

  name = 'shuffle._Bucket'
  writes_tfds_bytes = True

  def structure_problem(self, dl_manager, file_format) -> str | None:
    if vars(shuffle).get('_Bucket') is not local_files.LocalBucket.__bases__[0]:
      return 'it is not the class ours extends'
    for name in ('_hkey_to_bytes', '_read_hkey', '_increase_open_files_limit'):
      if not callable(vars(shuffle).get(name)):
        return f'shuffle.{name} is missing'
    if vars(shuffle).get('HKEY_SIZE_BYTES') != 16:
      return 'shuffle.HKEY_SIZE_BYTES is not 16'
    return None

  def applied(self, builder):
    return _replaced(shuffle, '_Bucket', local_files.LocalBucket)


class ParquetShardWriter(Touch):
  """The classmethod that writes a parquet shard, for parquet builds only:
  where TFDS's own loses examples (`parquet_shards`), ours writes them all.

  Found by what the writers do, not by the release: TFDS's own writer is
  given more examples than three batches; if it writes them all, it runs.
  If it does not and ours writes them all in the layout TFDS's schema reads,
  ours runs; otherwise the build is refused rather than lose examples.
  """

  name = 'file_adapters.ParquetFileAdapter.write_examples'

  def structure_problem(self, dl_manager, file_format) -> str | None:
    if file_format != 'parquet':
      return NOT_PARQUET
    adapter = getattr(file_adapters, 'ParquetFileAdapter', None)
    method = vars(adapter).get('write_examples') if adapter else None
    if not isinstance(method, classmethod):
      return self._refused('write_examples is not a classmethod')
    if parquet_shards.keeps_every_example(adapter, method.__func__):
      return "TFDS's own writer keeps every example: it runs"
    try:
      if parquet_shards.keeps_every_example(
          adapter, parquet_shards.write_examples
      ):
        return None
    except Exception as e:
      return self._refused(f'ours cannot write its layout ({type(e).__name__})')
    return self._refused('ours does not read back whole')

  def _refused(self, why: str) -> str:
    raise ValueError(
        "tensorflow-datasets's parquet writer loses examples and"
        " imagenet_resized's replacement cannot be used with"
        f' tensorflow-datasets {tfds.__version__} ({why}); expected a file'
        ' format that keeps them: --file_format tfrecord or array_record'
    )

  def applied(self, builder):
    adapter = file_adapters.ParquetFileAdapter
    write = classmethod(parquet_shards.write_examples)
    return _replaced(adapter, 'write_examples', write)


SERIALIZER = SerializerSwap()
SHUFFLE_MEMORY = ShuffleMemoryCap()
MANUAL_DIR = ManualDirAsGiven()
DOWNLOAD_CACHE = DownloadCacheLookup()
SHARD_WRITER = LocalShardWriter()
SPILL_BUCKET = LocalSpillBucket()
PARQUET_WRITER = ParquetShardWriter()
BUILD_TOUCHES = (
    SERIALIZER,
    SHUFFLE_MEMORY,
    MANUAL_DIR,
    DOWNLOAD_CACHE,
    SHARD_WRITER,
    SPILL_BUCKET,
    PARQUET_WRITER,
)
NOT_PARQUET = 'not a parquet build'  # Skipped without a word.


@dataclasses.dataclass(frozen=True)
class Touches:
  """Which touches a build uses: {touch name: why it is skipped}."""

  skipped: dict[str, str]

  def uses(self, touch: Touch) -> bool:
    return touch.name not in self.skipped

  @contextlib.contextmanager
  def applied(self, builder) -> Iterator[None]:
    """Within the block, every touch the build uses is in place."""
    with contextlib.ExitStack() as stack:
      for touch in BUILD_TOUCHES:
        if self.uses(touch):
          stack.enter_context(touch.applied(builder))
      yield


def _log_skipped(name: str, why: str) -> None:
  log.warning(
      "imagenet_resized: skipped its touch of TFDS's %s, using TFDS's own"
      ' code for it: %s (tensorflow-datasets %s)',
      name,
      why,
      tfds.__version__,
  )


def check(dl_manager=None, file_format: str | None = None) -> Touches:
  """Asks every touch whether this build can use it; logs one line per
  skipped touch. ValueError (one line) if a parquet build would lose
  examples whichever writer ran."""
  skipped = {}
  for touch in BUILD_TOUCHES:
    why = touch.problem(dl_manager, file_format)
    if why:
      skipped[touch.name] = why
      if why != NOT_PARQUET:
        _log_skipped(touch.name, why)
  return Touches(skipped)


def _is_tfds_own(obj, name: str) -> bool:
  """Whether `obj.name` is TFDS's own DownloadManager code, not a replacement
  (a test harness's mock, a user's function), judged by the module and
  qualified name of what Python finds, however it was replaced."""
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
  """Whether `dl_manager.download` is TFDS's own downloader, which goes to the
  network (and retries for minutes, which the reachability probe spares
  users). A replacement, as TFDS's DatasetBuilderTestCase serves EXAMPLE_DIR
  through, is asked and nothing else: no probe, no look into TFDS's cache."""
  return _is_tfds_own(dl_manager, 'download')


def manual_dir_of(dl_manager, touches: Touches | None = None) -> str | None:
  """The manual folder given to the build (`~` expanded), or None; never
  raises. A `manual_dir` that is not TFDS's own property (TFDS's test harness
  sets it) is the folder; otherwise MANUAL_DIR gives it even when it is
  missing or empty (messages name it); without it, TFDS's public property."""
  if _is_tfds_own(dl_manager, 'manual_dir') and (
      (touches is None or touches.uses(MANUAL_DIR))
      and '_manual_dir' in vars(dl_manager)
  ):
    manual_dir = dl_manager._manual_dir
  else:
    try:
      manual_dir = dl_manager.manual_dir
    except Exception:
      manual_dir = None
  return os.path.expanduser(os.fspath(manual_dir)) if manual_dir else None


def is_download_cached(dl_manager, url: str) -> bool:
  """Whether TFDS would take `url`'s file from its download cache
  (DOWNLOAD_CACHE; callers check that the build uses it)."""
  resource = resource_lib.Resource(url=url)
  return any(
      dl_manager._get_checksum_dl_result(resource, legacy_mode=legacy)
      is not None
      for legacy in (False, True)
  )


class NameLookup:
  """The folder listing TFDS asks first for a name, at import: 4.9.4 to 4.9.6
  look a name up in TFDS's own `datasets/` folder before the registry, and it
  holds an `imagenet_resized` of TFDS's own, whose class then clashed with
  ours. Our name is taken out of that (cached) listing, so the name finds
  the registry, as from 4.9.7 on, where nothing is touched."""

  name = 'registered._get_existing_dataset_packages'

  def problem(self, builder_cls: type) -> str | None:
    """Makes `builder_cls.name` resolve to `builder_cls` where TFDS's own
    datasets folder would be asked first; why not, or None (also when there
    is nothing to do)."""
    if hasattr(registered, '_DATASET_PROVIDER_REGISTRY'):
      return None  # 4.9.7 on: the registry is asked first.
    registry = getattr(registered, '_DATASET_REGISTRY', None)
    if not isinstance(registry, dict):
      return 'registered._DATASET_REGISTRY is not a dict'
    if registry.get(builder_cls.name) is not builder_cls:
      # Not registered (imported within skip_registration, as `tfds build
      # path/` does): the name is not ours to take.
      return None
    listing = getattr(registered, '_get_existing_dataset_packages', None)
    if not callable(getattr(listing, 'cache_info', None)) or _params(
        listing
    ) != ['datasets_dir']:
      return 'it is not the cached folder listing'
    try:
      packages = listing(constants.DATASETS_TFDS_SRC_DIR)
    except Exception as e:
      return f"listing TFDS's datasets folder failed: {type(e).__name__}"
    if not isinstance(packages, dict):
      return "the listing of TFDS's datasets folder is not a dict"
    packages.pop(builder_cls.name, None)
    try:
      found = registered.imported_builder_cls(builder_cls.name)
    except Exception as e:
      found = f'{type(e).__name__}: {e}'.splitlines()[0]
    if found is not builder_cls:
      return (
          f"the name '{builder_cls.name}' still finds {found!r}, not this"
          " package's builder; use imagenet_resized.Builder directly"
      )
    return None


NAME_LOOKUP = NameLookup()


def name_resolves_to(builder_cls: type) -> None:
  """Makes `tfds.builder(builder_cls.name)` find `builder_cls`; logs one
  line where it cannot."""
  why = NAME_LOOKUP.problem(builder_cls)
  if why:
    _log_skipped(NAME_LOOKUP.name, why)
