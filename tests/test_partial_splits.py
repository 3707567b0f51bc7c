"""No silent partial splits: a missing batch stops the build, in every form.

Train batches must be numbered 1..N without a gap; a batch of the published
size means the split must be the whole published split.
"""

import os
import zipfile

import numpy as np
import pytest

from conftest import build
from imagenet_resized.tools import fake
import fake_helpers
from imagenet_resized.authors import batch_files, completeness, publication
from imagenet_resized.common import SourceError
from test_bad_input import assert_nothing_built

# Every test here builds a dataset or runs processes.
pytestmark = pytest.mark.slow

LAYOUT = dict(train_batches=3, examples_per_batch=3, val_examples=3)


def drop_member(zip_path: str, basename: str) -> None:
  """Rewrites a zip without the member named `basename`."""
  with zipfile.ZipFile(zip_path) as zf:
    kept = [(n, zf.read(n)) for n in zf.namelist() if os.path.basename(n) != basename]
  fake.write_zip(zip_path, kept)


def _zips(manual, size, fmt):
  fake.write_sources(str(manual), size, fmt=fmt, **LAYOUT)
  train = publication.archive_names(size, 'train', npz=fmt == 'npz')
  ext = '.npz' if fmt == 'npz' else ''
  # 64x64: batches 1 and 2 in part1, 3 in part2; batch 2 goes missing.
  drop_member(str(manual / train[0]), f'train_data_batch_2{ext}')
  return ' and '.join(str(manual / name) for name in train), ext


def _files(manual, size, fmt):
  fake.write_sources(str(manual), size, fmt=fmt, zipped=False, **LAYOUT)
  ext = '.npz' if fmt == 'npz' else ''
  folder = publication.archive_names(size, 'train', npz=fmt == 'npz')[0].removesuffix('.zip')
  os.remove(manual / folder / f'train_data_batch_2{ext}')
  return str(manual), ext


@pytest.mark.parametrize('size, fmt, zipped', [
    (8, 'npz', True), (8, 'pickle', True), (8, 'npz', False), (8, 'pickle', False),
    (64, 'npz', True), (64, 'pickle', True),
])
def test_a_gap_in_the_train_batches_stops_the_build(size, fmt, zipped, tmp_path):
  manual = tmp_path / 'manual'
  looked_in, ext = (_zips if zipped else _files)(manual, size, fmt)
  with pytest.raises(SourceError) as e:
    build(f'{size}x{size}', manual, tmp_path / 'data')
  assert str(e.value) == (
      f'{looked_in}: no train_data_batch_2{ext} (found train_data_batch_1{ext},'
      f' train_data_batch_3{ext}); expected train batches numbered 1..3 without'
      ' a gap (the published train split has 10)'
  )
  assert_nothing_built(f'{size}x{size}', tmp_path / 'data')


def test_a_batch_twice_in_an_archive_stops_the_build(tmp_path):
  manual = tmp_path / 'manual'
  fake.write_sources(str(manual), 8, **LAYOUT)
  path = manual / 'Imagenet8_train_npz.zip'
  with zipfile.ZipFile(path) as zf:
    members = [(n, zf.read(n)) for n in zf.namelist()]
  members.append(('copy/train_data_batch_1.npz', members[0][1]))
  fake.write_zip(str(path), members)
  with pytest.raises(SourceError) as e:
    build('8x8', manual, tmp_path / 'data')
  assert str(e.value) == (
      f'{path}: train_data_batch_1 appears 2 times'
      f' ({path}:Imagenet8_train_npz/train_data_batch_1.npz,'
      f' {path}:copy/train_data_batch_1.npz); expected each batch once'
  )


def published_sized_batch(name: str, size: int = 8) -> dict:
  """A batch with as many rows as the published batch `name` (cheap content)."""
  rows = publication.PUBLISHED_BATCH_ROWS[name]
  rng = np.random.default_rng(0)
  return {
      'data': rng.integers(0, 256, (rows, 3 * size * size), dtype=np.uint8),
      'labels': rng.integers(1, 1001, rows),
  }


@pytest.mark.parametrize('fmt', ['npz', 'pickle'])
def test_a_published_batch_needs_the_whole_published_split(fmt, tmp_path):
  """Real batches (by their row counts) with others missing: not a subset."""
  manual = tmp_path / 'manual'
  fake.write_sources(str(manual), 8, fmt=fmt, zipped=False, train_batches=2,
                     examples_per_batch=3, val_examples=3)
  ext = '.npz' if fmt == 'npz' else ''
  where = fake_helpers.replace_batch(
      str(manual), 8, fmt, False, 'train_data_batch_1',
      fake.batch_bytes(published_sized_batch('train_data_batch_1'), fmt),
  )
  with pytest.raises(SourceError) as e:
    build('8x8', manual, tmp_path / 'data')
  assert str(e.value) == (
      f'{where}: holds 128,116 rows, as the published train_data_batch_1 does,'
      ' but the train split has no train_data_batch_3, train_data_batch_4,'
      ' train_data_batch_5, train_data_batch_6, train_data_batch_7,'
      ' train_data_batch_8, train_data_batch_9, train_data_batch_10; expected'
      ' the whole published split (1,281,167 examples)'
  )
  assert ext in where
  assert_nothing_built('8x8', tmp_path / 'data')


def _source(split: str, names) -> batch_files.SplitBatches:
  batches = tuple(batch_files.Batch('/m', None, f'{n}.npz', True) for n in names)
  return batch_files.SplitBatches(split, 'npz files', ('/m/a', '/m/b'), batches)


def test_published_batches_must_add_up_to_the_published_split():
  names = publication.published_batch_names('train')
  rows = dict(publication.PUBLISHED_BATCH_ROWS)
  del rows['val_data']
  completeness.check_split_rows(_source('train', names), rows)  # The real split.
  rows['train_data_batch_7'] = 1000  # One batch cut short.
  with pytest.raises(SourceError) as e:
    completeness.check_split_rows(_source('train', names), rows)
  assert str(e.value) == (
      '/m/a, /m/b: the train split holds 1,154,051 examples, though'
      ' train_data_batch_1 is of the published size; expected the published'
      ' 1,281,167 (train_data_batch_7 holds 1,000 rows, the published one'
      ' 128,116)'
  )


def test_subsets_numbered_without_a_gap_still_build(tmp_path):
  manual = tmp_path / 'manual'
  fake.write_sources(str(manual), 8, fmt='pickle', zipped=False, train_batches=2,
                     examples_per_batch=2, val_examples=2)
  builder = build('8x8', manual, tmp_path / 'data')
  assert builder.info.splits['train'].num_examples == 4
  assert builder.info.splits['validation'].num_examples == 2


def test_published_rows_add_up_to_the_split_sizes():
  rows = publication.PUBLISHED_BATCH_ROWS
  assert sum(rows[n] for n in publication.published_batch_names('train')) == 1_281_167
  assert rows['val_data'] == 50_000
