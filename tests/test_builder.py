"""The builder end to end: TFDS's test case, pixels, labels, metadata, sources."""

import socket

import numpy as np
import pytest
import tensorflow_datasets as tfds

import imagenet_resized
from imagenet_resized.tools import fake
from imagenet_resized import resources
from imagenet_resized.authors import publication
from imagenet_resized import common
from imagenet_resized.common import SourceError

from conftest import DUMMY_DATA, build, read_split
from conftest import source_examples as read_sources

NUM_TRAIN = fake.DUMMY_TRAIN_BATCHES * fake.DUMMY_EXAMPLES_PER_BATCH
NUM_VAL = fake.DUMMY_VAL_EXAMPLES


# ---------------------------------------------------------------------------
# TFDS's own test case, one class per config: download (mocked to return the
# dummy archives) -> generate -> write -> read, plus registration, info, tags
# and the checksums of every URL the builder asks for.


def _builder_test_case(size: int):
  @pytest.mark.slow  # Its download_and_prepare test builds the dataset.
  class _Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = imagenet_resized.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = [f'{size}x{size}']
    SPLITS = {'train': NUM_TRAIN, 'validation': NUM_VAL}
    DL_DOWNLOAD_RESULT = publication.download_names(size)
    EXAMPLE_DIR = str(DUMMY_DATA)

  _Test.__name__ = _Test.__qualname__ = f'BuilderTest{size}'
  return _Test


BuilderTest8 = _builder_test_case(8)
BuilderTest16 = _builder_test_case(16)
BuilderTest32 = _builder_test_case(32)
BuilderTest64 = _builder_test_case(64)
del _builder_test_case


# ---------------------------------------------------------------------------
# Decoded pixels and labels against the sources, read independently.


def source_examples(size: int):
  """{(split, key): (HWC image, 0-based label)} of the dummy zips."""
  return {
      (split, key): (image, label)
      for split in common.SPLITS
      for key, image, label in read_sources(DUMMY_DATA, size, split)
  }


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  """32x32 and 64x64 built from dummy_data through manual_dir."""
  data_dir = tmp_path_factory.mktemp('data')
  return {size: build(f'{size}x{size}', DUMMY_DATA, data_dir) for size in (32, 64)}


def _sorted(examples):
  return sorted(examples, key=lambda e: (e[1], e[0].tobytes()))


@pytest.mark.slow
@pytest.mark.parametrize('size', [32, 64])
def test_decoded_pixels_and_labels_equal_sources(built, size):
  expected = source_examples(size)
  for split in common.SPLITS:
    got = read_split(built[size], split)
    want = [v for (s, _), v in expected.items() if s == split]
    assert len(got) == len(want)
    for (g_img, g_lab), (w_img, w_lab) in zip(_sorted(got), _sorted(want)):
      assert g_img.dtype == np.uint8 and g_img.shape == (size, size, 3)
      np.testing.assert_array_equal(g_img, w_img)
      assert g_lab == w_lab


@pytest.mark.slow
@pytest.mark.parametrize('size', [32, 64])
def test_orientation_and_channels(built, size):
  """fake.py marks every image: (0,0) blue, along x red, along y green."""
  for image, _ in read_split(built[size], 'train'):
    assert tuple(image[0, 0]) == (0, 0, 255)
    assert tuple(image[0, 1]) == (255, 0, 0)
    assert tuple(image[1, 0]) == (0, 255, 0)


@pytest.mark.slow
def test_labels_are_shifted_to_zero_based(built):
  labels = {lab for _, lab in read_split(built[32], 'train')}
  # fake.py gives each batch a label 1 and a label 1000.
  assert 0 in labels and 999 in labels
  assert all(0 <= lab < 1000 for lab in labels)


@pytest.mark.slow
def test_64x64_train_reads_both_parts(built):
  keys = {k for (s, k) in source_examples(64) if s == 'train'}
  assert any(k.startswith('Imagenet64_train_part1') for k in keys)
  assert any(k.startswith('Imagenet64_train_part2') for k in keys)
  assert built[64].info.splits['train'].num_examples == len(keys)


@pytest.mark.slow
def test_metadata_records_the_sources(built):
  meta = built[64].info.metadata['sources']
  assert meta['train'] == {
      'form': 'npz zip',
      'files': ['Imagenet64_train_part1_npz.zip', 'Imagenet64_train_part2_npz.zip'],
  }
  assert meta['validation']['files'] == ['Imagenet64_val_npz.zip']


@pytest.mark.slow
def test_tfds_load_as_supervised(built):
  ds = tfds.load(
      'imagenet_resized/32x32', split='validation', as_supervised=True,
      data_dir=built[32].data_dir.split('/imagenet_resized/')[0], download=False,
  )
  images, labels = zip(*tfds.as_numpy(ds))
  assert len(images) == NUM_VAL and images[0].shape == (32, 32, 3)
  want = sorted(lab for (s, _), (_, lab) in source_examples(32).items() if s == 'validation')
  assert sorted(int(x) for x in labels) == want


# ---------------------------------------------------------------------------
# Registration, configs and metadata.


def test_registration_and_configs():
  assert tfds.builder_cls('imagenet_resized') is imagenet_resized.Builder
  assert imagenet_resized.Builder.DEFAULT_CONFIG_NAME == '8x8'
  assert [c.name for c in imagenet_resized.Builder.BUILDER_CONFIGS][:4] == [
      '8x8', '16x16', '32x32', '64x64']
  b = tfds.builder('imagenet_resized/64x64')
  assert isinstance(b, imagenet_resized.Builder)
  assert b.builder_config.size == 64 and str(b.version) == '0.1.0'
  assert isinstance(b.builder_config, imagenet_resized.ImagenetResizedConfig)
  assert tfds.builder('imagenet_resized').builder_config.name == '8x8'


def test_info():
  info = tfds.builder('imagenet_resized/16x16').info
  image, label = info.features['image'], info.features['label']
  assert image.shape == (16, 16, 3) and image.dtype == np.uint8
  assert image.encoding_format == 'png'
  assert label.num_classes == 1000
  assert label.names == list(resources.wnids())
  assert label.names[:3] == ['n02119789', 'n02100735', 'n02110185']
  assert info.supervised_keys == ('image', 'label')
  assert info.homepage == 'https://patrykchrabaszcz.github.io/Imagenet32/'
  assert 'chrabaszcz2017downsampled' in info.citation
  assert 'not the sorted-WordNet-ID order' in ' '.join(info.description.split())


def test_labels_txt_matches_tfds_copy():
  tfds_copy = tfds.core.tfds_path('image_classification/imagenet_resized_labels.txt')
  assert list(resources.wnids()) == tfds_copy.read_text().split()


# The nine npz zips the authors published, by size, with their bytes and
# SHA-256 (the published facts, written out here rather than taken from the
# package's own list).
PUBLISHED_ZIPS = {
    8: {
        'Imagenet8_train_npz.zip': (
            239296243,
            'b18b72ca559afee05ad3325d12222db345fc2c557f23129d47fa439bddb4ee69'),
        'Imagenet8_val_npz.zip': (
            9327124,
            '001df303a5524b85045a4f6f43c79e097497cd64847cdcf5f17dd0fa416a2c23'),
    },
    16: {
        'Imagenet16_train_npz.zip': (
            931837742,
            'dea57cdc1d4e252a9e4b76d3b0783486c13b572b883b25fae9283f19695e63b9'),
        'Imagenet16_val_npz.zip': (
            36354395,
            '6dda90de8f6fd43b204422578b4be05d3f658d7792b344de4da768a71c02c4c4'),
    },
    32: {
        'Imagenet32_train_npz.zip': (
            3580435279,
            '94226337ecc1b0309d9fcd0167127aaadc931587035fbcb53925235edbaec4fc'),
        'Imagenet32_val_npz.zip': (
            139697668,
            '013990e6dec1237dcd1f9beadbab81ead6604cc119af5cacbfb59ae28148377a'),
    },
    64: {
        'Imagenet64_train_part1_npz.zip': (
            6783426789,
            '9422dc1dc5d092e9814a70a1cb7fc74880d2db5d88a0cb8a34ee363b12bde3f1'),
        'Imagenet64_train_part2_npz.zip': (
            6780506068,
            '9fafc115afb7e6c301e66dc16b2d737152b427bd5dab26e1293487a6819c7f30'),
        'Imagenet64_val_npz.zip': (
            529522927,
            'e1e75133158a1924135a9c6f97a80d2d237b158945e0b34074e58e6c8430eeb8'),
    },
}


def test_checksums_register_the_nine_published_archives():
  records = {r.filename: r for r in resources.checksums()}
  want = {n: fact for zips in PUBLISHED_ZIPS.values() for n, fact in zips.items()}
  assert {n: (r.size, r.sha256) for n, r in records.items()} == want
  for name, r in records.items():
    assert r.url == 'http://www.image-net.org/data/downsample/' + name
  # TFDS reads them from the builder's folder for download verification.
  urls = imagenet_resized.Builder.url_infos
  assert set(urls) == {r.url for r in records.values()}


def test_manual_instructions_name_every_archive():
  text = imagenet_resized.Builder.MANUAL_DOWNLOAD_INSTRUCTIONS
  for size, zips in PUBLISHED_ZIPS.items():
    (line,) = [x for x in text.splitlines() if x.strip().startswith(f'{size}x{size}:')]
    assert sorted(n.strip() for n in line.split(':', 1)[1].split(',')) == sorted(zips)
  assert 'manual_dir' in text


# ---------------------------------------------------------------------------
# Manual placement with no network, and the error when nothing is found.


@pytest.fixture
def no_network(monkeypatch):
  def refuse(*args, **kwargs):
    raise OSError('network is unreachable (test)')
  monkeypatch.setattr(socket.socket, 'connect', refuse)
  monkeypatch.setattr(socket, 'create_connection', refuse)
  monkeypatch.setattr(socket, 'getaddrinfo', refuse)


@pytest.mark.slow
def test_manual_dir_builds_with_network_unreachable(tmp_path, no_network, monkeypatch):
  def no_download(*args, **kwargs):
    raise AssertionError('must not download when manual_dir has the archives')
  monkeypatch.setattr(tfds.download.DownloadManager, 'download', no_download)
  b = build('16x16', DUMMY_DATA, tmp_path)
  assert b.info.splits['train'].num_examples == NUM_TRAIN
  assert b.info.splits['validation'].num_examples == NUM_VAL


@pytest.mark.slow
def test_nothing_found_names_files_and_folder(tmp_path, no_network, monkeypatch):
  def fail(*args, **kwargs):
    raise ConnectionError('Failed to connect (test)')
  monkeypatch.setattr(tfds.download.DownloadManager, 'download', fail)
  manual = tmp_path / 'manual'
  manual.mkdir()
  with pytest.raises(SourceError) as e:
    build('64x64', manual, tmp_path / 'data')
  msg = str(e.value)
  assert '\n' not in msg
  for name in PUBLISHED_ZIPS[64]:
    assert name in msg
  assert str(manual) in msg
  assert not tfds.builder('imagenet_resized/64x64', data_dir=str(tmp_path / 'data')).is_prepared()
