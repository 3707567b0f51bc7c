"""Two builds of the same sources, in two processes, give byte-identical shards."""

import io
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from tensorflow_datasets.core import example_serializer

import imagenet_resized
from imagenet_resized.tfds_glue import deterministic_serializer
from imagenet_resized.tfds_glue import tfds_touches
from imagenet_resized.tools import fake
from imagenet_resized.formats import png_codec

from conftest import build_in_subprocess, read_split, source_examples

SIZE = 32
CONFIG = f'{SIZE}x{SIZE}'


def _files(version_dir):
  return {
      name: open(os.path.join(version_dir, name), 'rb').read()
      for name in sorted(os.listdir(version_dir)) if '.tfrecord-' in name
  }


@pytest.fixture(scope='module')
def manual_dir(tmp_path_factory):
  manual_dir = tmp_path_factory.mktemp('det_sources')
  fake.write_sources(
      str(manual_dir), SIZE, train_batches=3, examples_per_batch=40,
      val_examples=15, seed=5,
  )
  return manual_dir


@pytest.fixture(scope='module')
def two_builds(tmp_path_factory, manual_dir):
  version_dirs = []
  for name in ('first', 'second'):
    data_dir = tmp_path_factory.mktemp(name)
    build_in_subprocess(CONFIG, manual_dir, data_dir)
    version_dirs.append(data_dir / 'imagenet_resized' / CONFIG / '0.1.0')
  return version_dirs


@pytest.mark.slow
def test_shards_are_byte_identical(two_builds):
  first, second = (_files(d) for d in two_builds)
  assert {n.split('.tfrecord-')[0] for n in first} == {
      'imagenet_resized-train', 'imagenet_resized-validation'
  }
  assert sorted(first) == sorted(second)
  for name in first:
    assert first[name] == second[name], f'{name} differs between two builds'


@pytest.mark.slow
def test_examples_are_lossless_pngs(two_builds, manual_dir):
  """Each stored PNG, decoded by Pillow, holds exactly a source row's pixels
  (the sources read by plain numpy), and TFDS decodes it to the same."""
  builder = tfds.builder_from_directory(str(two_builds[0]))
  raw = read_split(builder, 'train', decoders={'image': tfds.decode.SkipDecoding()})
  decoded = read_split(builder, 'train')
  assert len(raw) == len(decoded) == 120
  by_pillow = []
  for (png, label), (image, _) in zip(raw, decoded):
    assert png[:8] == b'\x89PNG\r\n\x1a\n'
    with Image.open(io.BytesIO(png)) as im:
      assert (im.format, im.mode, im.size) == ('PNG', 'RGB', (SIZE, SIZE))
      pixels = np.asarray(im)
    np.testing.assert_array_equal(image, pixels)
    by_pillow.append((pixels.tobytes(), label))
  expected = [
      (image.tobytes(), label)
      for _, image, label in source_examples(manual_dir, SIZE, 'train')
  ]
  # TFDS orders examples by key hash: compare as sorted lists.
  assert sorted(by_pillow) == sorted(expected)


# ---------------------------------------------------------------------------
# The serializer that makes it so.


@pytest.fixture(scope='module')
def features():
  return imagenet_resized.Builder(config=CONFIG, data_dir='/nonexistent').info.features


def _examples(features, n=20):
  images = fake.make_images(np.random.default_rng(1), n, SIZE)
  pngs = png_codec.encode_pngs(images)
  return [
      features.encode_example({'image': png, 'label': label})
      for png, label in zip(pngs, [0, 999] + list(range(1, n - 1)))
  ]


def test_serializer_matches_tfds_deterministic_output(features):
  ours = deterministic_serializer.DeterministicExampleSerializer(
      features.get_serialized_info()
  )
  theirs = example_serializer.ExampleSerializer(features.get_serialized_info())
  for example in _examples(features):
    expected = theirs.get_tf_example(example).SerializeToString(deterministic=True)
    assert ours.serialize_example(example) == expected
    # With the label as a numpy integer too.
    with_np_label = dict(example, label=np.int64(example['label']))
    assert ours.serialize_example(with_np_label) == expected


def test_serializer_writes_any_int64_and_long_bytes_as_protobuf_does():
  """Negative and 64-bit integers, byte strings past two-byte lengths."""
  features = tfds.features.FeaturesDict({
      'blob': tfds.features.Tensor(shape=(), dtype=np.object_),
      'count': tfds.features.Tensor(shape=(), dtype=np.int64),
      'a_small': tfds.features.Tensor(shape=(), dtype=np.int32),
  })
  ours = deterministic_serializer.DeterministicExampleSerializer(
      features.get_serialized_info()
  )
  theirs = example_serializer.ExampleSerializer(features.get_serialized_info())
  for count, small, blob in [
      (-1, 0, b''), (2**63 - 1, -(2**31), b'x' * 16384), (-(2**63), 127, b'\0' * 300),
      (128, 2**31 - 1, bytes(range(256)) * 100),
  ]:
    # As Image and ClassLabel encode them: plain bytes and int.
    example = {'blob': blob, 'count': count, 'a_small': small}
    assert ours._direct(example) is not None
    assert ours.serialize_example(example) == theirs.get_tf_example(
        example
    ).SerializeToString(deterministic=True)


def test_serializer_falls_back_for_other_features():
  features = tfds.features.FeaturesDict({
      'vector': tfds.features.Tensor(shape=(3,), dtype=np.float32),
      'name': tfds.features.Text(),
  })
  ours = deterministic_serializer.DeterministicExampleSerializer(
      features.get_serialized_info()
  )
  theirs = example_serializer.ExampleSerializer(features.get_serialized_info())
  example = features.encode_example({'vector': [1.0, 2.0, 3.0], 'name': 'box'})
  assert ours.serialize_example(example) == theirs.get_tf_example(
      example
  ).SerializeToString(deterministic=True)


def test_serializer_is_used_only_during_a_build():
  original = example_serializer.ExampleSerializer
  with tfds_touches.SERIALIZER.applied(None):
    assert (
        example_serializer.ExampleSerializer
        is deterministic_serializer.DeterministicExampleSerializer
    )
  assert example_serializer.ExampleSerializer is original
