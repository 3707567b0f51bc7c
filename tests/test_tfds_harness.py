"""TFDS's own dataset test, written exactly as a user writes it.

`tfds.testing.DatasetBuilderTestCase` mocks the DownloadManager (its
`download`, `download_and_extract`, `manual_dir`) to serve files from
EXAMPLE_DIR, then downloads, prepares, reads and reloads each config. Nothing
of imagenet_resized is patched here: the builder must not escape the mocked
download manager (no reachability probe to the real site) and must take its
sources from what the harness serves. Offline, both forms a user writes
(DL_EXTRACT_RESULT, TFDS's own test's form, and DL_DOWNLOAD_RESULT), for
every registered config.

EXAMPLE_DIR: the shipped dummy_data for the authors' sizes; folders made once
per session, when their first test class starts (not when the tests are
collected), for ImageNet16-120 (its validation split must hold the 6,000
rows of classes 1..120) and for the ILSVRC2012 configs (tarballs of a tiny
ImageNet, as tests/test_ilsvrc.py writes them).
"""

import functools
import io
import tempfile
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

import imagenet_resized
from imagenet_resized.tools import fake
import fake_helpers

from conftest import DUMMY_DATA
from test_ilsvrc import NUM_CLASSES, VAL_PER_CLASS, TinyImagenet

pytestmark = pytest.mark.slow

_EXAMPLES = tempfile.TemporaryDirectory(prefix='imagenet_resized-harness-')


@functools.cache
def nas_examples() -> tuple[str, dict[str, int]]:
  """(EXAMPLE_DIR, SPLITS) of ImageNet16-120, written on first use."""
  folder = f'{_EXAMPLES.name}/imagenet16_120'
  fake_helpers.write_imagenet16_120_sources(folder)
  train = int((_labels(f'{folder}/Imagenet16_train_npz.zip') <= 120).sum())
  return folder, {
      'train': train, 'validation': 6000, 'x_valid': 3000, 'x_test': 3000}


@functools.cache
def ilsvrc_examples() -> tuple[str, dict[str, int]]:
  """(EXAMPLE_DIR, SPLITS) of a tiny ILSVRC2012, written on first use."""
  folder = f'{_EXAMPLES.name}/ilsvrc2012'
  tiny = TinyImagenet()
  tiny.write_tarballs(folder)
  return folder, {
      'train': sum(len(files) for files in tiny.train.values()),
      'validation': NUM_CLASSES * VAL_PER_CLASS,
  }


class _ExamplesOnFirstUse:
  """Sets EXAMPLE_DIR and SPLITS from `examples()` when the class starts."""

  examples = None

  @classmethod
  def setUpClass(cls):
    cls.EXAMPLE_DIR, cls.SPLITS = cls.examples()
    super().setUpClass()


def _labels(path: str) -> np.ndarray:
  """Every label in a zip of npz batches, read with zipfile and numpy."""
  with zipfile.ZipFile(path) as z:
    return np.concatenate([
        np.load(io.BytesIO(z.read(name)))['labels']
        for name in z.namelist() if name.endswith('.npz')
    ])


AUTHORS_CONFIGS = ['8x8', '16x16', '32x32', '64x64']
AUTHORS_SPLITS = {
    'train': fake.DUMMY_TRAIN_BATCHES * fake.DUMMY_EXAMPLES_PER_BATCH,
    'validation': fake.DUMMY_VAL_EXAMPLES,
}
NAS_CONFIGS = ['16x16_120']
ILSVRC_CONFIGS = [f'{s}x{s}_ilsvrc2012' for s in (8, 16, 32, 64)]


class Authors8x8Test(tfds.testing.DatasetBuilderTestCase):
  """As TFDS's own imagenet_resized test, but for this package's builder."""
  DATASET_CLASS = imagenet_resized.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = AUTHORS_CONFIGS
  SPLITS = AUTHORS_SPLITS
  EXAMPLE_DIR = str(DUMMY_DATA)
  DL_EXTRACT_RESULT = ['Imagenet8_train_npz.zip', 'Imagenet8_val_npz.zip']


class AuthorsDownloadResultTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = imagenet_resized.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = AUTHORS_CONFIGS
  SPLITS = AUTHORS_SPLITS
  EXAMPLE_DIR = str(DUMMY_DATA)
  DL_DOWNLOAD_RESULT = ['Imagenet8_train_npz.zip', 'Imagenet8_val_npz.zip']


class Imagenet16120Test(_ExamplesOnFirstUse, tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = imagenet_resized.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = NAS_CONFIGS
  examples = staticmethod(nas_examples)
  # NAS-Bench-201's x_valid and x_test are halves of the validation split.
  OVERLAPPING_SPLITS = ['validation', 'x_valid', 'x_test']
  DL_EXTRACT_RESULT = ['Imagenet16_train_npz.zip', 'Imagenet16_val_npz.zip']


class Imagenet16120DownloadResultTest(
    _ExamplesOnFirstUse, tfds.testing.DatasetBuilderTestCase
):
  DATASET_CLASS = imagenet_resized.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = NAS_CONFIGS
  examples = staticmethod(nas_examples)
  # NAS-Bench-201's x_valid and x_test are halves of the validation split.
  OVERLAPPING_SPLITS = ['validation', 'x_valid', 'x_test']
  DL_DOWNLOAD_RESULT = ['Imagenet16_train_npz.zip', 'Imagenet16_val_npz.zip']


class IlsvrcTest(_ExamplesOnFirstUse, tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = imagenet_resized.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ILSVRC_CONFIGS
  examples = staticmethod(ilsvrc_examples)
  DL_EXTRACT_RESULT = ['ILSVRC2012_img_train.tar', 'ILSVRC2012_img_val.tar']


class IlsvrcDownloadResultTest(
    _ExamplesOnFirstUse, tfds.testing.DatasetBuilderTestCase
):
  DATASET_CLASS = imagenet_resized.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ILSVRC_CONFIGS
  examples = staticmethod(ilsvrc_examples)
  DL_DOWNLOAD_RESULT = ['ILSVRC2012_img_train.tar', 'ILSVRC2012_img_val.tar']


def test_every_registered_config_is_tested():
  tested = AUTHORS_CONFIGS + NAS_CONFIGS + ILSVRC_CONFIGS
  registered = [c.name for c in imagenet_resized.Builder.BUILDER_CONFIGS]
  assert sorted(tested) == sorted(registered)
