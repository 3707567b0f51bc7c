"""The real dataset's structure, at test size.

The published splits (1,281,167 train examples in 10 batches, 50,000
validation) are written in many shards (32 at 32x32), TFDS's shuffler spills
them to disk, the 64x64 zips are 6.8 GB (zip64: members whose local headers
lie past 4 GiB) and no count is a multiple of a chunk size of the package.
Here the same structure, small:

* Sources in the authors' layout (`Imagenet8_train_npz.zip` holding
  `Imagenet8_train_npz/train_data_batch_K.npz`, `Imagenet8_val_npz.zip`
  holding `val_data.npz`) whose batches hold 1,031, 2,053, 4,099 and 1,025
  rows: none a multiple of the package's chunk sizes (1,024, 2,048, 4,096,
  16,384), and each just past one.
* A zip64 copy of the train zip: after its first member, the writer's
  position (`ZipFile.start_dir`) is moved forward by more than 4 GiB, so the
  next members' local headers start past 4 GiB. The file holds a hole there
  (sparse: no disk used), and `zipfile` writes what the real 64x64 zips hold:
  0xFFFFFFFF in the central directory's 32-bit offset fields, the real
  offsets in zip64 extra fields, and a zip64 end record. So a reader that
  reads the offset of a member past 4 GiB, or seeks there, through 32-bit
  fields, fails here as on the real 64x64 zips, without writing 4 GiB. Of
  the members past the hole one is stored (zipfile reads it) and one
  bzip2-compressed (the package finds a compressed member's raw bytes from
  its local header's offset itself).
* Builds in 17 and 40 shards (more than tf.data's interleave cycle of 16) by
  TFDS's own builder and ours from the same zips, both with their shufflers
  spilling to disk (as at the real sizes), compared example by example in
  TFDS's index order, shard by shard, and with the sources read here with
  zipfile and numpy, in the order TFDS's md5 hash of the keys gives.
* `imagenet_resized.arrays.load` in 1, 2, 16, 17 and 40 shards, TFRecord and
  array_record, with export ranges of 37 rows, and over shards of very
  uneven lengths written here by hand: row i is example i of TFDS's index
  order (`as_dataset` reading the shards one after another,
  `as_data_source(split)[i]`, `split='train[i:i+1]'`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
import types
import zipfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core import shuffle

import imagenet_resized
from conftest import assert_same_examples, build, source_examples, tfds_index_order
from imagenet_resized import arrays
from imagenet_resized.array_files import array_export
from imagenet_resized.tools import fake

# Every test here builds a dataset or writes the sources builds read.
pytestmark = pytest.mark.slow

SIZE = 8
CONFIG = f'{SIZE}x{SIZE}'
TRAIN_ZIP = f'Imagenet{SIZE}_train_npz.zip'
VAL_ZIP = f'Imagenet{SIZE}_val_npz.zip'
TRAIN_ROWS = (1031, 2053, 4099)
VAL_ROWS = 1025
SPLIT_ROWS = {'train': sum(TRAIN_ROWS), 'validation': VAL_ROWS}
# Rows the package reads, decodes or exports at once (none divides a count).
CHUNK_SIZES = (1024, 2048, 4096, 16384)
# What the zip64 copy's members after the first are moved by: past 4 GiB.
HOLE = (4 << 30) + 4099
ZIP64_METHODS = (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED, zipfile.ZIP_BZIP2)
# Shuffler memory of the spilling builds: a few hundred examples.
SHUFFLE_MEMORY = 64 << 10
# Rows per export range: odd, so ranges end inside shards, unevenly.
RANGE_ROWS = 37
# Shard lengths of the hand-written uneven train split (sum: 7,183).
UNEVEN_LENGTHS = (1, 500, 3, 1200, 2, 38, 1, 2900, 2538)


def _write_zip(path, members, methods) -> None:
  """A zip of (name, bytes) members with the given compression methods."""
  with zipfile.ZipFile(path, 'w') as zf:
    for (name, data), method in zip(members, methods):
      info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
      info.compress_type = method
      zf.writestr(info, data)


def _write_zip64_copy(source, path) -> None:
  """`source`'s members, all but the first starting past 4 GiB (a hole)."""
  with zipfile.ZipFile(source) as zin, zipfile.ZipFile(path, 'w') as zout:
    for i, info in enumerate(zin.infolist()):
      if i == 1:
        # zipfile seeks to start_dir before each member and before the
        # central directory: the bytes skipped are never written.
        zout.start_dir += HOLE
      copy = zipfile.ZipInfo(info.filename, info.date_time)
      copy.compress_type = ZIP64_METHODS[i % len(ZIP64_METHODS)]
      zout.writestr(copy, zin.read(info))


@pytest.fixture(scope='module')
def sources(tmp_path_factory):
  """manual: the sources; zip64: the same with the zip64 copy of the train zip."""
  rng = np.random.default_rng([2017, SIZE])
  manual = tmp_path_factory.mktemp('manual')
  folder = TRAIN_ZIP.removesuffix('.zip')
  train = [
      (f'{folder}/train_data_batch_{k}.npz', fake.npz_bytes(fake.make_batch(rng, n, SIZE)))
      for k, n in enumerate(TRAIN_ROWS, 1)
  ]
  _write_zip(manual / TRAIN_ZIP, train, [zipfile.ZIP_DEFLATED] * len(train))
  val = [('val_data.npz', fake.npz_bytes(fake.make_batch(rng, VAL_ROWS, SIZE)))]
  _write_zip(manual / VAL_ZIP, val, [zipfile.ZIP_DEFLATED])
  zip64 = tmp_path_factory.mktemp('manual_zip64')
  _write_zip64_copy(manual / TRAIN_ZIP, zip64 / TRAIN_ZIP)
  os.link(manual / VAL_ZIP, zip64 / VAL_ZIP)
  return types.SimpleNamespace(manual=manual, zip64=zip64)


@pytest.fixture(scope='module')
def expected(sources):
  """{split: [(key, image, label)]} read from the sources with zipfile and numpy."""
  return {split: source_examples(sources.manual, SIZE, split) for split in SPLIT_ROWS}


# ---------------------------------------------------------------------------
# Reading what TFDS reads, independently of the package.


def in_hash_order(examples: list, split: str) -> list:
  """`examples` in TFDS's order: by the md5 of split name + key (TFDS's Hasher
  salts with the split name), reimplemented here with hashlib."""
  def hashed(example):
    return int(hashlib.md5(split.encode() + example[0].encode()).hexdigest(), 16)
  return sorted(examples, key=hashed)


def tfds_slice(builder, split: str, i: int) -> tuple[np.ndarray, int]:
  """Example i of a split through TFDS's slicing, `split[i:i+1]`."""
  if builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD:
    (example,) = list(builder.as_data_source(split=f'{split}[{i}:{i + 1}]'))
  else:
    (example,) = list(tfds.as_numpy(builder.as_dataset(split=f'{split}[{i}:{i + 1}]')))
  return example['image'], int(example['label'])


def as_arrays(examples) -> tuple[np.ndarray, np.ndarray]:
  """(images, labels) of (key, image, label) triples."""
  return (
      np.stack([image for _, image, _ in examples]),
      np.array([label for _, _, label in examples], np.int64),
  )


# ---------------------------------------------------------------------------
# Building.


def tfds_own_builder_class():
  """TFDS's own imagenet_resized builder, imported without clashing with ours."""
  with tfds.core.registered.skip_registration():
    from tensorflow_datasets.datasets.imagenet_resized import (
        imagenet_resized_dataset_builder as theirs,
    )
  return theirs.Builder


def build_with_tfds_builder(manual_dir, data_dir, **download_config):
  """TFDS's own builder, its downloads served from `manual_dir`."""
  def local_download(self, url_or_urls):
    del self
    return [os.path.join(manual_dir, u.rsplit('/', 1)[-1]) for u in url_or_urls]

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(tfds.download.DownloadManager, 'download', local_download)
    builder = tfds_own_builder_class()(config=CONFIG, data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(**download_config)
    )
  assert type(builder).__module__.startswith('tensorflow_datasets.datasets.')
  return builder


@contextlib.contextmanager
def shufflers_watched():
  """Yields the list of TFDS shufflers made in the block; each one's
  `test_spilled` counts the examples it wrote to its disk buckets."""
  made = []
  init, add_to_bucket = shuffle.Shuffler.__init__, shuffle.Shuffler._add_to_bucket

  def watched_init(self, *args, **kwargs):
    init(self, *args, **kwargs)
    self.test_spilled = 0
    made.append(self)

  def counted_add_to_bucket(self, hkey, data):
    self.test_spilled += 1
    return add_to_bucket(self, hkey, data)

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(shuffle.Shuffler, '__init__', watched_init)
    mp.setattr(shuffle.Shuffler, '_add_to_bucket', counted_add_to_bucket)
    yield made


def assert_everything_spilled(shufflers, data_dir) -> None:
  """One shuffler per split, each of which sent every example through its
  disk buckets, and no spill file left behind."""
  assert sorted(s.num_examples for s in shufflers) == sorted(SPLIT_ROWS.values())
  assert [s.test_spilled for s in shufflers] == [s.num_examples for s in shufflers]
  left = [f for _, _, files in os.walk(data_dir) for f in files if f.startswith('bucket_')]
  assert not left, left[:3]


# ---------------------------------------------------------------------------
# The sources.


def _central_directory(path) -> tuple[list[int], bool]:
  """(32-bit local header offset field of each central directory entry,
  whether the end of central directory record defers to a zip64 one), parsed
  by hand from the end of the file."""
  with open(path, 'rb') as f:
    f.seek(-22, os.SEEK_END)
    eocd = struct.unpack('<4s4H2IH', f.read(22))
    assert eocd[0] == b'PK\x05\x06'
    f.seek(-22 - 20, os.SEEK_END)
    locator = struct.unpack('<4sIQI', f.read(20))
    assert locator[0] == b'PK\x06\x07'
    f.seek(locator[2])
    end64 = struct.unpack('<4sQHHIIQQQQ', f.read(56))
    assert end64[0] == b'PK\x06\x06'
    cd_size, cd_offset = end64[8], end64[9]
    f.seek(cd_offset)
    cd = f.read(cd_size)
  offsets = []
  pos = 0
  while pos < len(cd):
    entry = struct.unpack('<4s6H3I5H2I', cd[pos : pos + 46])
    assert entry[0] == b'PK\x01\x02'
    name_len, extra_len, comment_len = entry[10], entry[11], entry[12]
    offsets.append(entry[16])
    pos += 46 + name_len + extra_len + comment_len
  return offsets, eocd[6] == 0xFFFFFFFF


def test_sources_have_the_real_structure(sources):
  for count in (*TRAIN_ROWS, VAL_ROWS, *SPLIT_ROWS.values()):
    assert all(count % chunk for chunk in CHUNK_SIZES), count
  # The zip64 copy: members 2 and 3 past 4 GiB, as zipfile and a hand
  # parse of the central directory both say; a hole, not 4 GiB of disk.
  path = sources.zip64 / TRAIN_ZIP
  with zipfile.ZipFile(path) as zf:
    offsets = [info.header_offset for info in zf.infolist()]
    methods = [info.compress_type for info in zf.infolist()]
  assert offsets[0] == 0 and all(o > 2**32 for o in offsets[1:]), offsets
  assert methods == list(ZIP64_METHODS)
  fields, deferred = _central_directory(path)
  assert fields == [0, 0xFFFFFFFF, 0xFFFFFFFF] and deferred
  st = os.stat(path)
  assert st.st_size > HOLE
  assert st.st_blocks * 512 < (16 << 20), (st.st_size, st.st_blocks)
  # Both train zips hold the same batches, in the same member order.
  with zipfile.ZipFile(sources.manual / TRAIN_ZIP) as a, zipfile.ZipFile(path) as b:
    assert a.namelist() == b.namelist() == [
        f'Imagenet{SIZE}_train_npz/train_data_batch_{k}.npz' for k in (1, 2, 3)
    ]
    for name, rows in zip(a.namelist(), TRAIN_ROWS):
      assert a.read(name) == b.read(name)
      with np.load(io.BytesIO(a.read(name))) as z:
        assert z['data'].shape == (rows, 3 * SIZE * SIZE)
        assert z['data'].dtype == np.uint8 and z['labels'].shape == (rows,)
        assert z['labels'].min() == 1 and z['labels'].max() == 1000


# ---------------------------------------------------------------------------
# TFDS's own builder and ours, many shards, spilling shufflers.


@pytest.mark.parametrize('num_shards, form', [(17, 'zip64'), (40, 'zip')])
def test_many_shards_same_as_tfds_builder(num_shards, form, sources, expected, tmp_path):
  manual = sources.zip64 if form == 'zip64' else sources.manual
  with shufflers_watched() as theirs_shufflers, pytest.MonkeyPatch.context() as mp:
    mp.setattr(shuffle, 'MAX_MEM_BUFFER_SIZE', SHUFFLE_MEMORY)
    theirs = build_with_tfds_builder(manual, tmp_path / 'theirs', num_shards=num_shards)
  assert_everything_spilled(theirs_shufflers, tmp_path / 'theirs')
  # Ours spills through its own knob: TFDS's default is left alone here.
  assert shuffle.MAX_MEM_BUFFER_SIZE > 100 * SHUFFLE_MEMORY
  with shufflers_watched() as our_shufflers, pytest.MonkeyPatch.context() as mp:
    mp.setattr(imagenet_resized.Builder, 'SHUFFLE_MEMORY_BYTES', SHUFFLE_MEMORY)
    ours = build(CONFIG, manual, tmp_path / 'ours', num_shards=num_shards)
  assert type(ours) is imagenet_resized.Builder
  assert_everything_spilled(our_shufflers, tmp_path / 'ours')

  for split, rows in SPLIT_ROWS.items():
    lengths = theirs.info.splits[split].shard_lengths
    assert len(lengths) == num_shards and sum(lengths) == rows
    assert ours.info.splits[split].shard_lengths == lengths, split
    names = [os.path.basename(p) for p in theirs.info.splits[split].filepaths]
    assert [os.path.basename(p) for p in ours.info.splits[split].filepaths] == names
    assert all(os.path.isfile(p) for p in ours.info.splits[split].filepaths)
    last = f'{num_shards - 1:05d}-of-{num_shards:05d}'
    assert names[-1] == f'imagenet_resized-{split}.tfrecord-{last}'
    want = tfds_index_order(theirs, split)
    assert_same_examples(tfds_index_order(ours, split), want, f'ours, {split}')
    # TFDS's builder itself: the sources, ordered by the md5 of their keys.
    assert_same_examples(
        want, as_arrays(in_hash_order(expected[split], split)), f'sources, {split}'
    )


# ---------------------------------------------------------------------------
# The arrays: TFDS's index order, whatever the shards.


def spot_rows(lengths) -> list[int]:
  """Rows either side of some shard and export range boundaries, and the ends."""
  ends = np.cumsum(lengths)
  total = int(ends[-1])
  rows = {0, 1, RANGE_ROWS - 1, RANGE_ROWS, total - 2, total - 1}
  for end in (ends[0], ends[len(ends) // 2], ends[-2] if len(ends) > 1 else ends[0]):
    rows.update({int(end) - 1, int(end)})
  return sorted(r for r in rows if 0 <= r < total)


def assert_arrays_as_tfds_reads(builder, data_dir, split='train') -> None:
  found = arrays.load(CONFIG, split, data_dir=str(data_dir), workers=2)
  assert isinstance(found.images, np.memmap)
  want = tfds_index_order(builder, split)
  assert_same_examples((found.images, found.labels), want, f'arrays, {split}')
  for i in spot_rows(builder.info.splits[split].shard_lengths):
    image, label = tfds_slice(builder, split, i)
    assert np.array_equal(found.images[i], image) and found.labels[i] == label, i


@pytest.mark.parametrize('file_format', ['tfrecord', 'array_record'])
@pytest.mark.parametrize('num_shards', [1, 2, 16, 17, 40])
def test_arrays_in_tfds_index_order(num_shards, file_format, sources, tmp_path, monkeypatch):
  builder = tfds.builder(f'imagenet_resized/{CONFIG}', data_dir=str(tmp_path))
  builder.download_and_prepare(
      file_format=file_format,
      download_config=tfds.download.DownloadConfig(
          manual_dir=str(sources.manual), num_shards=num_shards
      ),
  )
  lengths = builder.info.splits['train'].shard_lengths
  assert len(lengths) == num_shards and sum(lengths) == SPLIT_ROWS['train']
  assert any(n % RANGE_ROWS for n in lengths)  # Ranges end inside shards.
  monkeypatch.setattr(array_export, 'RANGE_ROWS', RANGE_ROWS)
  assert_arrays_as_tfds_reads(builder, tmp_path)


def _rewrite_in_shards(builder, split: str, lengths) -> None:
  """Rewrites a prepared TFRecord split's records, in order, into shards of
  `lengths`, named as TFDS names them; records the lengths in its info."""
  info = builder.info.splits[split]
  old = [os.fspath(p) for p in info.filepaths]
  records = list(tf.data.TFRecordDataset(old).as_numpy_iterator())
  assert len(records) == sum(lengths)
  for path in old:
    os.remove(path)
  folder = builder.data_dir
  starts = np.concatenate([[0], np.cumsum(lengths)])
  for k, n in enumerate(lengths):
    name = f'{builder.name}-{split}.tfrecord-{k:05d}-of-{len(lengths):05d}'
    with tf.io.TFRecordWriter(os.path.join(folder, name)) as writer:
      for record in records[starts[k] : starts[k] + n]:
        writer.write(record)
  path = os.path.join(folder, 'dataset_info.json')
  with open(path) as f:
    info_json = json.load(f)
  (entry,) = [s for s in info_json['splits'] if s['name'] == split]
  entry['shardLengths'] = [str(n) for n in lengths]  # int64s are strings in JSON.
  with open(path, 'w') as f:
    json.dump(info_json, f, indent=2)


def test_arrays_of_uneven_shards_written_by_hand(sources, tmp_path, monkeypatch):
  data_dir = tmp_path / 'data'
  built = build(CONFIG, sources.manual, data_dir, num_shards=2)
  before = tfds_index_order(built, 'train')
  _rewrite_in_shards(built, 'train', UNEVEN_LENGTHS)
  n = len(UNEVEN_LENGTHS)
  assert sorted(f for f in os.listdir(built.data_dir) if '-train.' in f) == [
      f'imagenet_resized-train.tfrecord-{k:05d}-of-{n:05d}' for k in range(n)
  ]
  # TFDS reads the rewritten split, by itself and through our builder.
  for builder in (
      tfds.builder_from_directory(built.data_dir),
      tfds.builder(f'imagenet_resized/{CONFIG}', data_dir=str(data_dir)),
  ):
    assert list(builder.info.splits['train'].shard_lengths) == list(UNEVEN_LENGTHS)
    assert_same_examples(tfds_index_order(builder, 'train'), before, 'rewritten')
  monkeypatch.setattr(array_export, 'RANGE_ROWS', RANGE_ROWS)
  assert_arrays_as_tfds_reads(builder, data_dir)
  # The validation split, untouched, too.
  assert_arrays_as_tfds_reads(builder, data_dir, 'validation')
