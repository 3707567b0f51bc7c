"""Every published source form builds exactly the same examples.

Forms: the npz zips, the authors' pickle zips, their extracted batch files
(npz or pickle) at any folder depth, and mixtures. Expectations come from the
batches `imagenet_resized.tools.fake` writes, read back with plain numpy.
"""

import logging
import os
import shutil
import zipfile

import numpy as np
import pytest

from conftest import build, read_split, source_examples
from imagenet_resized.tools import fake
import fake_helpers
from imagenet_resized.authors import discovery, publication
from imagenet_resized import common

SIZE = 8
CONFIG = f'{SIZE}x{SIZE}'
LAYOUT = dict(train_batches=3, examples_per_batch=5, val_examples=4, seed=11)


def write(manual_dir, fmt: str, zipped: bool, size: int = SIZE, **layout):
  return fake.write_sources(
      str(manual_dir), size, fmt=fmt, zipped=zipped, **{**LAYOUT, **layout}
  )


def expected_examples(folder, size: int = SIZE, **layout) -> dict[str, list]:
  """Per split, the sorted (label, HWC image bytes) the fake batches hold.

  Written to `folder` as npz zips and read back with plain numpy, not with the
  reader under test.
  """
  out = {}
  write(folder, 'npz', zipped=True, size=size, **layout)
  for split in common.SPLITS:
    out[split] = sorted(
        (label, image.tobytes())
        for _, image, label in source_examples(folder, size, split)
    )
  return out


def decoded(builder, split: str) -> list:
  """(label, image bytes) of a built split, in file order."""
  return [(label, image.tobytes()) for image, label in read_split(builder, split)]


def extract_in_place(zip_path: str, into: str) -> None:
  """Extracts an archive under `into` keeping member paths (test data only)."""
  with zipfile.ZipFile(zip_path) as zf:
    zf.extractall(into)


def _nested(manual, fmt):
  """Extracted files moved a few folders deeper, train and val apart."""
  write(manual / 'staging', fmt, zipped=False)
  shutil.move(manual / 'staging', manual / 'a' / 'b' / 'c')
  for val in (manual / 'a' / 'b' / 'c').glob('Imagenet8_val*'):
    shutil.move(val, manual / 'a' / val.name)


def _zips_in_folders(manual, fmt):
  for path in write(manual / 'staging', fmt, zipped=True):
    dest = manual / 'downloads' / ('deep' if 'train' in path else '') / os.path.basename(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, dest)
  shutil.rmtree(manual / 'staging')


def _mixed(manual, fmt):
  """Train from npz zips, validation from extracted pickle files."""
  del fmt
  train_zip = write(manual / 'staging', 'npz', zipped=True)[0]
  shutil.move(train_zip, manual)
  write(manual / 'pickles', 'pickle', zipped=False)
  shutil.rmtree(manual / 'staging')
  shutil.rmtree(manual / 'pickles' / 'Imagenet8_train')


def _zipped(manual, fmt):
  write(manual, fmt, zipped=True)


def _extracted(manual, fmt):
  write(manual, fmt, zipped=False)


# name -> (writer, {split: form the build must report}).
FORMS = {
    'npz zips': (_zipped, 'npz', {'train': 'npz zip', 'validation': 'npz zip'}),
    'pickle zips': (_zipped, 'pickle', {'train': 'pickle zip', 'validation': 'pickle zip'}),
    'npz files': (_extracted, 'npz', {'train': 'npz files', 'validation': 'npz files'}),
    'pickle files': (_extracted, 'pickle', {'train': 'pickle files', 'validation': 'pickle files'}),
    'nested npz files': (_nested, 'npz', {'train': 'npz files', 'validation': 'npz files'}),
    'nested pickle files': (
        _nested, 'pickle', {'train': 'pickle files', 'validation': 'pickle files'}),
    'zips in folders': (
        _zips_in_folders, 'pickle', {'train': 'pickle zip', 'validation': 'pickle zip'}),
    'mixed': (_mixed, None, {'train': 'npz zip', 'validation': 'pickle files'}),
}


@pytest.fixture(scope='module')
def expected(tmp_path_factory):
  return expected_examples(str(tmp_path_factory.mktemp('expected')))


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """The build from the npz zips: the order every same-key build must keep."""
  root = tmp_path_factory.mktemp('reference')
  write(root / 'manual', 'npz', zipped=True)
  builder = build(CONFIG, root / 'manual', root / 'data')
  return {split: decoded(builder, split) for split in common.SPLITS}


@pytest.mark.slow
@pytest.mark.parametrize('form', list(FORMS))
def test_every_form_builds_the_same_examples(form, expected, tmp_path):
  writer, fmt, forms = FORMS[form]
  manual = tmp_path / 'manual'
  manual.mkdir()
  writer(manual, fmt)
  builder = build(CONFIG, manual, tmp_path / 'data')
  for split in common.SPLITS:
    assert sorted(decoded(builder, split)) == expected[split], split
    assert builder.info.metadata['sources'][split]['form'] == forms[split]


def test_pickle_zips_keep_the_npz_order_of_each_batch(tmp_path):
  """Same members in the same folders: same keys modulo '.npz', same rows."""
  manual = tmp_path / 'manual'
  write(manual, 'pickle', zipped=True)
  keys = [
      b.key for s in discovery.find_sources(str(manual), SIZE).values() for b in s.batches
  ]
  assert keys == [
      'Imagenet8_train/train_data_batch_1', 'Imagenet8_train/train_data_batch_2',
      'Imagenet8_train/train_data_batch_3', 'val_data',
  ]


@pytest.mark.slow
@pytest.mark.parametrize('fmt', ['npz', 'pickle'])
def test_archives_extracted_in_place_keep_keys_and_order(fmt, reference, tmp_path):
  """Extracting the zips where they lie gives the same keys, so the same order."""
  zipped = tmp_path / 'zipped'
  paths = write(zipped, fmt, zipped=True)
  manual = tmp_path / 'manual'
  for path in paths:
    extract_in_place(path, str(manual))
  found = discovery.find_sources(str(manual), SIZE)
  zipped_found = discovery.find_sources(str(zipped), SIZE)
  for split in common.SPLITS:
    assert [b.key for b in found[split].batches] == [
        b.key for b in zipped_found[split].batches
    ]
  if fmt == 'npz':  # Same keys as the npz zips: the very same file order.
    builder = build(CONFIG, manual, tmp_path / 'data')
    for split in common.SPLITS:
      assert decoded(builder, split) == reference[split]


@pytest.mark.slow
def test_npz_zips_are_preferred_and_logged(reference, tmp_path, caplog):
  """With every form present, the npz zips win, and the log says which files."""
  manual = tmp_path / 'manual'
  write(manual, 'npz', zipped=True)
  write(manual / 'p', 'pickle', zipped=True)
  write(manual / 'x', 'npz', zipped=False)
  write(manual / 'y', 'pickle', zipped=False)
  with caplog.at_level(logging.INFO, logger='imagenet_resized.authors.discovery'):
    builder = build(CONFIG, manual, tmp_path / 'data')
  for split in common.SPLITS:
    assert decoded(builder, split) == reference[split]
  used = [r.getMessage() for r in caplog.records if r.name == 'imagenet_resized.authors.discovery']
  assert used == [
      f'imagenet_resized/{CONFIG} train: using npz zip: {manual}/Imagenet8_train_npz.zip',
      f'imagenet_resized/{CONFIG} validation: using npz zip: {manual}/Imagenet8_val_npz.zip',
  ]
  assert builder.info.metadata['sources'] == {
      'train': {'form': 'npz zip', 'files': ['Imagenet8_train_npz.zip']},
      'validation': {'form': 'npz zip', 'files': ['Imagenet8_val_npz.zip']},
  }


def test_pickle_zips_win_over_extracted_files(tmp_path):
  manual = tmp_path / 'manual'
  write(manual, 'pickle', zipped=True)
  write(manual / 'x', 'npz', zipped=False)
  found = discovery.find_sources(str(manual), SIZE)
  assert {s: f.form for s, f in found.items()} == {
      'train': 'pickle zip', 'validation': 'pickle zip'
  }


@pytest.mark.slow
def test_64x64_two_part_pickle_zips_equal_npz_zips(tmp_path):
  """The 64x64 train split spans two archives in both forms."""
  layout = dict(train_batches=3, examples_per_batch=2, val_examples=2)
  expected64 = expected_examples(str(tmp_path / 'expected'), 64, **layout)
  for fmt in ('npz', 'pickle'):
    manual = tmp_path / fmt
    paths = write(manual, fmt, zipped=True, size=64, **layout)
    assert sorted(map(os.path.basename, paths)) == sorted(
        n.replace('_npz', '') if fmt == 'pickle' else n
        for n in publication.download_names(64)
    )
    builder = build('64x64', manual, tmp_path / f'data_{fmt}')
    for split in common.SPLITS:
      assert sorted(decoded(builder, split)) == expected64[split]


def test_extracted_files_of_several_sizes_pick_the_right_one(tmp_path):
  """npz files are sized by header, pickles by folder name (Imagenet16_...)."""
  manual = tmp_path / 'manual'
  for size in (8, 16):
    write(manual / 'npz', 'npz', zipped=False, size=size)
    write(manual / 'pickle', 'pickle', zipped=False, size=size)
  for size in (8, 16):
    found = discovery.find_sources(str(manual), size)
    assert found['train'].form == 'npz files'
    assert [os.path.relpath(f, manual) for f in found['train'].files] == [
        f'npz/Imagenet{size}_train_npz/train_data_batch_{k}.npz' for k in (1, 2, 3)
    ]
  # Pickles only: told apart by their folder names.
  shutil.rmtree(manual / 'npz')
  for size in (8, 16):
    found = discovery.find_sources(str(manual), size)
    assert [os.path.relpath(f, manual) for f in found['validation'].files] == [
        f'pickle/Imagenet{size}_val/val_data'
    ]


def test_train_batches_are_read_in_number_order(tmp_path):
  """train_data_batch_10 comes after _2, not after _1."""
  manual = tmp_path / 'manual'
  write(manual, 'npz', zipped=False, train_batches=10, examples_per_batch=1)
  found = discovery.find_sources(str(manual), SIZE)
  assert [os.path.basename(f) for f in found['train'].files] == [
      f'train_data_batch_{k}.npz' for k in range(1, 11)
  ]


@pytest.mark.slow
def test_bounded_shuffle_memory_keeps_the_order(reference, tmp_path, monkeypatch):
  """Spilling TFDS's shuffle buffer to disk at once gives the same file order."""
  import imagenet_resized
  from tensorflow_datasets.core import shuffle
  default = shuffle.MAX_MEM_BUFFER_SIZE
  monkeypatch.setattr(imagenet_resized.Builder, 'SHUFFLE_MEMORY_BYTES', 0)
  spilled = []
  to_bucket = shuffle.Shuffler._add_to_bucket

  def counting_add_to_bucket(self, hkey, data):
    spilled.append(hkey)
    return to_bucket(self, hkey, data)

  monkeypatch.setattr(shuffle.Shuffler, '_add_to_bucket', counting_add_to_bucket)
  write(tmp_path / 'manual', 'npz', zipped=True)
  builder = build(CONFIG, tmp_path / 'manual', tmp_path / 'data')
  assert len(spilled) == sum(len(reference[s]) for s in common.SPLITS)
  for split in common.SPLITS:
    assert decoded(builder, split) == reference[split]
  assert shuffle.MAX_MEM_BUFFER_SIZE == default  # Restored after the build.


def _deep_tree(root, depth: int) -> None:
  """`depth` nested folders `d` under `root`, made level by level relative to
  the last one (their path is longer than the system allows at once)."""
  fd = os.open(root, os.O_RDONLY)
  for _ in range(depth):
    os.mkdir('d', dir_fd=fd)
    inner = os.open('d', os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = inner
  os.close(fd)


def _remove_deep_tree(root, depth: int) -> None:
  fds = [os.open(root, os.O_RDONLY)]
  for _ in range(depth - 1):
    fds.append(os.open('d', os.O_RDONLY, dir_fd=fds[-1]))
  while fds:
    fd = fds.pop()
    os.rmdir('d', dir_fd=fd)
    os.close(fd)


def test_a_manual_folder_of_any_depth_is_searched(tmp_path):
  """An unrelated tree deeper than Python's recursion limit beside the
  archives: found, no RecursionError. Batch files up to MAX_DEPTH folders
  down are found; deeper ones are passed over."""
  manual = tmp_path / 'manual'
  fake.write_sources(str(manual), 8, train_batches=1, examples_per_batch=2,
                     val_examples=2)
  _deep_tree(manual, 1500)
  try:
    found = discovery.find_sources(str(manual), 8)
    assert {s: f.form for s, f in found.items()} == {
        'train': 'npz zip', 'validation': 'npz zip'}
  finally:
    _remove_deep_tree(manual, 1500)
  extracted = tmp_path / 'extracted'
  fake.write_sources(str(extracted), 8, train_batches=1, examples_per_batch=2,
                     val_examples=2, zipped=False)
  for depth, found_there in ((discovery.MAX_DEPTH, True), (discovery.MAX_DEPTH + 1, False)):
    root = tmp_path / f'at_{depth}'
    shutil.copytree(extracted, root.joinpath(*['d'] * (depth - 1)))
    found = discovery.find_sources(str(root), 8)
    assert (found is not None) == found_there, depth


def test_search_skips_imagenet_class_folders(tmp_path):
  """Extracted ImageNet in the same manual folder is not listed file by file."""
  fake.write_sources(str(tmp_path), 8, train_batches=1, examples_per_batch=2,
                         val_examples=2)
  class_dir = tmp_path / 'train' / 'n01440764'
  class_dir.mkdir(parents=True)
  (class_dir / 'n01440764_1.JPEG').write_bytes(b'jpeg')
  # A batch-named file inside a class folder would be found if it were walked.
  (class_dir / 'val_data.npz').write_bytes(b'not a batch')
  found = discovery.find_sources(str(tmp_path), 8)
  assert found['validation'].form == 'npz zip'
  walked = discovery._walk(str(tmp_path))
  assert not any('n01440764' in p for p in walked)


@pytest.mark.slow
def test_batches_are_reported_in_order_when_a_later_one_is_read_first(tmp_path):
  """With two workers, a small batch 2 is read before a large batch 1, yet the
  per-batch checks run for batch 1 first, as in a one-process build."""
  from imagenet_resized.pipeline import examples
  fake.write_sources(str(tmp_path), 8, train_batches=2, examples_per_batch=4,
                     val_examples=2)
  large = fake.make_batch(np.random.default_rng(0), 20_000, 8)
  fake_helpers.replace_batch(str(tmp_path), 8, 'npz', True, 'train_data_batch_1',
                     fake.batch_bytes(large, 'npz'))
  source = discovery.find_sources(str(tmp_path), 8)[common.TRAIN]
  reported, keys = [], []
  for key, _ in examples.iter_examples(
      source.batches, 8, workers=2,
      batch_done=lambda batch, rows: reported.append((batch.name, rows, len(keys))),
  ):
    keys.append(key)
  assert [(name, rows) for name, rows, _ in reported] == [
      ('train_data_batch_1', 20_000), ('train_data_batch_2', 4)
  ]
  # Batch 2's examples did arrive before batch 1 was done.
  first_done_at = reported[0][2]
  assert any('train_data_batch_2' in k for k in keys[:first_done_at])
  assert len(keys) == 20_004
