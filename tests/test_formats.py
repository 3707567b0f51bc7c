"""array_record and random access; TFDS's show_examples and as_dataframe."""

import os
import pathlib
import pickle
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
import tensorflow_datasets as tfds

import imagenet_resized
from conftest import build, read_split, source_examples
from imagenet_resized.tools import fake
from imagenet_resized import labels
from imagenet_resized import common

matplotlib.use('Agg')  # No display in tests.

# Subprocesses import the package this test imports (checkout or installed).
PACKAGE_ROOT = pathlib.Path(imagenet_resized.__file__).resolve().parent.parent

CONFIG, SIZE = '32x32', 32
NAME = f'imagenet_resized/{CONFIG}'


@pytest.fixture(scope='module')
def fake_sources(tmp_path_factory):
  out = tmp_path_factory.mktemp('sources')
  fake.write_sources(
      str(out), SIZE, fmt='npz', train_batches=3, examples_per_batch=8,
      val_examples=10, seed=11,
  )
  return out


@pytest.fixture(scope='module')
def tfrecord_builder(fake_sources, tmp_path_factory):
  """The default build (tfrecord), read sequentially with as_dataset."""
  return build(CONFIG, fake_sources, tmp_path_factory.mktemp('tfrecord'))


@pytest.fixture(scope='module')
def array_record_dir(fake_sources, tmp_path_factory):
  """Built as a user does: `tfds build --file_format=array_record`."""
  data_dir = tmp_path_factory.mktemp('array_record')
  result = subprocess.run(
      [
          sys.executable, '-m', 'tensorflow_datasets.scripts.cli.main', 'build',
          NAME, '--imports', 'imagenet_resized', '--file_format=array_record',
          f'--manual_dir={fake_sources}', f'--data_dir={data_dir}',
      ],
      capture_output=True, text=True, cwd=PACKAGE_ROOT, check=False,
      env=dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT)),
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return data_dir


def expected_examples(source_dir, split) -> list[tuple[bytes, int]]:
  """Sorted (HWC pixels, 0-based label) of a split, from the fake batches."""
  return sorted(
      (image.tobytes(), label)
      for _, image, label in source_examples(source_dir, SIZE, split)
  )


def assert_same_example(example: dict, image: np.ndarray, label: int) -> None:
  assert example['image'].dtype == np.uint8 and example['image'].shape == (SIZE, SIZE, 3)
  np.testing.assert_array_equal(example['image'], image)
  assert int(example['label']) == label


# ---------------------------------------------------------------------------
# array_record


@pytest.mark.slow
def test_array_record_build_writes_array_record_files(array_record_dir, fake_sources):
  builder = tfds.builder(NAME, data_dir=str(array_record_dir))
  assert builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD
  files = sorted(os.listdir(builder.data_dir))
  assert [f for f in files if '.array_record-' in f] == [
      'imagenet_resized-train.array_record-00000-of-00001',
      'imagenet_resized-validation.array_record-00000-of-00001',
  ]
  assert builder.info.splits['train'].num_examples == 24
  assert builder.info.splits['validation'].num_examples == 10
  del fake_sources


@pytest.mark.slow
@pytest.mark.parametrize('split', common.SPLITS)
def test_random_access_equals_the_sequential_read(
    array_record_dir, tfrecord_builder, fake_sources, split
):
  sequential = read_split(tfrecord_builder, split)
  assert sorted((img.tobytes(), lbl) for img, lbl in sequential) == expected_examples(
      fake_sources, split
  )
  source = tfds.data_source(NAME, split=split, data_dir=str(array_record_dir))
  assert len(source) == len(sequential)
  order = np.random.default_rng(0).permutation(len(source))
  for i in order:  # Random access, example by example.
    assert_same_example(source[int(i)], *sequential[i])
  # Batched random access (what a PyTorch DataLoader asks for), and iteration.
  for example, i in zip(source.__getitems__(order.tolist()), order):
    assert_same_example(example, *sequential[i])
  for example, (image, label) in zip(source, sequential, strict=True):
    assert_same_example(example, image, label)


@pytest.mark.slow
@pytest.mark.skipif(
    '__getstate__' not in vars(tfds.core.DatasetInfo),
    reason="this tensorflow-datasets (4.9.4) cannot pickle any data source:"
    " its DatasetInfo pickles a proto class of a module it cannot import"
    " (DatasetInfo.__getstate__ came in 4.9.5)")
def test_data_source_survives_pickling_for_loader_workers(array_record_dir, tfrecord_builder):
  source = tfds.data_source(NAME, split='validation', data_dir=str(array_record_dir))
  copy = pickle.loads(pickle.dumps(source))
  sequential = read_split(tfrecord_builder, 'validation')
  for i in (9, 0, 4):
    assert_same_example(copy[i], *sequential[i])


@pytest.mark.slow
def test_data_source_slices_follow_tfds_split_syntax(array_record_dir, tfrecord_builder):
  source = tfds.data_source(NAME, split='train[5:9]', data_dir=str(array_record_dir))
  sequential = read_split(tfrecord_builder, 'train')[5:9]
  assert len(source) == 4
  for i, (image, label) in enumerate(sequential):
    assert_same_example(source[i], image, label)


# ---------------------------------------------------------------------------
# TFDS's notebook helpers


@pytest.mark.slow
def test_show_examples_draws_the_examples_with_their_labels(tfrecord_builder):
  ds = tfrecord_builder.as_dataset(split='validation', shuffle_files=False)
  fig = tfds.show_examples(ds, tfrecord_builder.info, rows=2, cols=3)
  assert isinstance(fig, matplotlib.figure.Figure)
  assert len(fig.axes) == 6
  for axes, (image, label) in zip(fig.axes, read_split(tfrecord_builder, 'validation')):
    # TFDS captions each picture with the ClassLabel name: the WNID.
    assert axes.get_xlabel() == f'{labels.WNIDS[label]} ({label})'
    np.testing.assert_array_equal(np.asarray(axes.images[0].get_array()), image)
  matplotlib.pyplot.close(fig)


@pytest.mark.slow
def test_show_examples_takes_a_data_source(array_record_dir, tfrecord_builder):
  source = tfds.data_source(NAME, split='train', data_dir=str(array_record_dir))
  fig = tfds.show_examples(source, tfrecord_builder.info, rows=1, cols=4)
  assert len(fig.axes) == 4
  for axes, (_, label) in zip(fig.axes, read_split(tfrecord_builder, 'train')):
    assert axes.get_xlabel() == f'{labels.WNIDS[label]} ({label})'
  matplotlib.pyplot.close(fig)


@pytest.mark.slow
def test_as_dataframe_holds_images_and_labels(tfrecord_builder):
  ds = tfrecord_builder.as_dataset(split='train', shuffle_files=False)
  df = tfds.as_dataframe(ds.take(7), tfrecord_builder.info)
  assert list(df.columns) == ['image', 'label']
  assert len(df) == 7
  sequential = read_split(tfrecord_builder, 'train')[:7]
  assert [int(label) for label in df['label']] == [label for _, label in sequential]
  for got, (image, _) in zip(df['image'], sequential):
    np.testing.assert_array_equal(got, image)
