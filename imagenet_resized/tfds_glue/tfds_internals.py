"""Every place where imagenet_resized reaches into TFDS's internals.

TFDS has no public hook for what these do, so they are kept here, named, and
checked when a build starts (`check_touches`): each touch checks that what it
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

  7. `tensorflow_datasets.core.registered._get_existing_dataset_packages`:
     tensorflow-datasets 4.9.4 to 4.9.6 look a dataset name up in TFDS's own
     `datasets/` folder before the registry, and that folder holds an
     `imagenet_resized` of TFDS's own, so `tfds.builder('imagenet_resized')`
     imported TFDS's module, whose class then clashed with ours ("Dataset
     with name imagenet_resized already registered"). When this package is
     imported, our name is taken out of that (cached) folder listing, so the
     name finds the registry, as it does from 4.9.7 on, where the registry is
     asked first and nothing is touched (`name_resolves_to`).

How a touch is checked (`check_touches`, at the start of every build):
  * names and signatures, every time (cheap, no TensorFlow): the attribute
    exists, has the expected kind and parameters, and is the very class our
    subclasses extend;
  * for 1, 5 and 6 also bytes: ours against TFDS's own on a probe example /
    records / spill entries (`byte_probe`). For a release the test suite has
    passed on (`VERIFIED_TFDS_VERSIONS`) the version stands for this check.
    For any other release it runs in this process if TensorFlow is already
    imported, else once in a subprocess (TFDS's own code needs TensorFlow,
    whose import the touches exist to avoid), its verdict cached in the user
    cache folder per release and environment (`_cache_key`).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import dataclasses
import errno
import hashlib
from importlib import metadata
import inspect
import json
import logging
import os
import struct
import subprocess
import sys
import tempfile

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

from imagenet_resized.tfds_glue import file_lock
from imagenet_resized.writing import tfrecord_writer

log = logging.getLogger(__name__)

# tensorflow-datasets releases the test suite (or, for the oldest, its
# oldest-versions slice, which compares shards with TFDS's own builder) has
# passed on: for them the release stands for the byte checks.
VERIFIED_TFDS_VERSIONS = ('4.9.4', '4.9.9', '4.9.10')
# Where the verdicts of byte probes are cached (default: the user cache).
CACHE_DIR_ENV = 'IMAGENET_RESIZED_CACHE_DIR'

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
_BYTE_CHECKED = (SERIALIZER, SHARD_WRITER, SPILL_BUCKET)


def _params(fn) -> list[str] | None:
  """The parameter names of `fn`, or None if it has no readable signature."""
  try:
    return list(inspect.signature(fn).parameters)
  except (TypeError, ValueError):
    return None


def _structure_problem(touch: int, dl_manager=None) -> str | None:
  """Why `touch`'s names and signatures are not as expected, or None."""
  if touch == SERIALIZER:
    cls = getattr(example_serializer, 'ExampleSerializer', None)
    if cls is not ExampleSerializer:
      return (
          'example_serializer.ExampleSerializer is not the class ours extends'
      )
    for name, params in (
        ('__init__', ['self', 'example_specs']),
        ('get_tf_example', ['self', 'example']),
        ('serialize_example', ['self', 'example']),
    ):
      if _params(getattr(cls, name, None)) != params:
        return f'ExampleSerializer.{name} has not the parameters {params}'
    for name in ('is_string', 'is_integer'):
      if not callable(getattr(dtype_utils, name, None)):
        return f'dtype_utils.{name} is missing'
    return None
  if touch == SHUFFLE_MEMORY:
    value = vars(shuffle).get('MAX_MEM_BUFFER_SIZE')
    if type(value) is not int:
      return f'shuffle.MAX_MEM_BUFFER_SIZE is {value!r}, not a byte count'
    return None
  if touch == MANUAL_DIR:
    if dl_manager is not None and '_manual_dir' not in vars(dl_manager):
      return 'the download manager has no _manual_dir'
    return None
  if touch == DOWNLOAD_CACHE:
    fn = getattr(DownloadManager, '_get_checksum_dl_result', None)
    if _params(fn) != ['self', 'resource', 'legacy_mode']:
      return (
          'DownloadManager._get_checksum_dl_result(self, resource,'
          ' legacy_mode) is missing'
      )
    if _params(resource_lib.Resource) is None or 'url' not in _params(
        resource_lib.Resource
    ):
      return 'resource.Resource takes no url'
    return None
  if touch == SHARD_WRITER:
    adapter = getattr(file_adapters, 'TfRecordFileAdapter', None)
    method = vars(adapter).get('write_examples') if adapter else None
    if not isinstance(method, classmethod) or _params(method.__func__) != [
        'cls',
        'path',
        'iterator',
    ]:
      return (
          'TfRecordFileAdapter.write_examples is not a classmethod'
          ' (cls, path, iterator)'
      )
    return None
  if touch == SPILL_BUCKET:
    if vars(shuffle).get('_Bucket') is not _LocalBucket.__bases__[0]:
      return 'shuffle._Bucket is not the class ours extends'
    for name in ('_hkey_to_bytes', '_read_hkey', '_increase_open_files_limit'):
      if not callable(vars(shuffle).get(name)):
        return f'shuffle.{name} is missing'
    if vars(shuffle).get('HKEY_SIZE_BYTES') != 16:
      return 'shuffle.HKEY_SIZE_BYTES is not 16'
    return None
  raise ValueError(touch)


# ---------------------------------------------------------------------------
# Byte probes: ours against TFDS's own, on the same small inputs. They need
# TensorFlow (TFDS's own code does).

_PROBE_RECORDS = (b'', b'a', bytes(range(256)) * 3)
_PROBE_KEYS = (0, 1, (1 << 128) - 1, 0x0123456789ABCDEF0123456789ABCDEF)


def _serializer_bytes_problem() -> str | None:
  from imagenet_resized.tfds_glue import deterministic_serializer

  features = tfds.features.FeaturesDict(
      {
          'image': tfds.features.Image(shape=(2, 2, 3), encoding_format='png'),
          'label': tfds.features.ClassLabel(num_classes=1000),
      }
  )
  specs = features.get_serialized_info()
  theirs = ExampleSerializer(specs)
  ours = deterministic_serializer.DeterministicExampleSerializer(specs)
  for label in (0, 7, 999):
    example = {'image': b'\x89PNG probe ' * 20, 'label': label}
    want = theirs.get_tf_example(example).SerializeToString(deterministic=True)
    if ours.serialize_example(example) != want:
      return f"serialized bytes differ from TFDS's on a probe example (label {label})"
    if type(theirs.get_tf_example(example)).FromString(
        theirs.serialize_example(example)
    ) != theirs.get_tf_example(example):
      return "TFDS's serialize_example does not give its tf.train.Example"
  return None


def _writer_bytes_problem(folder: str) -> str | None:
  adapter = file_adapters.TfRecordFileAdapter
  records = [(str(i), r) for i, r in enumerate(_PROBE_RECORDS)]
  theirs, ours = os.path.join(folder, 'theirs'), os.path.join(folder, 'ours')
  adapter.write_examples(theirs, iter(records))
  _write_examples_locally(vars(adapter)['write_examples']).__func__(
      adapter, ours, iter(records)
  )
  with open(theirs, 'rb') as f, open(ours, 'rb') as g:
    if f.read() != g.read():
      return "shard bytes differ from TFDS's on probe records"
  return None


def _bucket_bytes_problem(folder: str) -> str | None:
  entries = list(zip(_PROBE_KEYS, _PROBE_RECORDS + (b'last',)))
  files = {}
  for name, cls in (('theirs', shuffle._Bucket), ('ours', _LocalBucket)):
    bucket = cls(os.path.join(folder, name + '.bucket'))
    for key, data in entries:
      bucket.add(key, data)
    bucket.flush()
    with open(os.path.join(folder, name + '.bucket'), 'rb') as f:
      files[name] = (f.read(), list(bucket.read_values()))
  if files['theirs'][0] != files['ours'][0]:
    return "spill file bytes differ from TFDS's on probe entries"
  if files['theirs'][1] != files['ours'][1] or files['ours'][1] != entries:
    return "spill entries read back differ from TFDS's"
  return None


def byte_probe() -> dict[int, str | None]:
  """{touch: why our bytes differ from TFDS's, or None}, for 1, 5 and 6.

  Imports TensorFlow (through TFDS's own code)."""
  verdict = {}
  with tempfile.TemporaryDirectory(prefix='imagenet_resized-probe-') as folder:
    for touch, probe in (
        (SERIALIZER, _serializer_bytes_problem),
        (SHARD_WRITER, lambda: _writer_bytes_problem(folder)),
        (SPILL_BUCKET, lambda: _bucket_bytes_problem(folder)),
    ):
      try:
        verdict[touch] = probe()
      except Exception as e:
        verdict[touch] = (
            f'the probe failed: {type(e).__name__}: {e}'.splitlines()[0]
        )
  return verdict


def _cache_key() -> str:
  """The release and environment a byte verdict holds for."""

  def version(name: str) -> str:
    try:
      return metadata.version(name)
    except metadata.PackageNotFoundError:
      return '-'

  parts = [
      tfds.__version__,
      sys.version.split()[0],
      google_crc32c.implementation,
  ]
  parts += [
      f'{n}={version(n)}'
      for n in (
          'tensorflow-datasets',
          'tensorflow',
          'protobuf',
          'numpy',
          'google-crc32c',
          'imagenet_resized',
      )
  ]
  return hashlib.sha256('\n'.join(parts).encode()).hexdigest()[:20]


def _cache_dir() -> str:
  if os.environ.get(CACHE_DIR_ENV):
    return os.environ[CACHE_DIR_ENV]
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(
      os.path.expanduser('~'), '.cache'
  )
  return os.path.join(base, 'imagenet_resized')


def _probe_in_subprocess() -> dict[int, str | None]:
  code = (
      'import json; from imagenet_resized import tfds_internals as t;'
      ' print(json.dumps(t.byte_probe()))'
  )
  try:
    done = subprocess.run(
        [sys.executable, '-c', code],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return {int(k): v for k, v in answer.items()}
  except Exception as e:
    why = f'the byte probe did not run: {type(e).__name__}: {e}'.splitlines()[0]
    return {t: why for t in _BYTE_CHECKED}


def _byte_verdict() -> dict[int, str | None]:
  """{touch: why its bytes differ, or None} for 1, 5 and 6 (see the module
  docstring for when the release stands for the probe)."""
  if tfds.__version__ in VERIFIED_TFDS_VERSIONS:
    return {t: None for t in _BYTE_CHECKED}
  if 'tensorflow' in sys.modules:  # Cheap here; not cached (may be patched).
    return byte_probe()
  path = os.path.join(_cache_dir(), f'tfds-touches-{_cache_key()}.json')
  try:
    with open(path) as f:
      return {int(k): v for k, v in json.load(f).items()}
  except (OSError, ValueError):
    pass
  verdict = _probe_in_subprocess()
  if not any(
      v and v.startswith('the byte probe did not run') for v in verdict.values()
  ):
    try:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path + '.tmp', 'w') as f:
        json.dump(verdict, f)
      os.replace(path + '.tmp', path)
    except OSError:
      pass
  return verdict


@dataclasses.dataclass(frozen=True)
class Touches:
  """Which touches a build uses: {touch: why it is skipped, or None}."""

  skipped: dict[int, str]

  def uses(self, touch: int) -> bool:
    return touch not in self.skipped


def check_touches(dl_manager=None) -> Touches:
  """Checks every touch (see the module docstring); logs one line per skipped
  touch and returns which the build may use."""
  skipped = {}
  for touch in TOUCH_NAMES:
    why = _structure_problem(touch, dl_manager)
    if why:
      skipped[touch] = why
  if any(t not in skipped for t in _BYTE_CHECKED):
    for touch, why in _byte_verdict().items():
      if why and touch not in skipped:
        skipped[touch] = why
  if google_crc32c.implementation != 'c':
    for touch in (SHARD_WRITER, SPILL_BUCKET):
      # Its pure-Python fallback would be far slower than importing TF.
      skipped.setdefault(touch, 'google-crc32c has no C code here')
  for touch, why in sorted(skipped.items()):
    _log_skipped(touch, TOUCH_NAMES[touch], why)
  return Touches(skipped)


def _log_skipped(touch: int, name: str, why: str) -> None:
  log.warning(
      'imagenet_resized: skipped touch %d of TFDS internals (%s), using'
      " TFDS's own code for it: %s (tensorflow-datasets %s)",
      touch,
      name,
      why,
      tfds.__version__,
  )


def _name_lookup_problem(builder_cls: type) -> str | None:
  """Touch 7 (see the module docstring): makes `builder_cls.name` resolve to
  `builder_cls` where TFDS's own datasets folder would be asked first; why
  not, or None (also when there is nothing to do)."""
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
  if not callable(getattr(listing, 'cache_info', None)) or _params(listing) != [
      'datasets_dir'
  ]:
    return (
        'registered._get_existing_dataset_packages(datasets_dir) is not'
        ' the cached folder listing'
    )
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


def name_resolves_to(builder_cls: type) -> None:
  """Makes `tfds.builder(builder_cls.name)` find `builder_cls` (touch 7);
  logs one line where it cannot."""
  why = _name_lookup_problem(builder_cls)
  if why:
    _log_skipped(NAME_LOOKUP, IMPORT_TOUCH_NAMES[NAME_LOOKUP], why)


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


class _LocalBucket(shuffle._Bucket):
  """TFDS's shuffle bucket on Python's own files, for local paths.

  The same file format as TFDS's `_Bucket` (16-byte hashed key, 8-byte size,
  data; see its docstring), the same behaviour; only the file API differs.
  """

  def __init__(self, path):
    super().__init__(path)
    self._local = file_lock.is_local(path)

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


def _write_examples_locally(original):
  """TfRecordFileAdapter.write_examples, on Python's files for local paths."""

  def write_examples(cls, path, iterator):
    if not file_lock.is_local(path):
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
      write = _write_examples_locally(vars(adapter)['write_examples'])
      stack.enter_context(_replaced(adapter, 'write_examples', write))
    if touches.uses(SPILL_BUCKET):
      stack.enter_context(_replaced(shuffle, '_Bucket', _LocalBucket))
    yield
