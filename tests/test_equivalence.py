"""Same archives, TFDS's own builder and ours: same examples, same order."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

import imagenet_resized
from conftest import DUMMY_DATA, build, read_split

# Every test here builds a dataset or runs processes.
pytestmark = pytest.mark.slow


def tfds_own_builder_class():
  """TFDS's imagenet_resized builder, imported without clashing with ours."""
  with tfds.core.registered.skip_registration():
    from tensorflow_datasets.datasets.imagenet_resized import (
        imagenet_resized_dataset_builder as theirs,
    )
  return theirs.Builder


def build_with_tfds_builder(config: str, manual_dir, data_dir, monkeypatch):
  """Runs TFDS's builder with its download pointed at local files."""
  def local_download(self, url_or_urls):
    del self
    return [os.path.join(manual_dir, u.rsplit('/', 1)[-1]) for u in url_or_urls]

  monkeypatch.setattr(tfds.download.DownloadManager, 'download', local_download)
  builder = tfds_own_builder_class()(config=config, data_dir=str(data_dir))
  builder.download_and_prepare()
  monkeypatch.undo()
  return builder


@pytest.mark.parametrize('config', ['8x8', '64x64'])
def test_same_examples_in_same_order_as_tfds_builder(config, tmp_path, monkeypatch):
  theirs = build_with_tfds_builder(config, DUMMY_DATA, tmp_path / 'theirs', monkeypatch)
  ours = build(config, DUMMY_DATA, tmp_path / 'ours')
  assert type(theirs).__module__.startswith('tensorflow_datasets.')
  # The name means ours (on tensorflow-datasets 4.9.4 it once found TFDS's).
  assert type(ours) is imagenet_resized.Builder
  for split in ('train', 'validation'):
    a, b = read_split(theirs, split), read_split(ours, split)
    assert len(a) == len(b) == theirs.info.splits[split].num_examples
    for (img_a, lab_a), (img_b, lab_b) in zip(a, b):
      np.testing.assert_array_equal(img_a, img_b)
      assert lab_a == lab_b
