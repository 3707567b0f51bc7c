"""Every place where imagenet_resized reaches into TFDS's internals.

TFDS has no public hook for what these do. `check` asks every touch
(`touch_base`) when a build starts; one that cannot be used is skipped for
that build, with one log line, and TFDS's own code runs instead: slower,
never different, never refused (docs/versions.md). Those that write bytes
TFDS would write (the serializer, the shard writer, the spill files) run only
on `VERIFIED_TFDS_VERSIONS` (docs/architecture.md, "Support a new TFDS
release").
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import dataclasses
import logging

import google_crc32c
import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import constants
from tensorflow_datasets.core import example_serializer
from tensorflow_datasets.core import file_adapters
from tensorflow_datasets.core import registered
from tensorflow_datasets.core import shuffle
from tensorflow_datasets.core.utils import dtype_utils

from imagenet_resized.formats import png_codec
from imagenet_resized.tfds_glue import deterministic_serializer
from imagenet_resized.tfds_glue import download_touches
from imagenet_resized.tfds_glue import local_files
from imagenet_resized.tfds_glue import parquet_shards
from imagenet_resized.tfds_glue import touch_base

log = logging.getLogger(__name__)

VERIFIED_TFDS_VERSIONS = touch_base.VERIFIED_TFDS_VERSIONS


class SerializerSwap(touch_base.Touch):
  """The class TFDS's split writer makes its serializer from when a split
  starts: for a build, our subclass (`deterministic_serializer`)."""

  name = 'example_serializer.ExampleSerializer'
  writes_tfds_bytes = True

  def structure_problem(self, dl_manager, builder) -> str | None:
    cls = getattr(example_serializer, 'ExampleSerializer', None)
    ours = deterministic_serializer.DeterministicExampleSerializer
    if cls is not ours.__bases__[0]:
      return 'it is not the class ours extends'
    for name, params in (
        ('__init__', ['self', 'example_specs']),
        ('get_tf_example', ['self', 'example']),
        ('serialize_example', ['self', 'example']),
    ):
      if touch_base.params(getattr(cls, name, None)) != params:
        return f'its {name} has not the parameters {params}'
    for name in ('is_string', 'is_integer'):
      if not callable(getattr(dtype_utils, name, None)):
        return f'dtype_utils.{name} is missing'
    return None

  def applied(self, builder):
    return touch_base.replaced(
        example_serializer,
        'ExampleSerializer',
        deterministic_serializer.DeterministicExampleSerializer,
    )


class ShuffleMemoryCap(touch_base.Touch):
  """The bytes TFDS's shuffler holds in memory before spilling, read when a
  shuffler is made: capped at SHUFFLE_MEMORY_BYTES (the order is the same)."""

  name = 'shuffle.MAX_MEM_BUFFER_SIZE'

  def structure_problem(self, dl_manager, builder) -> str | None:
    value = vars(shuffle).get('MAX_MEM_BUFFER_SIZE')
    if type(value) is not int:
      return f'it is {value!r}, not a byte count'
    return None

  def applied(self, builder):
    limit = min(shuffle.MAX_MEM_BUFFER_SIZE, builder.SHUFFLE_MEMORY_BYTES)
    return touch_base.replaced(shuffle, 'MAX_MEM_BUFFER_SIZE', limit)


class LocalShardWriter(touch_base.Touch):
  """The classmethod TFDS's writer calls to write a TFRecord shard: for a
  build, local shards are written by `local_files` (no TensorFlow)."""

  name = 'file_adapters.TfRecordFileAdapter.write_examples'
  writes_tfds_bytes = True

  def structure_problem(self, dl_manager, builder) -> str | None:
    adapter = getattr(file_adapters, 'TfRecordFileAdapter', None)
    method = vars(adapter).get('write_examples') if adapter else None
    if not isinstance(method, classmethod) or touch_base.params(
        method.__func__
    ) != [
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
    return touch_base.replaced(adapter, 'write_examples', write)


class LocalSpillBucket(touch_base.Touch):
  """The class of TFDS's shuffler's spill files, looked up when a shuffler
  is made: for a build, local ones are written by `local_files`."""

  name = 'shuffle._Bucket'
  writes_tfds_bytes = True

  def structure_problem(self, dl_manager, builder) -> str | None:
    if vars(shuffle).get('_Bucket') is not local_files.LocalBucket.__bases__[0]:
      return 'it is not the class ours extends'
    if not callable(vars(shuffle).get('_increase_open_files_limit')):
      return 'shuffle._increase_open_files_limit is missing'
    if vars(shuffle).get('HKEY_SIZE_BYTES') != 16:
      return 'shuffle.HKEY_SIZE_BYTES is not 16'
    return None

  def applied(self, builder):
    return touch_base.replaced(shuffle, '_Bucket', local_files.LocalBucket)


class ParquetShardWriter(touch_base.Touch):
  """The classmethod that writes a parquet shard, for parquet builds only:
  where TFDS's own loses examples (`parquet_shards`), ours writes them all.
  Chosen by what the writers do with probe examples, not by the release:
  TFDS's own if it keeps them all, else ours if it does, else refused.
  """

  name = 'file_adapters.ParquetFileAdapter.write_examples'

  def structure_problem(self, dl_manager, builder) -> str | None:
    if builder is None or builder.info.file_format.value != 'parquet':
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
    return touch_base.replaced(adapter, 'write_examples', write)


class FeatureEncodingShortcut(touch_base.Touch):
  """TFDS's split writer encodes every example with `info.features`'
  `encode_example`, which gives an example of PNG bytes and a label in range
  (as ours all are) back unchanged, through TFDS's generic code. For a build,
  the FeaturesDict gets a shortcut giving such an example back at once (any
  other goes to TFDS's code), checked on probe examples against TFDS's."""

  name = 'FeaturesDict.encode_example, called by the split writer'

  def structure_problem(self, dl_manager, builder) -> str | None:
    if builder is None:
      return NO_BUILDER
    features = builder.info.features
    label = features['label']
    size = builder.builder_config.size
    png = png_codec.encode_pngs(np.zeros((1, size, size, 3), np.uint8))[0]
    shortcut = self._shortcut(features)
    for value in (0, label.num_classes - 1):
      probe = {'image': png, 'label': value}
      theirs = features.encode_example(dict(probe))
      ours = shortcut(dict(probe))
      if theirs != ours or [type(v) for v in theirs.values()] != [
          type(ours[k]) for k in theirs
      ]:
        return "its encoding of a probe example differs from the shortcut's"
    return None

  @staticmethod
  def _shortcut(features):
    original = features.encode_example
    classes = features['label'].num_classes

    def encode_example(example):
      if type(example) is dict and len(example) == 2:
        image, label = example.get('image'), example.get('label')
        if type(image) is bytes and type(label) is int and 0 <= label < classes:
          return {'image': image, 'label': label}
      return original(example)

    return encode_example

  @contextlib.contextmanager
  def applied(self, builder):
    features = builder.info.features
    features.encode_example = self._shortcut(features)
    try:
      yield
    finally:
      del features.encode_example


SERIALIZER = SerializerSwap()
SHUFFLE_MEMORY = ShuffleMemoryCap()
MANUAL_DIR = download_touches.MANUAL_DIR
DOWNLOAD_CACHE = download_touches.DOWNLOAD_CACHE
SHARD_WRITER = LocalShardWriter()
SPILL_BUCKET = LocalSpillBucket()
PARQUET_WRITER = ParquetShardWriter()
FEATURE_ENCODING = FeatureEncodingShortcut()
BUILD_TOUCHES = (
    FEATURE_ENCODING,
    SERIALIZER,
    SHUFFLE_MEMORY,
    MANUAL_DIR,
    DOWNLOAD_CACHE,
    SHARD_WRITER,
    SPILL_BUCKET,
    PARQUET_WRITER,
)
# Skipped without a word: nothing to touch there.
NOT_PARQUET = 'not a parquet build'
NO_BUILDER = 'no builder'


@dataclasses.dataclass(frozen=True)
class Touches:
  """Which touches a build uses: {touch name: why it is skipped}."""

  skipped: dict[str, str]

  def uses(self, touch: touch_base.Touch) -> bool:
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


def check(dl_manager=None, builder=None) -> Touches:
  """Asks every touch whether `builder`'s build can use it, logging skipped
  ones; ValueError (one line) if a parquet build would lose examples."""
  skipped = {}
  for touch in BUILD_TOUCHES:
    why = touch.problem(dl_manager, builder)
    if why:
      skipped[touch.name] = why
      if why not in (NOT_PARQUET, NO_BUILDER):
        _log_skipped(touch.name, why)
  return Touches(skipped)


class NameLookup:
  """TFDS 4.9.4 to 4.9.6 look a name up, at import, in a cached listing of
  their own `datasets/` folder before the registry, and it holds an
  `imagenet_resized` of TFDS's own. Our name is taken out of that listing so
  that it finds the registry, as from 4.9.7 on (nothing touched there)."""

  name = 'registered._get_existing_dataset_packages'

  def problem(self, builder_cls: type) -> str | None:
    """Makes `builder_cls.name` resolve to `builder_cls`; why it cannot, or
    None (also when there is nothing to do)."""
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
    if not callable(getattr(listing, 'cache_info', None)) or touch_base.params(
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
  """Makes `tfds.builder(builder_cls.name)` find `builder_cls`, or logs why."""
  why = NAME_LOOKUP.problem(builder_cls)
  if why:
    _log_skipped(NAME_LOOKUP.name, why)
