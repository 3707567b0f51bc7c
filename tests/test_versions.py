"""Versions: the ranges, the touches each release uses, and what verifies one.

A release of tensorflow-datasets is verified (tfds_touches.VERIFIED_TFDS_
VERSIONS) when the tests here pass on it: its code writes the bytes ours
write (serializer, shards, spill files); on any other release those three
touches are skipped, and TFDS's own code writes (docs/versions.md).
"""

import logging
import re
import tomllib


import tensorflow_datasets as tfds
from packaging.specifiers import SpecifierSet

from conftest import REPO
from tensorflow_datasets.core import example_serializer
from tensorflow_datasets.core import file_adapters
from tensorflow_datasets.core import shuffle

from imagenet_resized.tfds_glue import deterministic_serializer
from imagenet_resized.tfds_glue import local_files
from imagenet_resized.tfds_glue import tfds_touches


def _requirement(name: str) -> SpecifierSet:
  deps = tomllib.loads((REPO / 'pyproject.toml').read_text())['project']['dependencies']
  (spec,) = [d[len(name):] for d in deps if re.match(rf'{name}[<>=!]', d)]
  return SpecifierSet(spec)


def _oldest() -> dict[str, str]:
  lines = (REPO / '.ci' / 'oldest_versions.txt').read_text().splitlines()
  return dict(x.split('==') for x in lines if x and not x.startswith('#'))


def test_lower_bounds_are_the_oldest_set_ci_runs():
  oldest = _oldest()
  deps = tomllib.loads((REPO / 'pyproject.toml').read_text())['project']['dependencies']
  for name, version in oldest.items():
    if not any(re.match(rf'{name}[<>=!]', d) for d in deps):
      continue  # A constraint of TFDS's own deps (see the file's comment).
    spec = _requirement(name)
    assert version in spec, (name, version)
    assert not any(s.operator in ('<', '<=', '==', '~=') for s in spec), name
  assert oldest['tensorflow-datasets'] in tfds_touches.VERIFIED_TFDS_VERSIONS


def test_no_upper_bound_on_tensorflow_datasets():
  spec = _requirement('tensorflow-datasets')
  for version in ('4.9.4', '4.9.7', '4.9.10', '4.9.11', '4.10.0', '5.0.0'):
    assert version in spec, version
  assert '4.9.3' not in spec


# Touches a release lacks for every dataset: tensorflow-datasets 4.9.4 has no
# DownloadManager._get_checksum_dl_result.
LACKING = {'4.9.4': {tfds_touches.DOWNLOAD_CACHE.name}}


def test_every_touch_is_used_with_the_installed_tfds(caplog):
  """On a release the suite runs on, every touch is used (or the release is
  known to lack it): none is skipped without the suite saying so."""
  assert tfds.__version__ in tfds_touches.VERIFIED_TFDS_VERSIONS
  lacking = LACKING.get(tfds.__version__, set())
  quiet = {  # Nothing to touch outside a parquet build, or a build.
      tfds_touches.PARQUET_WRITER.name: tfds_touches.NOT_PARQUET,
      tfds_touches.FEATURE_ENCODING.name: tfds_touches.NO_BUILDER,
  }
  with caplog.at_level(logging.WARNING):
    touches = tfds_touches.check()
  assert set(touches.skipped) == lacking | set(quiet)
  assert {name: touches.skipped[name] for name in quiet} == quiet
  lines = [r.getMessage() for r in caplog.records]
  assert len(lines) == len(lacking) and all('skipped its touch' in x for x in lines)
  for touch in tfds_touches.BUILD_TOUCHES:
    assert touches.uses(touch) == (touch.name not in touches.skipped)


def test_an_unverified_release_writes_with_tfds_own_code(monkeypatch, caplog):
  """A release whose bytes the suite has not compared: the three touches that
  write TFDS's bytes are skipped, each with one line; the others are used."""
  lacking = LACKING.get(tfds.__version__, set())
  monkeypatch.setattr(tfds, '__version__', '4.9.99')
  with caplog.at_level(logging.WARNING):
    touches = tfds_touches.check()
  writers = {t.name for t in tfds_touches.BUILD_TOUCHES if t.writes_tfds_bytes}
  assert len(writers) == 3
  assert set(touches.skipped) == writers | lacking | {
      tfds_touches.PARQUET_WRITER.name, tfds_touches.FEATURE_ENCODING.name}
  lines = [r.getMessage() for r in caplog.records]
  assert len(lines) == 3 + len(lacking), lines
  for name in writers:
    (line,) = [x for x in lines if f"touch of TFDS's {name}," in x]
    assert 'its bytes have not been compared with this release' in line
    assert '(tensorflow-datasets 4.9.99)' in line and '\n' not in line


# What verifies a release: the replacements' bytes against TFDS's own code.

_PROBE_RECORDS = (b'', b'a', bytes(range(256)) * 3, b'\x89PNG' * 5000)
_PROBE_KEYS = (0, 1, (1 << 128) - 1, 0x0123456789ABCDEF0123456789ABCDEF)


def test_the_serializer_writes_tfds_deterministic_bytes():
  features = tfds.features.FeaturesDict({
      'image': tfds.features.Image(shape=(2, 2, 3), encoding_format='png'),
      'label': tfds.features.ClassLabel(num_classes=1000),
  })
  specs = features.get_serialized_info()
  theirs = example_serializer.ExampleSerializer(specs)
  ours = deterministic_serializer.DeterministicExampleSerializer(specs)
  for label in (0, 7, 127, 128, 999):
    for image in (b'', b'\x89PNG probe ' * 20, bytes(range(256)) * 600):
      example = {'image': image, 'label': label}
      want = theirs.get_tf_example(example).SerializeToString(deterministic=True)
      assert ours.serialize_example(example) == want


def test_the_shard_writer_writes_tfds_bytes(tmp_path):
  adapter = file_adapters.TfRecordFileAdapter
  records = [(str(i), r) for i, r in enumerate(_PROBE_RECORDS)]
  theirs, ours = tmp_path / 'theirs', tmp_path / 'ours'
  adapter.write_examples(str(theirs), iter(records))
  local_files.shard_writer(vars(adapter)['write_examples']).__func__(
      adapter, str(ours), iter(records))
  assert ours.read_bytes() == theirs.read_bytes()


def test_the_spill_files_are_tfds_bytes(tmp_path):
  entries = list(zip(_PROBE_KEYS, _PROBE_RECORDS))
  files = {}
  for name, cls in (('theirs', shuffle._Bucket), ('ours', local_files.LocalBucket)):
    bucket = cls(str(tmp_path / f'{name}.bucket'))
    for key, data in entries:
      bucket.add(key, data)
    bucket.flush()
    files[name] = ((tmp_path / f'{name}.bucket').read_bytes(), list(bucket.read_values()))
  assert files['ours'] == files['theirs']
  assert files['ours'][1] == entries
