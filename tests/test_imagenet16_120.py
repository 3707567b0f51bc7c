"""ImageNet16-120 (`16x16_120`) and other class subsets of the authors' data.

Fake 16x16 sources hold a validation batch of 6,000 rows of classes 1..120
mixed with rows of other classes, so that NAS-Bench-201's x_valid/x_test
positions name real rows. Expectations come from the fake archives read with
plain numpy and from the positions file parsed here on its own.
"""

from __future__ import annotations


import pytest
import tensorflow_datasets as tfds

import imagenet_resized
from conftest import build, read_split, source_examples
from imagenet_resized.tools import fake
import fake_helpers
from imagenet_resized import resources
from imagenet_resized.common import SourceError
from test_bad_input import assert_nothing_built
from test_sources import FORMS

SIZE = 16
CONFIG = '16x16_120'
POSITIONS_FILE = resources.path('nas_bench_201_splits.tsv')


def positions_from_file() -> dict[str, list[int]]:
  """The x_valid / x_test positions, parsed independently of the package."""
  out = {}
  for line in POSITIONS_FILE.read_text().splitlines():
    if line and not line.startswith('#'):
      name, numbers = line.split('\t')
      out[name] = [int(n) for n in numbers.split()]
  return out


def test_positions_are_disjoint_halves_of_the_6000():
  positions = positions_from_file()
  assert sorted(positions) == ['x_test', 'x_valid']
  assert len(positions['x_valid']) == len(positions['x_test']) == 3000
  assert sorted(positions['x_valid'] + positions['x_test']) == list(range(6000))
  from imagenet_resized.authors import imagenet16_120
  assert imagenet16_120.x_split_positions() == {
      name: frozenset(p) for name, p in positions.items()}
  # The file says where the positions come from.
  header = POSITIONS_FILE.read_text()
  assert 'D-X-Y/AutoDL-Projects' in header and 'imagenet-16-120-test-split.txt' in header


@pytest.fixture(scope='module')
def npz_sources(tmp_path_factory):
  root = tmp_path_factory.mktemp('nas')
  fake_helpers.write_imagenet16_120_sources(str(root / 'manual'))
  return root / 'manual'


def expected(manual, split: str) -> list[tuple[int, bytes]]:
  """(label, image bytes) of classes 1..120, in the batches' row order."""
  return [
      (label, image.tobytes())
      for _, image, label in source_examples(manual, SIZE, split) if label < 120
  ]


def as_pairs(examples) -> list[tuple[int, bytes]]:
  return [(label, image.tobytes()) for image, label in examples]


@pytest.fixture(scope='module')
def built(npz_sources, tmp_path_factory):
  return build(CONFIG, npz_sources, tmp_path_factory.mktemp('data'))


@pytest.mark.slow
def test_train_and_validation_hold_the_first_120_classes(built, npz_sources):
  for split in ('train', 'validation'):
    got = as_pairs(read_split(built, split))
    assert sorted(got) == sorted(expected(npz_sources, split))
  assert built.info.splits['validation'].num_examples == 6000
  label = built.info.features['label']
  assert label.num_classes == 120 and label.names == list(resources.wnids()[:120])


@pytest.mark.slow
def test_x_valid_and_x_test_hold_the_rows_their_positions_name(built, npz_sources):
  validation = expected(npz_sources, 'validation')  # In val_data's row order.
  assert len(validation) == 6000
  for split, positions in positions_from_file().items():
    got = as_pairs(read_split(built, split))
    assert sorted(got) == sorted(validation[p] for p in positions), split
    assert built.info.splits[split].num_examples == 3000


@pytest.mark.slow
def test_same_relative_order_as_16x16(built, npz_sources, tmp_path):
  """Keys as in 16x16: the subset comes in 16x16's order."""
  full = build('16x16', npz_sources, tmp_path)
  for split in ('train', 'validation'):
    want = [p for p in as_pairs(read_split(full, split)) if p[0] < 120]
    assert as_pairs(read_split(built, split)) == want


@pytest.mark.slow
@pytest.mark.parametrize('form', ['pickle zips', 'npz files', 'pickle files'])
def test_every_source_form_builds_the_same(form, built, tmp_path):
  writer_format = FORMS[form][1]
  manual = tmp_path / 'manual'
  fake_helpers.write_imagenet16_120_sources(
      str(manual), fmt=writer_format, zipped=form.endswith('zips'))
  other = build(CONFIG, manual, tmp_path / 'data')
  assert other.info.metadata['sources']['train']['form'] == FORMS[form][2]['train']
  # Other forms key their examples by other member names (so in another
  # order); the examples of every split are the same.
  for split in ('train', 'validation', 'x_valid', 'x_test'):
    assert sorted(as_pairs(read_split(other, split))) == sorted(
        as_pairs(read_split(built, split)))


@pytest.mark.slow
def test_a_validation_split_without_6000_rows_is_refused(tmp_path, dummy_data):
  with pytest.raises(SourceError) as e:
    build(CONFIG, dummy_data, tmp_path / 'data')
  assert str(e.value) == (
      f'{dummy_data}/Imagenet16_val_npz.zip:val_data.npz: holds'
      f' {sum(1 for _ in expected(dummy_data, "validation"))} validation rows of'
      ' classes 1..120; expected 6,000, the images NAS-Bench-201\'s x_valid and'
      ' x_test positions index (build 16x16 for the whole data)'
  )
  assert_nothing_built(CONFIG, tmp_path / 'data')


def test_published_sources_must_give_the_published_counts():
  from imagenet_resized.authors import imagenet16_120
  imagenet16_120.check_published_counts('train', 151_700, where='/m/a')
  with pytest.raises(SourceError) as e:
    imagenet16_120.check_published_counts('validation', 5_999, where='/m/v')
  assert str(e.value) == (
      '/m/v: the published validation split holds 5,999 examples of classes'
      ' 1..120; expected 6,000'
  )


@pytest.mark.slow
def test_other_class_subsets_by_argument(tmp_path):
  manual = tmp_path / 'manual'
  fake.write_sources(str(manual), 32, train_batches=2, examples_per_batch=40,
                     val_examples=40)
  config = imagenet_resized.ImagenetResizedConfig(size=32, num_classes=500)
  assert config.name == '32x32_500'
  builder = tfds.builder('imagenet_resized', config=config, data_dir=str(tmp_path / 'data'))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  assert list(builder.info.splits) == ['train', 'validation']
  assert builder.info.features['label'].num_classes == 500
  for split in ('train', 'validation'):
    want = [(label, image.tobytes()) for _, image, label in source_examples(manual, 32, split)
            if label < 500]
    assert sorted(as_pairs(read_split(builder, split))) == sorted(want)


@pytest.mark.slow
def test_beam_builds_the_same_splits(built, npz_sources, tmp_path):
  on_beam = build(CONFIG, npz_sources, tmp_path, beam_runner='DirectRunner')
  for split in ('train', 'validation', 'x_valid', 'x_test'):
    assert as_pairs(read_split(on_beam, split)) == as_pairs(read_split(built, split))
