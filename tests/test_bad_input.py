"""Bad input stops the build with one clear line, and leaves nothing built.

Each case writes good fake sources (`imagenet_resized.tools.fake`), spoils one
thing, builds, and checks the exact message (naming the file and member, what
was wrong and what was expected) and that `tfds.load` finds nothing to read.
"""

import functools
import hashlib
import io
import os
import pickle
import re
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

import crafted
from conftest import build
from imagenet_resized.authors import download_probe
from imagenet_resized.authors import discovery, publication
from imagenet_resized.tools import fake
import fake_helpers
from imagenet_resized import resources
from imagenet_resized.common import SourceError


def _sha256(path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


# Every test here builds a dataset or runs processes.
pytestmark = pytest.mark.slow

LAYOUT = dict(train_batches=2, examples_per_batch=4, val_examples=4)
ROWS = 4


def good_sources(manual, size: int, fmt: str, zipped: bool) -> None:
  fake.write_sources(str(manual), size, fmt=fmt, zipped=zipped, **LAYOUT)


def a_batch(size: int) -> dict:
  return fake.make_batch(np.random.default_rng(5), ROWS, size)


def spoil(manual, size, fmt, zipped, name, batch=None, data=None) -> str:
  """Good sources with batch `name` replaced; returns how messages name it."""
  good_sources(manual, size, fmt, zipped)
  if data is None:
    data = fake.batch_bytes(batch, fmt)
  return fake_helpers.replace_batch(str(manual), size, fmt, zipped, name, data)


def without(batch: dict, key: str) -> dict:
  return {k: v for k, v in batch.items() if k != key}


class _Touch:
  """Unpickling this would create a file (if the unpickler ran it)."""

  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return (open, (self.path, 'w'))


# Each case: (manual_dir, tmp_path) -> (config, expected message).


def data_not_uint8(m, _):
  b = a_batch(8)
  b['data'] = b['data'].astype(np.int16)
  where = spoil(m, 8, 'npz', True, 'train_data_batch_2', b)
  assert where.endswith('Imagenet8_train_npz.zip:Imagenet8_train_npz/train_data_batch_2.npz')
  return '8x8', f'{where}: `data` has dtype int16; expected uint8 pixel values'


def data_not_2d(m, _):
  b = a_batch(8)
  b['data'] = b['data'].reshape(ROWS, 3, 8, 8)
  where = spoil(m, 8, 'pickle', False, 'val_data', b)
  return '8x8', (
      f'{where}: `data` has shape (4, 3, 8, 8); expected a 2-D array of rows,'
      ' each 3*8*8 = 192 values wide'
  )


def rows_of_another_size(m, _):
  where = spoil(m, 32, 'npz', True, 'train_data_batch_1', a_batch(16))
  return '32x32', (
      f'{where}: rows of 768 values are 16x16 images; this is the 32x32 config,'
      ' which expects rows of 3072 values'
  )


def extracted_files_of_another_size(m, _):
  """16x16 files only, asked for 32x32: say so rather than 'not found'."""
  good_sources(m, 16, 'npz', False)
  where = os.path.join(m, 'Imagenet16_train_npz', 'train_data_batch_1.npz')
  return '32x32', (
      f'{where}: rows of 768 values are 16x16 images; this is the 32x32 config,'
      ' which expects rows of 3072 values'
  )


def rows_fit_no_image(m, _):
  b = a_batch(8)
  b['data'] = np.ascontiguousarray(b['data'][:, :100])
  where = spoil(m, 8, 'pickle', True, 'val_data', b)
  return '8x8', (
      f'{where}: rows of 100 values fit no square RGB image; this is the 8x8'
      ' config, which expects rows of 192 values'
  )


def labels_missing(m, _):
  where = spoil(m, 8, 'npz', False, 'val_data', without(a_batch(8), 'labels'))
  return '8x8', (
      f"{where}: no `labels` array in the npz (it holds ['data']); expected"
      ' `data` and `labels`'
  )


def data_missing(m, _):
  where = spoil(m, 8, 'pickle', True, 'val_data', without(a_batch(8), 'data'))
  return '8x8', (
      f"{where}: no `data` in the pickled dict (it holds ['labels']); expected"
      ' `data` and `labels`'
  )


def labels_too_short(m, _):
  b = a_batch(8)
  b['labels'] = b['labels'][:-1]
  where = spoil(m, 8, 'pickle', False, 'train_data_batch_1', b)
  return '8x8', (
      f'{where}: `labels` holds 3 labels but `data` holds 4 rows; expected one'
      ' label per row'
  )


def labels_too_long(m, _):
  b = a_batch(8)
  b['labels'] = np.concatenate([b['labels'], [5]])
  where = spoil(m, 8, 'npz', True, 'val_data', b)
  return '8x8', (
      f'{where}: `labels` holds 5 labels but `data` holds 4 rows; expected one'
      ' label per row'
  )


def label_zero(m, _):
  b = a_batch(8)
  b['labels'][2] = 0
  where = spoil(m, 8, 'npz', True, 'train_data_batch_2', b)
  return '8x8', (
      f"{where}: `labels` holds 0 at row 2; expected labels 1..1000 (the"
      " authors' labels are 1-based)"
  )


def label_1001(m, _):
  b = a_batch(8)
  b['labels'][3] = 1001
  where = spoil(m, 8, 'pickle', True, 'val_data', b)
  return '8x8', (
      f"{where}: `labels` holds 1001 at row 3; expected labels 1..1000 (the"
      " authors' labels are 1-based)"
  )


def labels_not_integers(m, _):
  b = a_batch(8)
  b['labels'] = b['labels'].astype(np.float64)
  where = spoil(m, 8, 'npz', False, 'val_data', b)
  return '8x8', f'{where}: `labels` has dtype float64; expected integers 1..1000'


def npz_with_pickled_objects(m, _):
  b = a_batch(8)
  b['data'] = b['data'].astype(object)
  where = spoil(m, 8, 'npz', True, 'val_data', data=_npz_allowing_pickles(b))
  return '8x8', (
      f'{where}:data.npy: holds Python objects (a pickle); expected plain numbers'
  )


def _npz_allowing_pickles(batch: dict) -> bytes:
  buf = io.BytesIO()
  np.savez(buf, **batch)
  return buf.getvalue()


def pickle_not_a_dict(m, _):
  where = spoil(m, 8, 'pickle', True, 'val_data', data=pickle.dumps([1, 2], protocol=2))
  return '8x8', (
      f'{where}: the pickle holds a list; expected a dict with `data` and `labels`'
  )


def truncated_zip(m, _):
  good_sources(m, 8, 'npz', True)
  path = os.path.join(m, 'Imagenet8_train_npz.zip')
  _truncate(path)
  return '8x8', (
      f"{path}: not a readable zip (corrupt or truncated: File is not a zip"
      " file); expected one of the authors' archives"
  )


def corrupt_zip_member(m, _):
  good_sources(m, 8, 'npz', True)
  path = os.path.join(m, 'Imagenet8_val_npz.zip')
  with zipfile.ZipFile(path) as zf:
    (info,) = zf.infolist()
  data = bytearray(open(path, 'rb').read())
  start = info.header_offset + 30 + len(info.filename.encode())
  for i in range(start + 40, start + 240):  # Inside the deflated stream.
    data[i] ^= 0x5A
  with open(path, 'wb') as f:
    f.write(bytes(data))
  # zlib's own words for the damage vary with its version: matched loosely.
  return '8x8', re.compile(
      re.escape(f'{path}:val_data.npz: not readable (corrupt or truncated zip:'
                ' Error -3 while decompressing data: ')
      + r'[a-z /]+'
      + re.escape("); expected one of the authors' archives")
  )


def truncated_npz_in_zip(m, _):
  data = fake.npz_bytes(a_batch(8))
  where = spoil(m, 8, 'npz', True, 'val_data', data=data[:-30])
  return '8x8', (
      f'{where}: not a readable npz (corrupt or truncated zip: File is not a'
      ' zip file); expected an np.savez file with `data` and `labels`'
  )


def truncated_npz_file(m, _):
  good_sources(m, 8, 'npz', False)
  path = os.path.join(m, 'Imagenet8_train_npz', 'train_data_batch_2.npz')
  _truncate(path)
  return '8x8', (
      f'{path}: not a readable npz (corrupt or truncated zip: File is not a zip'
      ' file); expected an np.savez file with `data` and `labels`'
  )


def truncated_pickle_file(m, _):
  good_sources(m, 8, 'pickle', False)
  path = os.path.join(m, 'Imagenet8_val', 'val_data')
  _truncate(path)
  return '8x8', (
      f'{path}: corrupt or truncated pickle (UnpicklingError: pickle data was'
      ' truncated); expected a pickled dict with `data` and `labels`'
  )


def truncated_pickle_in_zip(m, _):
  data = fake.py2_pickle_bytes(a_batch(8))
  where = spoil(m, 8, 'pickle', True, 'train_data_batch_2', data=data[: len(data) // 2])
  return '8x8', (
      f'{where}: corrupt or truncated pickle (UnpicklingError: pickle data was'
      ' truncated); expected a pickled dict with `data` and `labels`'
  )


def _truncate(path: str) -> None:
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[: len(data) // 2])


def malicious_pickle(m, tmp_path):
  target = tmp_path / 'created_by_the_pickle'
  b = a_batch(8)
  evil = pickle.dumps({'data': b['data'], 'labels': _Touch(str(target))}, protocol=2)
  where = spoil(m, 8, 'pickle', True, 'val_data', data=evil)
  return '8x8', (
      f'{where}: the pickle asks for `{open.__module__}.{open.__name__}`, which'
      ' is not allowed; a batch pickle may only hold numpy arrays, dicts, lists'
      ' and numbers'
  )


def pickle_calling_ndarray_directly(m, _):
  """`data` as numpy.ndarray called with zero strides: 1000 rows from 192
  bytes (numpy would build the view; the pickle is never unpickled)."""
  data = crafted.strided_view((1000, 192), crafted.U1, bytes(192), (0, 1))
  evil = crafted.batch_pickle(data, crafted.int_list([1] * 1000))
  where = spoil(m, 8, 'pickle', True, 'val_data', data=evil)
  return '8x8', f'{where}: `data` is a call to numpy.ndarray; expected a uint8 numpy array'


def npz_member_inflating_past_its_header(m, _):
  """A deflated npz whose data.npy holds 32 MiB of zeros more than its .npy
  header declares: the inflated copy stops at the header, before them."""
  b = a_batch(8)
  data_npy = crafted.npy('|u1', b['data'].shape, b['data'].tobytes())
  labels_npy = crafted.npy('<i8', b['labels'].shape, b['labels'].astype('<i8').tobytes())
  npz = crafted.join(crafted.zip_parts([
      crafted.Member('data.npy', (data_npy, crafted.Zeros(32 << 20))),
      crafted.Member('labels.npy', (labels_npy,)),
  ]))
  where = spoil(m, 8, 'npz', True, 'val_data', data=npz)
  return '8x8', (
      f'{where}: data.npy: its .npy header declares {len(data_npy)} bytes but'
      f' its zip header {len(data_npy) + (32 << 20)}; expected the sizes to'
      ' agree, as np.savez writes them'
  )


def one_split_missing(m, _):
  good_sources(m, 8, 'npz', True)
  os.remove(os.path.join(m, 'Imagenet8_val_npz.zip'))
  return '8x8', (
      f'{m}: found the 8x8 train split but not validation; expected'
      ' Imagenet8_val_npz.zip or its extracted batches'
  )


def one_64x64_part_missing(m, _):
  fake.write_sources(str(m), 64, train_batches=2, examples_per_batch=2, val_examples=2)
  os.remove(os.path.join(m, 'Imagenet64_train_part2_npz.zip'))
  return '64x64', (
      f'{m}: found the 64x64 validation split but not train; expected'
      ' Imagenet64_train_part1_npz.zip, Imagenet64_train_part2_npz.zip or its'
      ' extracted batches'
  )


def ambiguous_pickle_copies(m, _):
  good_sources(m / 'one', 8, 'pickle', False)
  good_sources(m / 'two', 8, 'pickle', False)
  return '8x8', (
      f'several files named train_data_batch_1 could hold 8x8 batches:'
      f' {m}/one/Imagenet8_train/train_data_batch_1,'
      f' {m}/two/Imagenet8_train/train_data_batch_1; expected one (keep one'
      ' copy, or put each size in a folder named like Imagenet8_train)'
  )


CASES = [
    data_not_uint8, data_not_2d, rows_of_another_size,
    extracted_files_of_another_size, rows_fit_no_image, labels_missing,
    data_missing, labels_too_short, labels_too_long, label_zero, label_1001,
    labels_not_integers, npz_with_pickled_objects, pickle_not_a_dict,
    truncated_zip, corrupt_zip_member, truncated_npz_in_zip,
    truncated_npz_file, truncated_pickle_file, truncated_pickle_in_zip,
    malicious_pickle, pickle_calling_ndarray_directly,
    npz_member_inflating_past_its_header, one_split_missing,
    one_64x64_part_missing,
    ambiguous_pickle_copies,
]


def assert_nothing_built(config: str, data_dir) -> None:
  """No prepared dataset that tfds.load would read."""
  builder = tfds.builder(f'imagenet_resized/{config}', data_dir=str(data_dir))
  assert not builder.is_prepared()
  with pytest.raises(AssertionError, match='could not find data'):
    tfds.load(f'imagenet_resized/{config}', data_dir=str(data_dir), download=False)
  leftovers = [
      os.path.join(root, f) for root, _, files in os.walk(data_dir) for f in files
      if f == 'dataset_info.json' or '.tfrecord' in f or '.array_record' in f
  ]
  assert not leftovers


@pytest.mark.parametrize('case', CASES, ids=lambda c: c.__name__)
def test_bad_input_stops_the_build(case, tmp_path):
  manual = tmp_path / 'manual'
  manual.mkdir()
  config, message = case(manual, tmp_path)
  data_dir = tmp_path / 'data'
  with pytest.raises(SourceError) as e:
    build(config, manual, data_dir)
  if isinstance(message, re.Pattern):
    assert message.fullmatch(str(e.value)), str(e.value)
  else:
    assert str(e.value) == message
  assert '\n' not in str(e.value)
  assert not (tmp_path / 'created_by_the_pickle').exists()
  assert_nothing_built(config, data_dir)


def test_missing_archives_list_names_and_places(tmp_path, monkeypatch):
  """Nothing in the manual folder, the download fails: what, and where we looked."""
  manual = tmp_path / 'manual'
  good_sources(manual, 8, 'npz', True)  # Another size: not what 16x16 needs.

  def offline(self, urls):
    del self, urls
    raise ConnectionError('network unreachable')

  # A replaced downloader is asked for the files (no probe), and fails.
  monkeypatch.setattr(download_probe, 'why_not_downloadable', functools.partial(
      pytest.fail, 'probed a replaced downloader'))
  monkeypatch.setattr(tfds.download.DownloadManager, 'download', offline)
  with pytest.raises(SourceError) as e:
    build('16x16', manual, tmp_path / 'data')
  assert str(e.value) == (
      'No source archives for imagenet_resized/16x16: expected'
      ' Imagenet16_train_npz.zip, Imagenet16_val_npz.zip (or the pickle zips'
      ' Imagenet16_train.zip, Imagenet16_val.zip, or their extracted'
      f' train_data_batch_K / val_data files); looked in: {manual};'
      f' {publication.URL_BASE} (download failed: ConnectionError: network'
      ' unreachable); the site asks for a login: download them at'
      ' https://image-net.org/download-images (Downsampled ImageNet) and put'
      f' them, unchanged, in {manual}; or to compute the images from the'
      ' ILSVRC2012 JPEGs instead, build imagenet_resized/16x16_ilsvrc2012'
      " (ImagenetResizedConfig(size=16, source='ilsvrc2012'))"
  )
  assert_nothing_built('16x16', tmp_path / 'data')


def register_as_published(manual, size: int, monkeypatch, sha256=None):
  """Registers the fake archives in `manual` as the published ones."""
  registered = {
      name: resources.UrlRecord(
          publication.URL_BASE + name, os.path.getsize(manual / name),
          sha256 or _sha256(manual / name), name,
      )
      for name in publication.download_names(size)
  }
  monkeypatch.setattr(discovery, '_registered', lambda: registered)


def test_published_size_with_another_sha256_is_refused(tmp_path, monkeypatch):
  """An archive of the registered size must also have the registered hash."""
  manual = tmp_path / 'manual'
  good_sources(manual, 8, 'npz', True)
  register_as_published(manual, 8, monkeypatch, sha256='0' * 64)
  got = _sha256(manual / 'Imagenet8_train_npz.zip')
  with pytest.raises(SourceError) as e:
    build('8x8', manual, tmp_path / 'data')
  assert str(e.value) == (
      f'{manual}/Imagenet8_train_npz.zip: SHA-256 {got} does not match the'
      f' registered {"0" * 64} of the published Imagenet8_train_npz.zip'
      f' ({os.path.getsize(manual / "Imagenet8_train_npz.zip")} bytes);'
      ' expected the unchanged archive (download it again)'
  )
  assert_nothing_built('8x8', tmp_path / 'data')


def test_published_archives_must_give_published_split_sizes(tmp_path, monkeypatch):
  """Archives of the registered sizes must hold 1,281,167 + 50,000 examples."""
  manual = tmp_path / 'manual'
  good_sources(manual, 8, 'npz', True)
  register_as_published(manual, 8, monkeypatch)
  with pytest.raises(SourceError) as e:
    build('8x8', manual, tmp_path / 'data')
  assert str(e.value) == (
      f'{manual}/Imagenet8_train_npz.zip: the train split has'
      f' {LAYOUT["train_batches"] * LAYOUT["examples_per_batch"]} examples; the'
      ' published archives hold 1281167'
  )
  assert_nothing_built('8x8', tmp_path / 'data')


def test_unregistered_archives_have_no_size_requirement(tmp_path):
  """Other archives (fakes, subsets) build whatever they hold."""
  manual = tmp_path / 'manual'
  good_sources(manual, 8, 'npz', True)
  found = discovery.find_sources(str(manual), 8)
  assert {s: f.expected_examples for s, f in found.items()} == {
      'train': None, 'validation': None
  }
