"""Whether each touch of TFDS's internals still holds, checked at build start.

The touches themselves are in `tfds_internals`.

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

import hashlib
from importlib import metadata
import inspect
import json
import os
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
from tensorflow_datasets.core.download import resource as resource_lib
from tensorflow_datasets.core.utils import dtype_utils

from imagenet_resized.tfds_glue import tfds_internals

# tensorflow-datasets releases the test suite (or, for the oldest, its
# oldest-versions slice, which compares shards with TFDS's own builder) has
# passed on: for them the release stands for the byte checks.
VERIFIED_TFDS_VERSIONS = ('4.9.4', '4.9.9', '4.9.10')
# Where the verdicts of byte probes are cached (default: the user cache).
CACHE_DIR_ENV = 'IMAGENET_RESIZED_CACHE_DIR'
_BYTE_CHECKED = (
    tfds_internals.SERIALIZER,
    tfds_internals.SHARD_WRITER,
    tfds_internals.SPILL_BUCKET,
)


def _params(fn) -> list[str] | None:
  """The parameter names of `fn`, or None if it has no readable signature."""
  try:
    return list(inspect.signature(fn).parameters)
  except (TypeError, ValueError):
    return None


def _structure_problem(touch: int, dl_manager=None) -> str | None:
  """Why `touch`'s names and signatures are not as expected, or None."""
  if touch == tfds_internals.SERIALIZER:
    cls = getattr(example_serializer, 'ExampleSerializer', None)
    if cls is not tfds_internals.ExampleSerializer:
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
  if touch == tfds_internals.SHUFFLE_MEMORY:
    value = vars(shuffle).get('MAX_MEM_BUFFER_SIZE')
    if type(value) is not int:
      return f'shuffle.MAX_MEM_BUFFER_SIZE is {value!r}, not a byte count'
    return None
  if touch == tfds_internals.MANUAL_DIR:
    if dl_manager is not None and '_manual_dir' not in vars(dl_manager):
      return 'the download manager has no _manual_dir'
    return None
  if touch == tfds_internals.DOWNLOAD_CACHE:
    fn = getattr(
        tfds_internals.DownloadManager, '_get_checksum_dl_result', None
    )
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
  if touch == tfds_internals.SHARD_WRITER:
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
  if touch == tfds_internals.SPILL_BUCKET:
    if (
        vars(shuffle).get('_Bucket')
        is not tfds_internals.LocalBucket.__bases__[0]
    ):
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
  theirs = tfds_internals.ExampleSerializer(specs)
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
  tfds_internals.write_examples_locally(
      vars(adapter)['write_examples']
  ).__func__(adapter, ours, iter(records))
  with open(theirs, 'rb') as f, open(ours, 'rb') as g:
    if f.read() != g.read():
      return "shard bytes differ from TFDS's on probe records"
  return None


def _bucket_bytes_problem(folder: str) -> str | None:
  entries = list(zip(_PROBE_KEYS, _PROBE_RECORDS + (b'last',)))
  files = {}
  for name, cls in (
      ('theirs', shuffle._Bucket),
      ('ours', tfds_internals.LocalBucket),
  ):
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
        (tfds_internals.SERIALIZER, _serializer_bytes_problem),
        (tfds_internals.SHARD_WRITER, lambda: _writer_bytes_problem(folder)),
        (tfds_internals.SPILL_BUCKET, lambda: _bucket_bytes_problem(folder)),
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
      'import json; from imagenet_resized.tfds_glue import touch_checks as t;'
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


def check_touches(dl_manager=None) -> tfds_internals.Touches:
  """Checks every touch (see the module docstring); logs one line per skipped
  touch and returns which the build may use."""
  skipped = {}
  for touch in tfds_internals.TOUCH_NAMES:
    why = _structure_problem(touch, dl_manager)
    if why:
      skipped[touch] = why
  if any(t not in skipped for t in _BYTE_CHECKED):
    for touch, why in _byte_verdict().items():
      if why and touch not in skipped:
        skipped[touch] = why
  if google_crc32c.implementation != 'c':
    for touch in (tfds_internals.SHARD_WRITER, tfds_internals.SPILL_BUCKET):
      # Its pure-Python fallback would be far slower than importing TF.
      skipped.setdefault(touch, 'google-crc32c has no C code here')
  for touch, why in sorted(skipped.items()):
    _log_skipped(touch, tfds_internals.TOUCH_NAMES[touch], why)
  return tfds_internals.Touches(skipped)


def _log_skipped(touch: int, name: str, why: str) -> None:
  tfds_internals.log.warning(
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
    _log_skipped(
        tfds_internals.NAME_LOOKUP,
        tfds_internals.IMPORT_TOUCH_NAMES[tfds_internals.NAME_LOOKUP],
        why,
    )
