"""imagenet_resized.arrays: a prepared split as memory-mapped arrays.

The arrays are compared example by example with TFDS's own reading of the
split (`as_dataset(shuffle_files=False)`, TensorFlow's decoder); refusals
with one-line messages; killed and concurrent exports in real processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import imagenet_resized
from conftest import REPO, build, read_split, run
from imagenet_resized import arrays
from imagenet_resized.tools import fake
import fake_helpers

ArraysError = arrays.ArraysError


def reference(builder, split: str) -> list:
  """(image, label) of a split as TFDS reads it: as_dataset in file order,
  or, for array_record (which TFDS reads only as a data source), by index."""
  if builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD:
    source = builder.as_data_source(split=split)
    return [(source[i]['image'], int(source[i]['label'])) for i in range(len(source))]
  return read_split(builder, split)


def assert_same_as_tfds(builder, split: str, found) -> None:
  want = reference(builder, split)
  assert isinstance(found.images, np.memmap) and found.images.dtype == np.uint8
  assert found.labels.dtype == np.int64
  assert len(found.images) == len(found.labels) == len(want)
  for i, (image, label) in enumerate(want):
    assert np.array_equal(found.images[i], image), i
    assert found.labels[i] == label, i


@pytest.fixture(scope='module')
def manual_8(tmp_path_factory):
  manual = tmp_path_factory.mktemp('m8') / 'manual'
  fake.write_sources(str(manual), 8, train_batches=2, examples_per_batch=400,
                     val_examples=90)
  return manual


@pytest.fixture(scope='module')
def built_8(manual_8, tmp_path_factory):
  return build('8x8', manual_8, tmp_path_factory.mktemp('d8'))


def copy_of(builder, tmp_path):
  """A copy of a prepared dataset's data_dir (for tests that change files)."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(builder.data_dir)))
  target = tmp_path / 'data'
  shutil.copytree(root, target)
  return str(target)


@pytest.mark.slow
@pytest.mark.parametrize('file_format', ['tfrecord', 'array_record'])
def test_arrays_equal_as_dataset(manual_8, tmp_path, file_format):
  builder = tfds.builder('imagenet_resized/8x8', data_dir=str(tmp_path))
  builder.download_and_prepare(
      file_format=file_format,
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_8)))
  for split in ('train', 'validation'):
    found = arrays.load('8x8', split, data_dir=str(tmp_path), workers=2)
    assert_same_as_tfds(builder, split, found)
    assert found.folder == os.path.join(builder.data_dir, 'arrays', split)
  # The train statistics, whichever split is loaded.
  assert found.mean == tuple(builder.info.metadata['statistics']['train']['mean'])
  assert found.std == tuple(builder.info.metadata['statistics']['train']['std'])
  # TFDS still reads and reuses the prepared dataset with the folder there.
  again = tfds.builder('imagenet_resized/8x8', data_dir=str(tmp_path))
  again.download_and_prepare()
  assert len(reference(again, 'validation')) == 90


@pytest.mark.slow
def test_every_kind_of_config(tmp_path):
  from test_ilsvrc import TinyImagenet
  nas = tmp_path / 'nas'
  fake_helpers.write_imagenet16_120_sources(str(nas), examples_per_batch=100,
                                    other_val_examples=20)
  big = tmp_path / 'm64'
  fake.write_sources(str(big), 64, train_batches=2, examples_per_batch=30,
                     val_examples=20)
  jpegs = TinyImagenet().write_tarballs(str(tmp_path / 'jpegs'))
  subset = imagenet_resized.ImagenetResizedConfig(size=16, num_classes=300)
  cases = [
      ('16x16_120', nas, ('train', 'x_valid', 'x_test')),
      ('16x16_300', nas, ('train', 'validation')),
      ('64x64', big, ('train',)),
      ('16x16_ilsvrc2012', jpegs, ('train', 'validation')),
  ]
  data = str(tmp_path / 'data')
  for name, manual, splits in cases:
    config = subset if name == '16x16_300' else name
    builder = tfds.builder('imagenet_resized', config=config, data_dir=data)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    for split in splits:
      found = arrays.load(name, split, data_dir=data)
      assert_same_as_tfds(builder, split, found)
      train = builder.info.metadata['statistics']['train']
      assert found.mean == tuple(train['mean']), name


@pytest.mark.slow
def test_second_load_opens_without_exporting(built_8, tmp_path, monkeypatch):
  data = copy_of(built_8, tmp_path)
  first = arrays.load('8x8', 'train', data_dir=data)
  from imagenet_resized.array_files import array_export

  def no_export(*args, **kwargs):
    raise AssertionError('exported again')

  monkeypatch.setattr(array_export, 'export', no_export)
  second = arrays.load('8x8', 'train', data_dir=data)
  assert np.array_equal(first.images, second.images)
  assert arrays.load('8x8', 'train', data_dir=data, verify=True) is not None


@pytest.mark.slow
def test_truncated_and_modified_files_are_refused(built_8, tmp_path):
  data = copy_of(built_8, tmp_path)
  found = arrays.load('8x8', 'train', data_dir=data)
  images = os.path.join(found.folder, 'images.npy')
  del found
  # Modified in place, size and mtime kept: found by verify=True.
  st = os.stat(images)
  with open(images, 'r+b') as f:
    f.seek(st.st_size - 5)
    byte = f.read(1)
    f.seek(st.st_size - 5)
    f.write(bytes([byte[0] ^ 0xFF]))
  os.utime(images, ns=(st.st_atime_ns, st.st_mtime_ns))
  assert arrays.load('8x8', 'train', data_dir=data) is not None
  with pytest.raises(ArraysError) as e:
    arrays.load('8x8', 'train', data_dir=data, verify=True)
  assert '\n' not in str(e.value) and images in str(e.value)
  assert 'CRC-32C' in str(e.value) and 'modified since the export' in str(e.value)
  # Modified with a new mtime: checked without being asked.
  os.utime(images)
  with pytest.raises(ArraysError, match='modified since the export'):
    arrays.load('8x8', 'train', data_dir=data)
  # Truncated.
  os.truncate(images, st.st_size - 100)
  with pytest.raises(ArraysError) as e:
    arrays.load('8x8', 'train', data_dir=data)
  assert str(e.value) == (
      f'{images}: {st.st_size - 100} bytes; expected {st.st_size} (truncated or'
      ' modified since the export; refresh=True / --refresh exports again)'
  )
  # refresh exports again, and the result is the split.
  found = arrays.load('8x8', 'train', data_dir=data, refresh=True)
  assert_same_as_tfds(built_8, 'train', found)


@pytest.mark.slow
def test_a_dataset_built_without_statistics_gets_them_from_its_export(
    built_8, tmp_path):
  """The export adds up the pixels only where the build did not store the
  statistics: a dataset whose metadata lacks them (as built before they
  were) gets the train split's from the export, equal to numpy's over the
  split as TFDS decodes it; other splits none."""
  import json

  data = copy_of(built_8, tmp_path)
  metadata = os.path.join(data, 'imagenet_resized', '8x8', '0.1.0', 'metadata.json')
  with open(metadata) as f:
    saved = json.load(f)
  del saved['statistics']
  with open(metadata, 'w') as f:
    json.dump(saved, f)
  found = arrays.load('8x8', 'train', data_dir=data)
  pixels = np.stack([image for image, _ in read_split(built_8, 'train')])
  pixels = pixels.reshape(-1, 3).astype(np.float64)
  np.testing.assert_allclose(found.mean, pixels.mean(axis=0), rtol=1e-12)
  np.testing.assert_allclose(found.std, pixels.std(axis=0), rtol=1e-12)
  validation = arrays.load('8x8', 'validation', data_dir=data)
  assert validation.mean is None and validation.std is None


@pytest.mark.slow
def test_flushes_during_the_export_keep_the_result(built_8, tmp_path, monkeypatch):
  """The flushes to disk that run in a thread while the export writes (every
  SYNC_BYTES; here every 4 KiB, so that they run in this small export): the files
  are still the split."""
  from imagenet_resized.array_files import array_export

  monkeypatch.setattr(array_export, 'SYNC_BYTES', 4096)
  flushed = []
  real_flushed = array_export._flushed

  def counted(fd):
    real_flushed(fd)
    flushed.append(fd)

  monkeypatch.setattr(array_export, '_flushed', counted)
  found = arrays.load('8x8', 'train', data_dir=copy_of(built_8, tmp_path), workers=0)
  assert flushed
  assert_same_as_tfds(built_8, 'train', found)


@pytest.mark.slow
def test_export_of_another_build_is_refused(built_8, tmp_path):
  other_manual = tmp_path / 'other'
  fake.write_sources(str(other_manual), 8, train_batches=2, examples_per_batch=300,
                     val_examples=90, seed=1)
  other = build('8x8', other_manual, tmp_path / 'other_data')
  arrays.load('8x8', 'validation', data_dir=str(tmp_path / 'other_data'))
  data = copy_of(built_8, tmp_path)
  target = os.path.join(data, 'imagenet_resized', '8x8', '0.1.0', 'arrays')
  shutil.copytree(os.path.join(other.data_dir, 'arrays'), target)
  with pytest.raises(ArraysError) as e:
    arrays.load('8x8', 'validation', data_dir=data)
  message = str(e.value)
  assert '\n' not in message and 'exported from another build' in message
  assert 'shards' in message and 'fingerprint.json' in message
  found = arrays.load('8x8', 'validation', data_dir=data, refresh=True)
  assert_same_as_tfds(built_8, 'validation', found)


def test_unprepared_and_unknown_are_one_line(tmp_path):
  with pytest.raises(ArraysError, match=r'^imagenet_resized/8x8 is not prepared in'):
    arrays.load('8x8', 'train', data_dir=str(tmp_path))
  with pytest.raises(ArraysError, match=r"^config '7x7': not a config"):
    arrays.load('7x7', 'train', data_dir=str(tmp_path))


# A child process that exports and stops at a point of the export, says so
# on stdout, and waits there (reading stdin) until it is killed or released.
# It patches only the standard library (os.pwrite, os.replace of images.npy),
# to know where it is; everything of the package runs as it is.
_CHILD = r'''
import os, sys
sys.path[:0] = [{repo!r}]
stop_at, data_dir = sys.argv[1], sys.argv[2]
calls = {{'pwrite': 0, 'replace': 0}}
def target(name, args):  # The file a call writes or renames.
  return os.readlink(f'/proc/self/fd/{{args[0]}}') if name == 'pwrite' else args[0]
def hold(name, real):
  def wrapped(*args):
    if 'images.npy' not in target(name, args):
      return real(*args)  # The lock file's pid, the fingerprint.
    calls[name] += 1
    if name == stop_at and calls[name] == 1:
      print('at', name, flush=True)
      sys.stdin.readline()
    return real(*args)
  return wrapped
os.pwrite = hold('pwrite', os.pwrite)
os.replace = hold('replace', os.replace)
from imagenet_resized import arrays
found = arrays.load('8x8', 'train', data_dir=data_dir, workers=1)
print('done', len(found), 'pwrite calls', calls['pwrite'], flush=True)
'''


def _child(stop_at: str, data_dir: str) -> subprocess.Popen:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.Popen(
      [sys.executable, '-c', _CHILD.format(repo=str(REPO)), stop_at, data_dir],
      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True, env=env,
  )


@pytest.mark.slow
@pytest.mark.parametrize('stop_at', ['pwrite', 'replace'])
def test_killed_export_leaves_nothing_taken_as_complete(built_8, tmp_path, stop_at):
  data = copy_of(built_8, tmp_path)
  child = _child(stop_at, data)
  assert child.stdout.readline() == f'at {stop_at}\n', child.stderr.read()
  child.send_signal(signal.SIGKILL)
  child.wait()
  folder = os.path.join(data, 'imagenet_resized', '8x8', '0.1.0', 'arrays', 'train')
  assert 'fingerprint.json' not in os.listdir(folder)
  # The next load exports again and gives the split; no temporary file stays.
  found = arrays.load('8x8', 'train', data_dir=data)
  assert_same_as_tfds(built_8, 'train', found)
  assert sorted(os.listdir(folder)) == ['fingerprint.json', 'images.npy', 'labels.npy']


@pytest.mark.slow
def test_concurrent_exports_wait_then_reuse(built_8, tmp_path):
  data = copy_of(built_8, tmp_path)
  first = _child('pwrite', data)
  assert first.stdout.readline() == 'at pwrite\n', first.stderr.read()
  second = _child('none', data)
  # The second says it waits for the first (file_lock's log line) ...
  for line in second.stderr:
    if 'Waiting for another export' in line:
      break
  else:
    raise AssertionError('the second export did not wait')
  first.stdin.write('\n')
  first.stdin.flush()
  out_first, _ = first.communicate(timeout=300)
  out_second, err = second.communicate(timeout=300)
  assert first.returncode == 0 and second.returncode == 0, err[-2000:]
  assert out_first.startswith('done 800 ')
  # ... and then reuses its files without writing any.
  assert out_second == 'done 800 pwrite calls 0\n'


@pytest.mark.slow
def test_command_line_exports_then_reports(built_8, tmp_path):
  data = copy_of(built_8, tmp_path)
  cli = [sys.executable, '-m', 'imagenet_resized', 'arrays', '--config', '8x8',
         '--split', 'validation', '--data-dir', data]
  proc = run(cli, cwd=tmp_path)
  folder = os.path.join(data, 'imagenet_resized', '8x8', '0.1.0', 'arrays', 'validation')
  assert proc.stdout.startswith(f'{folder}: 90 examples of imagenet_resized/8x8 validation')
  assert 'train mean' in proc.stdout
  assert_same_as_tfds(built_8, 'validation', arrays.load('8x8', 'validation', data_dir=data))
  bad = run(cli[:-1] + [str(tmp_path / 'nothing')], cwd=tmp_path, check=False)
  assert bad.returncode == 1
  assert bad.stderr.count('\n') == 1 and 'is not prepared in' in bad.stderr


def test_remote_data_dir_needs_a_local_cache_dir():
  from imagenet_resized.array_files import array_location

  class Remote:
    data_path = 'gs://bucket/imagenet_resized/8x8/0.1.0'

  with pytest.raises(ArraysError) as e:
    array_location.folder_for(Remote(), 'train', None)
  assert str(e.value) == (
      'gs://bucket/imagenet_resized/8x8/0.1.0: not a local folder, so the'
      ' arrays cannot sit next to it; expected cache_dir=DIR (--cache-dir'
      ' DIR), a local folder for them'
  )


# ---------------------------------------------------------------------------
# Views, each run through the real library.


@pytest.mark.slow
def test_grain_data_loader_reads_every_example_once(built_8, tmp_path):
  grain = pytest.importorskip('grain.python')
  from absl import flags
  # grain's worker processes read absl flags; outside an absl app they must
  # be marked parsed first (docs/arrays.md says so too).
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  found = arrays.load('8x8', 'train', data_dir=copy_of(built_8, tmp_path))
  source = imagenet_resized.arrays.RandomAccess(found)
  loader = grain.DataLoader(
      data_source=source,
      sampler=grain.IndexSampler(
          num_records=len(source), shard_options=grain.NoSharding(),
          shuffle=True, num_epochs=1, seed=3),
      operations=[grain.Batch(batch_size=100, drop_remainder=False)],
      worker_count=2,
  )
  seen = []
  for batch in loader:
    assert batch['image'].shape[1:] == (8, 8, 3) and batch['image'].dtype == np.uint8
    seen.extend(zip(batch['image'], batch['label']))
  want = read_split(built_8, 'train')
  assert sorted((int(y), i.tobytes()) for i, y in seen) == sorted(
      (y, i.tobytes()) for i, y in want)


@pytest.mark.slow
def test_tf_data_random_batches_hold_no_copy_of_the_split(built_8, tmp_path):
  import tensorflow as tf
  found = arrays.load('8x8', 'train', data_dir=copy_of(built_8, tmp_path))
  ds = imagenet_resized.arrays.tf_random_batches(found, batch_size=64, seed=1, steps=3)
  by_image = {}
  for image, label in read_split(built_8, 'train'):
    by_image.setdefault(image.tobytes(), set()).add(label)
  batches = list(ds.as_numpy_iterator())
  assert len(batches) == 3
  for images, labels in batches:
    assert images.dtype == np.float32 and images.shape == (64, 8, 8, 3)
    for image, label in zip(images, labels):
      raw = np.rint(image * 255).astype(np.uint8)
      assert np.allclose(raw / 255, image, atol=1e-6)
      assert int(label) in by_image[raw.tobytes()]
  graph = tf.raw_ops.DatasetToGraphV2(
      input_dataset=ds._variant_tensor, external_state_policy=0)
  graph_def = tf.compat.v1.GraphDef.FromString(graph.numpy())
  split_bytes = found.images.nbytes
  biggest = max(
      (n.attr['value'].tensor.ByteSize() for n in graph_def.node if n.op == 'Const'),
      default=0,
  )
  assert biggest < 1024 < split_bytes
  # Unscaled: the stored uint8, for pipelines that normalise on the device.
  raw_ds = imagenet_resized.arrays.tf_random_batches(
      found, batch_size=64, seed=1, steps=2, scaled=False)
  for images, labels in raw_ds.as_numpy_iterator():
    assert images.dtype == np.uint8 and images.shape == (64, 8, 8, 3)
    for image, label in zip(images, labels):
      assert int(label) in by_image[image.tobytes()]


@pytest.mark.slow
def test_torch_recipe_of_the_docs_runs(built_8, tmp_path):
  """docs/arrays.md's PyTorch recipe as printed, on an 8x8 build (its
  CONFIG, DATA_DIR line pointed at it), in a fresh process. Needs torch,
  which is not in the test extra: CI installs it and sets
  IMAGENET_RESIZED_REQUIRE_TORCH, so that there the test runs, never skips."""
  if os.environ.get('IMAGENET_RESIZED_REQUIRE_TORCH'):
    import torch  # noqa: F401
  else:
    pytest.importorskip('torch')
  from test_docs import blocks
  (block,) = [b for b in blocks(REPO / 'docs' / 'arrays.md')
              if b.marker == 'tests/test_arrays.py::test_torch_recipe_of_the_docs_runs']
  data = copy_of(built_8, tmp_path)
  line = "CONFIG, DATA_DIR = '32x32', None  # None: TFDS's default data_dir"
  assert line in block.code
  code = block.code.replace(line, f'CONFIG, DATA_DIR = {"8x8"!r}, {data!r}')
  proc = run([sys.executable, '-c', code], cwd=tmp_path)
  assert proc.stdout.strip().splitlines()[-1] == (
      'torch.Size([256, 3, 8, 8]) torch.float32 torch.Size([256])')


def test_records_decode_as_tensorflow_reads_them(tmp_path):
  """The export's record reader against TensorFlow's: records written by
  tf.io.TFRecordWriter from tf.train.Example protos (deterministic), with
  PNGs and labels whose lengths cross the one- and two-byte varints, in the
  usual layout (read by `usual_stream`) and in others (an extra feature; a
  PNG of Pillow's), read from record 3 on, compared with TensorFlow's
  parse and PNG decoder."""
  import io

  import tensorflow as tf
  from PIL import Image

  from imagenet_resized.array_files import shard_records
  from imagenet_resized.formats import png_codec

  rng = np.random.default_rng(0)
  # From flat to noise: PNGs of ~70 to ~260 bytes at 8x8.
  images = np.stack([
      np.clip(128 + rng.integers(-k, k + 1, (8, 8, 3)), 0, 255).astype(np.uint8)
      for k in range(0, 256, 4)
  ])
  pngs = png_codec.encode_pngs(images)
  assert min(map(len, pngs)) < 100 and max(map(len, pngs)) > 200
  labels = [(0, 1, 127, 128, 500, 999)[i % 6] for i in range(len(pngs))]

  def example(png, label, extra=False):
    feature = {
        'image': tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
        'label': tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    if extra:
      feature['id'] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'x']))
    proto = tf.train.Example(features=tf.train.Features(feature=feature))
    return proto.SerializeToString(deterministic=True)

  from PIL import PngImagePlugin

  text = PngImagePlugin.PngInfo()
  text.add_text('Comment', 'a text chunk before IDAT')
  out = io.BytesIO()
  Image.fromarray(images[5]).save(out, format='PNG', pnginfo=text)
  records = [example(p, label) for p, label in zip(pngs, labels)]
  records += [example(pngs[7], 3, extra=True), example(out.getvalue(), 130)]
  path = str(tmp_path / 'shard.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    for record in records:
      writer.write(record)
  usual = [shard_records.usual_stream(r, 8) is not None for r in records]
  assert usual == [True] * len(pngs) + [False, False]

  task = shard_records.ShardRange(path, 'tfrecord', 3, len(records) - 3, 8)
  chunks = list(shard_records.decode_range(task))
  got_images = np.concatenate([c.images for c in chunks])
  got_labels = np.concatenate([c.labels for c in chunks])
  want_images, want_labels = [], []
  for raw in tf.data.TFRecordDataset(path).skip(3):
    proto = tf.train.Example.FromString(raw.numpy())
    feature = proto.features.feature
    want_images.append(tf.io.decode_png(feature['image'].bytes_list.value[0]).numpy())
    want_labels.append(feature['label'].int64_list.value[0])
  assert np.array_equal(got_images, np.stack(want_images))
  assert got_labels.tolist() == want_labels


def test_a_declared_length_past_the_file_is_refused_before_reading(tmp_path):
  """A record header whose length (with a valid checksum) runs past the end
  of the file: one line naming the file and record, nothing allocated."""
  import struct

  from imagenet_resized.array_files import shard_records
  from imagenet_resized.formats import tfrecord_files

  length = struct.pack('<Q', 1 << 60)
  header = length + struct.pack('<I', tfrecord_files.masked_crc32c(length))
  path = tmp_path / 'shard.tfrecord'
  path.write_bytes(tfrecord_files.framed(b'first') + header + b'\0' * 16)
  task = shard_records.ShardRange(str(path), 'tfrecord', 1, 1, 8)
  with pytest.raises(shard_records.RecordError) as raised:
    list(shard_records.decode_range(task))
  message = str(raised.value)
  assert message.startswith(f'{path}: record 1 is cut short (16 of {1 << 60} bytes)')
  assert '\n' not in message


def test_mutated_records_give_one_line_or_pixels():
  """Records whose bytes are mutated (flipped, cut, grown; framed again with
  valid checksums, as a deliberate change would be) are read as pixels or
  refused in one line naming the file: never another exception."""
  import random
  import tempfile

  from imagenet_resized.array_files import shard_records
  from imagenet_resized.formats import example_wire
  from imagenet_resized.formats import png_codec
  from imagenet_resized.formats import tfrecord_files

  rng = np.random.default_rng(3)
  images = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
  images[:3] //= 32  # Some compress, some do not.
  records = []
  for png, label in zip(png_codec.encode_pngs(images), (0, 5, 127, 128, 700, 999)):
    entries = example_wire.bytes_entry_head('image', len(png)) + png
    entries += example_wire.int_entry('label', label)
    records.append(example_wire.example_head(len(entries)) + entries)
  pick = random.Random(0)
  outcomes = {'pixels': 0, 'refused': 0}
  with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, 'shard.tfrecord')
    for _ in range(400):
      mutated = [bytearray(r) for r in records]
      target = mutated[pick.randrange(len(mutated))]
      for _ in range(pick.randint(1, 4)):
        where = pick.randrange(len(target))
        kind = pick.randrange(3)
        if kind == 0:
          target[where] ^= 1 << pick.randrange(8)
        elif kind == 1:
          del target[where:where + pick.randint(1, 40)]
        else:
          target[where:where] = bytes(pick.randrange(256) for _ in range(pick.randint(1, 8)))
      with open(path, 'wb') as f:
        for record in mutated:
          f.write(tfrecord_files.framed(bytes(record)))
      task = shard_records.ShardRange(path, 'tfrecord', 0, len(records), 8)
      try:
        chunks = list(shard_records.decode_range(task))
      except shard_records.RecordError as e:
        assert str(e).startswith(path) and '\n' not in str(e), str(e)
        outcomes['refused'] += 1
      else:
        assert sum(len(c.labels) for c in chunks) == len(records)
        outcomes['pixels'] += 1
  assert outcomes['refused'] > 100 and outcomes['pixels'] > 0, outcomes
