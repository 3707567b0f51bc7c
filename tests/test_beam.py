"""The Beam path (DirectRunner, 2 worker processes) against the generator path.

Both build the same fake sources: the generator path in a subprocess where
apache_beam cannot be imported, the Beam path here with the multi-processing
DirectRunner. They must give the same examples in the same order (in fact the
same shard bytes), and those examples must be the sources' pixels and labels.
"""

import dataclasses
import os

import apache_beam as beam
from apache_beam.options import pipeline_options
from apache_beam.testing import util as beam_util
import numpy as np
import pytest

from imagenet_resized.tfds_glue import beam_io
from imagenet_resized.pipeline import examples
from imagenet_resized.tools import fake
from imagenet_resized.authors import discovery
from imagenet_resized.common import SourceError

from conftest import REPO, build, build_in_subprocess, read_split, source_examples

# Every test here builds a dataset or runs processes.
pytestmark = pytest.mark.slow

SIZE = 8
CONFIG = f'{SIZE}x{SIZE}'
TRAIN_BATCHES, PER_BATCH, VAL = 3, 12, 9


@pytest.fixture(scope='module')
def manual_dir(tmp_path_factory):
  out = tmp_path_factory.mktemp('beam_sources')
  fake.write_sources(
      str(out), SIZE, train_batches=TRAIN_BATCHES, examples_per_batch=PER_BATCH,
      val_examples=VAL, seed=3,
  )
  return out


@pytest.fixture(scope='module')
def generator_build(manual_dir, tmp_path_factory):
  """The plain generator path, built where apache_beam is not importable."""
  data_dir = tmp_path_factory.mktemp('generator_data')
  stdout = build_in_subprocess(CONFIG, manual_dir, data_dir, block_beam=True)
  import tensorflow_datasets as tfds
  builder = tfds.builder_from_directory(
      str(data_dir / 'imagenet_resized' / CONFIG / '0.1.0')
  )
  return builder, stdout


@pytest.fixture(scope='module')
def beam_build(manual_dir, tmp_path_factory):
  """The Beam path: DirectRunner, 2 worker processes."""
  data_dir = tmp_path_factory.mktemp('beam_data')
  # The runner's worker processes import imagenet_resized from the repo.
  old_path = os.environ.get('PYTHONPATH')
  os.environ['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO), old_path]))
  try:
    options = pipeline_options.PipelineOptions(
        ['--direct_num_workers=2', '--direct_running_mode=multi_processing']
    )
    return build(CONFIG, manual_dir, data_dir, beam_options=options)
  finally:
    if old_path is None:
      del os.environ['PYTHONPATH']
    else:
      os.environ['PYTHONPATH'] = old_path


def _source_examples(manual_dir, split):
  """Sorted (image bytes, label) of a split, read from the zips with numpy."""
  return sorted(
      (image.tobytes(), label)
      for _, image, label in source_examples(manual_dir, SIZE, split)
  )


def test_generator_path_runs_without_apache_beam(generator_build):
  assert 'built without apache_beam: True' in generator_build[1]


@pytest.mark.parametrize('split', ['train', 'validation'])
def test_same_examples_in_the_same_order(generator_build, beam_build, manual_dir, split):
  from_generator = read_split(generator_build[0], split)
  from_beam = read_split(beam_build, split)
  assert len(from_beam) == len(from_generator) == (
      TRAIN_BATCHES * PER_BATCH if split == 'train' else VAL
  )
  for i, ((gen_image, gen_label), (beam_image, beam_label)) in enumerate(
      zip(from_generator, from_beam)
  ):
    assert gen_label == beam_label, f'example {i}'
    np.testing.assert_array_equal(gen_image, beam_image, err_msg=f'example {i}')
  # And they are the sources' pixels and 0-based labels.
  decoded = sorted((image.tobytes(), label) for image, label in from_beam)
  assert decoded == _source_examples(manual_dir, split)


def test_same_shard_bytes(generator_build, beam_build):
  def shards(data_dir):
    return {
        name: open(os.path.join(data_dir, name), 'rb').read()
        for name in sorted(os.listdir(data_dir)) if '.tfrecord-' in name
    }

  from_generator = shards(generator_build[0].data_dir)
  from_beam = shards(beam_build.data_dir)
  assert sorted(from_generator) == sorted(from_beam)
  assert from_generator == from_beam


# ---------------------------------------------------------------------------
# The PTransform itself, with the in-process DirectRunner.


def _split_source(manual_dir, split='train'):
  return discovery.find_sources(str(manual_dir), SIZE)[split]


def test_ptransform_yields_the_generator_examples(manual_dir):
  source = _split_source(manual_dir)
  expected = list(examples.iter_split_examples(source, SIZE))
  with beam.Pipeline() as pipeline:
    pairs = pipeline | beam_io.examples_from_batches(source, SIZE)
    beam_util.assert_that(pairs, beam_util.equal_to(expected))


def test_ptransform_checks_the_published_count(manual_dir):
  source = dataclasses.replace(
      _split_source(manual_dir), expected_examples=TRAIN_BATCHES * PER_BATCH + 1
  )
  with pytest.raises(Exception) as e:
    with beam.Pipeline() as pipeline:
      _ = pipeline | beam_io.examples_from_batches(source, SIZE)
  message = (
      f'{", ".join(source.files)}: the train split has'
      f' {TRAIN_BATCHES * PER_BATCH} examples; the published archives hold'
      f' {TRAIN_BATCHES * PER_BATCH + 1}'
  )
  assert message in str(e.value)
  # The generator path says the same.
  with pytest.raises(SourceError, match='^' + message.replace('.', r'\.') + '$'):
    list(examples.iter_split_examples(source, SIZE))
