"""Per-channel pixel statistics of the prepared splits, against numpy.

Expected values are numpy's mean and (population, ddof=0) std over the
split as TFDS decodes it (`as_dataset`, TensorFlow's PNG decoder), never
from the package's own sums.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

import imagenet_resized
from conftest import build, read_split
from imagenet_resized.tools import fake
import fake_helpers
from imagenet_resized.pipeline import pixel_statistics


def numpy_statistics(examples) -> dict[str, list[float]]:
  pixels = np.stack([image for image, _ in examples]).reshape(-1, 3).astype(np.float64)
  return {'mean': list(pixels.mean(axis=0)), 'std': list(pixels.std(axis=0))}


def assert_statistics(builder, split: str) -> None:
  got = builder.info.metadata['statistics'][split]
  want = numpy_statistics(read_split(builder, split))
  np.testing.assert_allclose(got['mean'], want['mean'], rtol=1e-12)
  np.testing.assert_allclose(got['std'], want['std'], rtol=1e-9)


def test_sums_are_exact_and_add_up():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (37, 5, 7, 3), dtype=np.uint8)
  whole = pixel_statistics.PixelSums.of_images(images)
  parts = pixel_statistics.total(
      pixel_statistics.PixelSums.of_images(images[i : i + 10]) for i in range(0, 37, 10)
  )
  assert whole == parts
  flat = images.reshape(-1, 3).astype(np.int64)
  assert whole.pixels == 37 * 5 * 7
  assert list(whole.sums) == flat.sum(axis=0).tolist()
  assert list(whole.squares) == (flat * flat).sum(axis=0).tolist()
  np.testing.assert_allclose(whole.std(), flat.std(axis=0), rtol=1e-12)
  # Constant images: no cancellation error, std exactly 0.
  constant = pixel_statistics.PixelSums.of_images(np.full((3, 4, 4, 3), 255, np.uint8))
  assert constant.std() == [0.0, 0.0, 0.0] and constant.mean() == [255.0] * 3
  # More rows than one uint32 block holds exactly (2**16 rows of 255**2).
  bright = np.full((1100, 64, 64, 3), 255, np.uint8)
  bright[0, 0, 0] = (0, 1, 2)
  sums = pixel_statistics.PixelSums.of_images(bright)
  flat = bright.reshape(-1, 3).astype(np.int64)
  assert list(sums.sums) == flat.sum(axis=0).tolist()
  assert list(sums.squares) == (flat * flat).sum(axis=0).tolist()


@pytest.mark.slow
@pytest.mark.parametrize('beam', [False, True], ids=['generator', 'beam'])
def test_build_stores_the_statistics_of_every_split(tmp_path, beam):
  manual = tmp_path / 'manual'
  fake.write_sources(str(manual), 8, train_batches=2, examples_per_batch=150,
                     val_examples=60)
  extra = {'beam_runner': 'DirectRunner'} if beam else {}
  builder = build('8x8', manual, tmp_path / 'data', **extra)
  for split in ('train', 'validation'):
    assert_statistics(builder, split)
  # Stored in the prepared dataset, read back by a fresh builder.
  with open(os.path.join(builder.data_dir, 'metadata.json')) as f:
    saved = json.load(f)
  assert sorted(saved['statistics']) == ['train', 'validation']
  fresh = tfds.builder('imagenet_resized/8x8', data_dir=str(tmp_path / 'data'))
  assert fresh.info.metadata['statistics'] == saved['statistics']
  # Nothing of the Beam path's pending files is left in the dataset.
  assert not any('pending' in name for name in os.listdir(builder.data_dir))


@pytest.mark.slow
def test_class_subsets_have_the_statistics_of_their_own_splits(tmp_path):
  manual = tmp_path / 'manual'
  fake_helpers.write_imagenet16_120_sources(str(manual), examples_per_batch=200,
                                    other_val_examples=50)
  builder = build('16x16_120', manual, tmp_path / 'data')
  for split in ('train', 'validation', 'x_valid', 'x_test'):
    assert_statistics(builder, split)
  full = build('16x16', manual, tmp_path / 'full')
  assert (full.info.metadata['statistics']['train']
          != builder.info.metadata['statistics']['train'])


@pytest.mark.slow
@pytest.mark.parametrize('beam', [False, True], ids=['generator', 'beam'])
def test_ilsvrc_builds_store_statistics(tmp_path, beam):
  from test_ilsvrc import TinyImagenet
  manual = TinyImagenet().write_tarballs(str(tmp_path / 'manual'))
  builder = tfds.builder(
      'imagenet_resized',
      config=imagenet_resized.ImagenetResizedConfig(size=16, source='ilsvrc2012'),
      data_dir=str(tmp_path / 'data'),
  )
  extra = {'beam_runner': 'DirectRunner'} if beam else {}
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual, **extra))
  for split in ('train', 'validation'):
    assert_statistics(builder, split)
