"""Degrade, never differ: each touch of TFDS internals, simulated changed.

Each test changes what one touch replaces, as a new TFDS release might, and
checks that the build skips that touch (TFDS's own code instead), says so in
one log line, and gives the same examples as a normal build; and that a
parquet build keeps every example whichever writer runs, or is refused.
"""

import functools
import logging
import os
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_serializer
from tensorflow_datasets.core import file_adapters
from tensorflow_datasets.core import registered
from tensorflow_datasets.core import shuffle

import imagenet_resized

from conftest import DUMMY_DATA, build, read_split
from imagenet_resized.authors import download_probe
from imagenet_resized.authors import publication
from imagenet_resized import common
from imagenet_resized.tfds_glue import download_touches
from imagenet_resized.tfds_glue import tfds_touches
from test_download_probe import _serve, download_calls, server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
CONFIG = '16x16'


def _examples(builder) -> list:
  """Every (split, label, pixels) of a build, in a canonical order."""
  return sorted(
      (split, int(label), image.tobytes())
      for split in common.SPLITS
      for image, label in read_split(builder, split)
  )


@pytest.fixture(scope='module')
def normal(tmp_path_factory):
  return _examples(build(CONFIG, DUMMY_DATA, tmp_path_factory.mktemp('normal')))


# Touches the installed release lacks anyway (DOWNLOAD_CACHE on 4.9.4).
ALREADY_SKIPPED = tuple(
    f"touch of TFDS's {name}," for name, why in tfds_touches.check().skipped.items()
    if why not in (tfds_touches.NOT_PARQUET, tfds_touches.NO_BUILDER))


def _skipped_lines(caplog) -> list[str]:
  return [
      m for m in (r.getMessage() for r in caplog.records)
      if 'skipped its touch' in m and not any(a in m for a in ALREADY_SKIPPED)
  ]


def _build_falls_back(touch, tmp_path, caplog, normal, manual=DUMMY_DATA):
  with caplog.at_level(logging.WARNING):
    builder = build(CONFIG, manual, tmp_path / 'data')
  assert type(builder) is imagenet_resized.Builder
  lines = _skipped_lines(caplog)
  assert len(lines) == 1, lines
  assert lines[0].startswith(
      f"imagenet_resized: skipped its touch of TFDS's {touch.name}, using")
  assert '\n' not in lines[0]
  assert _examples(builder) == normal
  return builder


def test_a_changed_example_serializer_class(tmp_path, monkeypatch, caplog, normal):
  used = []

  class NewReleaseSerializer(example_serializer.ExampleSerializer):
    def serialize_example(self, example):
      used.append(1)
      return super().serialize_example(example)

  monkeypatch.setattr(example_serializer, 'ExampleSerializer', NewReleaseSerializer)
  _build_falls_back(tfds_touches.SERIALIZER, tmp_path, caplog, normal)
  assert used  # TFDS's (new) serializer wrote the examples, not ours.


def test_a_changed_feature_encoding(tmp_path, monkeypatch, caplog, normal):
  """A release whose ClassLabel encodes labels as numpy integers: the
  shortcut's probe tells, and TFDS's own encoding runs."""
  import numpy as np
  original = tfds.features.ClassLabel.encode_example
  monkeypatch.setattr(tfds.features.ClassLabel, 'encode_example',
                      lambda self, value: np.int64(original(self, value)))
  _build_falls_back(tfds_touches.FEATURE_ENCODING, tmp_path, caplog, normal)


def test_a_changed_shuffle_memory_constant(tmp_path, monkeypatch, caplog, normal):
  monkeypatch.setattr(shuffle, 'MAX_MEM_BUFFER_SIZE', float(1 << 30))
  _build_falls_back(tfds_touches.SHUFFLE_MEMORY, tmp_path, caplog, normal)
  assert shuffle.MAX_MEM_BUFFER_SIZE == float(1 << 30)


def test_a_download_manager_without_manual_dir_field(tmp_path):
  manager = tfds.download.DownloadManager(
      download_dir=str(tmp_path / 'dl'), manual_dir=str(DUMMY_DATA),
      manual_dir_instructions='x',
  )
  assert download_touches.manual_dir_of(manager) == str(DUMMY_DATA)
  del manager.__dict__['_manual_dir']  # A release that renamed it.
  touches = tfds_touches.check(manager)
  assert not touches.uses(tfds_touches.MANUAL_DIR)
  # TFDS's public property then answers (here it fails: None, never raises).
  assert download_touches.manual_dir_of(manager, touches) is None


@pytest.mark.skipif(
    not hasattr(tfds.download.DownloadManager, '_get_checksum_dl_result'),
    reason='this tensorflow-datasets has no download cache lookup to change')
def test_a_changed_download_cache_lookup(
    server, tmp_path, monkeypatch, caplog, normal, download_calls
):
  original = tfds.download.DownloadManager._get_checksum_dl_result
  monkeypatch.setattr(
      tfds.download.DownloadManager, '_get_checksum_dl_result',
      # A new parameter: its signature is not the one we call.
      lambda self, resource, legacy_mode=False, new=None: original(
          self, resource, legacy_mode),
  )
  monkeypatch.setattr(download_probe, 'why_not_downloadable', functools.partial(
      pytest.fail, 'probed without the download cache lookup'))
  base = _serve(server, 'files', monkeypatch)
  _build_falls_back(tfds_touches.DOWNLOAD_CACHE, tmp_path, caplog, normal,
                    manual=tmp_path / 'manual')
  assert download_calls == [[base + n for n in publication.download_names(16)]]


def test_an_unverified_release_writes_with_its_own_code(
    tmp_path, monkeypatch, caplog, normal
):
  """On a release the suite has not compared bytes on, TFDS's own serializer,
  shard writer and spill files write (one line each), the same examples."""
  original = vars(file_adapters.TfRecordFileAdapter)['write_examples']
  calls = []

  def write_examples(cls, path, iterator):
    calls.append(path)
    return original.__func__(cls, path, iterator)

  monkeypatch.setattr(file_adapters.TfRecordFileAdapter, 'write_examples',
                      classmethod(write_examples))
  monkeypatch.setattr(tfds, '__version__', '4.9.99')
  with caplog.at_level(logging.WARNING):
    builder = build(CONFIG, DUMMY_DATA, tmp_path / 'data')
  lines = _skipped_lines(caplog)
  assert len(lines) == 3, lines
  assert all('its bytes have not been compared with this release' in x
             for x in lines)
  assert calls  # TFDS's own writer wrote the shards.
  assert _examples(builder) == normal


def test_a_changed_spill_bucket_class(tmp_path, monkeypatch, caplog, normal):
  made = []

  class NewReleaseBucket(shuffle._Bucket):
    def __init__(self, path):
      made.append(path)
      super().__init__(path)

  monkeypatch.setattr(shuffle, '_Bucket', NewReleaseBucket)
  _build_falls_back(tfds_touches.SPILL_BUCKET, tmp_path, caplog, normal)


# The name lookup (at import, not per build).

_NAME_LOOKUP_SCRIPT = '''
import sys
import tensorflow_datasets as tfds
if sys.argv[1] == 'tfds-own-first':  # As tests/test_equivalence.py does.
  with tfds.core.registered.skip_registration():
    from tensorflow_datasets.datasets.imagenet_resized import (
        imagenet_resized_dataset_builder as theirs)
if sys.argv[1] == 'unregistered':  # As `tfds build imagenet_resized/` does.
  with tfds.core.registered.skip_registration():
    import imagenet_resized
  # The name is not ours to take: TFDS's own, as without this package.
  assert tfds.builder_cls('imagenet_resized') is not imagenet_resized.Builder
  assert tfds.builder_cls('imagenet_resized').__module__.startswith(
      'tensorflow_datasets.')
  print('ok')
  sys.exit()
import imagenet_resized
builder = tfds.builder('imagenet_resized/16x16', data_dir=sys.argv[2])
assert type(builder) is imagenet_resized.Builder, type(builder).__module__
assert tfds.builder_cls('imagenet_resized') is imagenet_resized.Builder
assert 'imagenet_resized' in tfds.list_builders(with_community_datasets=False)
if sys.argv[1] == 'tfds-own-first':
  assert theirs.Builder is not imagenet_resized.Builder
print('ok')
'''


@pytest.mark.parametrize('order', ['ours-only', 'tfds-own-first', 'unregistered'])
def test_the_name_finds_this_builder_in_a_fresh_process(order, tmp_path):
  """tensorflow-datasets 4.9.4-4.9.6 asked TFDS's own datasets folder first,
  which holds an imagenet_resized too; the name must still mean ours."""
  done = subprocess.run(
      [sys.executable, '-c', _NAME_LOOKUP_SCRIPT, order, str(tmp_path)],
      capture_output=True, text=True, check=False,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'),
  )
  assert done.returncode == 0 and done.stdout.strip() == 'ok', done.stderr[-3000:]
  assert 'skipped its touch' not in done.stderr


class _OtherBuilder:
  name = 'imagenet_resized'


@pytest.mark.parametrize('change', ['uncached listing', 'name finds another'])
def test_a_changed_name_lookup(change, monkeypatch, caplog):
  """A release that asks its datasets folder first in another way: one line
  saying why, nothing raised."""
  monkeypatch.delattr(registered, '_DATASET_PROVIDER_REGISTRY', raising=False)
  if change == 'uncached listing':
    monkeypatch.setattr(registered, '_get_existing_dataset_packages',
                        lambda datasets_dir: {})
    why = 'is not the cached folder listing'
  else:
    monkeypatch.setattr(
        registered, '_get_existing_dataset_packages',
        functools.lru_cache(lambda datasets_dir: {'imagenet_resized': ()}))
    monkeypatch.setattr(registered, 'imported_builder_cls',
                        lambda name: _OtherBuilder)
    why = 'use imagenet_resized.Builder directly'
  # Registered, as when the package is imported (not within skip_registration).
  monkeypatch.setitem(registered._DATASET_REGISTRY, 'imagenet_resized',
                      imagenet_resized.Builder)
  with caplog.at_level(logging.WARNING):
    tfds_touches.name_resolves_to(imagenet_resized.Builder)
  lines = [r.getMessage() for r in caplog.records
           if 'skipped its touch' in r.getMessage()]
  assert len(lines) == 1, lines
  assert lines[0].startswith(
      "imagenet_resized: skipped its touch of TFDS's"
      ' registered._get_existing_dataset_packages, using')
  assert why in lines[0] and '\n' not in lines[0]


# Parquet: every example kept, whichever writer runs, or no build.

PARQUET_NAME = tfds_touches.PARQUET_WRITER.name
needs_parquet = pytest.mark.skipif(
    not hasattr(file_adapters, 'ParquetFileAdapter'),
    reason="this tensorflow-datasets has no parquet file format")


def _parquet_build(tmp_path):
  builder = tfds.builder(f'imagenet_resized/{CONFIG}', data_dir=str(tmp_path / 'data'))
  builder.download_and_prepare(
      file_format='parquet',
      download_config=tfds.download.DownloadConfig(manual_dir=str(DUMMY_DATA)))
  return builder


@needs_parquet
def test_a_release_whose_parquet_writer_keeps_every_example(
    tmp_path, monkeypatch, caplog, normal
):
  """Its own writer runs (ours would write the same rows)."""
  from imagenet_resized.tfds_glue import parquet_shards
  calls = []

  def write_examples(cls, path, iterator):
    calls.append(path)
    return parquet_shards.write_examples(cls, path, iterator)

  monkeypatch.setattr(file_adapters.ParquetFileAdapter, 'write_examples',
                      classmethod(write_examples))
  with caplog.at_level(logging.WARNING):
    builder = _parquet_build(tmp_path)
  (line,) = [x for x in _skipped_lines(caplog) if PARQUET_NAME in x]
  assert "TFDS's own writer keeps every example" in line
  assert len(calls) >= 2 + 1  # The probe, then the shards.
  assert _examples(builder) == normal


@needs_parquet
def test_a_release_whose_parquet_writer_and_ours_lose_examples(tmp_path, monkeypatch):
  """Refused in one line rather than lose examples."""
  from imagenet_resized.tfds_glue import parquet_shards
  write_all = parquet_shards.write_examples

  def losing(cls, path, iterator):
    return write_all(cls, path, list(iterator)[1:])

  monkeypatch.setattr(file_adapters.ParquetFileAdapter, 'write_examples',
                      classmethod(losing))
  monkeypatch.setattr(parquet_shards, 'write_examples', losing)
  with pytest.raises(ValueError) as e:
    _parquet_build(tmp_path)
  assert str(e.value).startswith(
      "tensorflow-datasets's parquet writer loses examples and"
      " imagenet_resized's replacement cannot be used")
  assert str(e.value).endswith('--file_format tfrecord or array_record')
  assert '\n' not in str(e.value)
  assert not os.path.exists(tmp_path / 'data' / 'imagenet_resized' / CONFIG / '0.1.0')
