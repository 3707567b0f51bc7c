"""Shards and shuffle buckets written without TensorFlow: the same bytes as
TensorFlow's writer and TFDS's own buckets, and no TensorFlow in the build."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_datasets.core import file_adapters, shuffle

import imagenet_resized
from imagenet_resized.tfds_glue import tfds_touches
from imagenet_resized.tools import fake
from imagenet_resized.formats import tfrecord_files

from conftest import build, build_in_subprocess, source_examples

# Every test here builds a dataset or runs processes.
pytestmark = pytest.mark.slow

RECORDS = [
    b'', b'x', bytes(range(256)), os.urandom(2400), os.urandom(70_000),
    b'\0' * 300_000,
]


def test_records_are_tensorflows_bytes(tmp_path):
  ours, theirs = tmp_path / 'ours.tfrecord', tmp_path / 'theirs.tfrecord'
  assert tfrecord_files.write_records(ours, RECORDS) == len(RECORDS)
  with tf.io.TFRecordWriter(str(theirs)) as writer:
    for data in RECORDS:
      writer.write(data)
  assert ours.read_bytes() == theirs.read_bytes()
  read_back = [t.numpy() for t in tf.data.TFRecordDataset(str(ours))]
  assert read_back == RECORDS


def test_a_corrupted_record_is_detected_by_tensorflow(tmp_path):
  """The checksums are real: TensorFlow refuses a flipped byte."""
  path = tmp_path / 'ours.tfrecord'
  tfrecord_files.write_records(path, [b'abcdefgh' * 10])
  data = bytearray(path.read_bytes())
  data[20] ^= 1
  path.write_bytes(bytes(data))
  with pytest.raises(tf.errors.DataLossError):
    list(tf.data.TFRecordDataset(str(path)))


def _shards(builder):
  folder = builder.data_path
  return {
      name: (folder / name).read_bytes()
      for name in sorted(os.listdir(folder)) if '.tfrecord-' in name
  }


@pytest.fixture(scope='module')
def manual_dir(tmp_path_factory):
  folder = tmp_path_factory.mktemp('sources')
  fake.write_sources(
      str(folder), 16, train_batches=2, examples_per_batch=30, val_examples=10,
      seed=3,
  )
  return folder


@pytest.mark.parametrize('shuffle_bytes', [256 << 20, 0], ids=['in_memory', 'spilled'])
def test_builds_match_tfds_own_files(manual_dir, tmp_path, monkeypatch, shuffle_bytes):
  """With the shuffler in memory and spilled to buckets on disk, the shards
  equal those of a build through TFDS's own TensorFlow file code."""
  monkeypatch.setattr(imagenet_resized.Builder, 'SHUFFLE_MEMORY_BYTES', shuffle_bytes)
  spilled = []
  add_to_bucket = shuffle.Shuffler._add_to_bucket

  def counting(self, hkey, data):
    spilled.append(type(self._buckets[0]).__name__)
    return add_to_bucket(self, hkey, data)

  monkeypatch.setattr(shuffle.Shuffler, '_add_to_bucket', counting)
  ours = _shards(build('16x16', manual_dir, tmp_path / 'ours'))
  with monkeypatch.context() as m:
    for touch in (tfds_touches.SHARD_WRITER, tfds_touches.SPILL_BUCKET):
      m.setattr(touch, 'structure_problem', lambda *_: 'TFDS own files here')
    theirs = _shards(build('16x16', manual_dir, tmp_path / 'theirs'))
  assert sorted(ours) == sorted(theirs) and len(ours) >= 2
  for name in ours:
    assert ours[name] == theirs[name], name
  if shuffle_bytes == 0:  # Both builds spilled every example: ours, then TFDS's.
    assert spilled == ['LocalBucket'] * 70 + ['_Bucket'] * 70
  else:
    assert spilled == []
  # The swaps last only as long as a build.
  assert shuffle._Bucket.__name__ == '_Bucket'
  assert 'write_examples' in file_adapters.TfRecordFileAdapter.__dict__
  assert file_adapters.TfRecordFileAdapter.__dict__['write_examples'].__func__.__module__ == (
      file_adapters.__name__
  )


def test_a_build_does_not_import_tensorflow(manual_dir, tmp_path):
  """The build process stays free of TensorFlow's ~780 MiB, and its shards
  still read back through TensorFlow."""
  out = build_in_subprocess('16x16', manual_dir, tmp_path)
  if 'tensorflow imported by the builder: True' in out:
    # tensorflow-datasets 4.9.7 imports it itself when a builder is made
    # (DatasetInfo.initialize_from_bucket asks tf.io.gfile), before a build.
    pytest.skip('this tensorflow-datasets imports TensorFlow to make a builder')
  assert 'tensorflow imported: False' in out
  import tensorflow_datasets as tfds
  builder = tfds.builder_from_directory(str(tmp_path / 'imagenet_resized' / '16x16' / '0.1.0'))
  built = sorted(
      (ex['image'].tobytes(), int(ex['label']))
      for ex in tfds.as_numpy(builder.as_dataset(split='validation'))
  )
  expected = sorted(
      (np.ascontiguousarray(image).tobytes(), label)
      for _, image, label in source_examples(manual_dir, 16, 'validation')
  )
  assert len(built) == 10 and built == expected
