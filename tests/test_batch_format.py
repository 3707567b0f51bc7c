"""The batch reader: both published forms, streamed npz, restricted pickles.

No TFDS here: batches are read straight from the bytes `imagenet_resized.tools.fake`
writes, and compared with the arrays it wrote them from.
"""

import io
import os
import pickle
import pickletools
import zipfile

import numpy as np
import pytest

import fake_helpers
from imagenet_resized.readers import batch_chunks, npz_batches, pickle_batches
from imagenet_resized.tools import fake
from imagenet_resized.common import SourceError

SIZE = 8
ROWS = 11


@pytest.fixture(scope='module')
def batch() -> dict:
  rng = np.random.default_rng(7)
  return fake.make_batch(rng, ROWS, SIZE)


def expected_images(batch: dict) -> np.ndarray:
  """HWC images from the authors' planar rows, independently of the reader."""
  return np.stack([
      np.stack([row[c * SIZE * SIZE : (c + 1) * SIZE * SIZE].reshape(SIZE, SIZE)
                for c in range(3)], axis=-1)
      for row in batch['data']
  ])


def read_all(fileobj, is_npz: bool, chunk_rows: int, where: str = 'b', size: int = SIZE):
  read = npz_batches.iter_npz_chunks if is_npz else pickle_batches.iter_pickle_chunks
  chunks = list(read(fileobj, where, size, chunk_rows))
  return (chunks, np.concatenate([c.images for c in chunks]),
          np.concatenate([c.labels for c in chunks]))


@pytest.mark.parametrize('fmt', ['npz', 'pickle'])
@pytest.mark.parametrize('chunk_rows', [1, 4, ROWS, 100])
def test_reads_both_forms_in_chunks(batch, fmt, chunk_rows):
  data = fake.batch_bytes(batch, fmt)
  chunks, images, labels = read_all(io.BytesIO(data), fmt == 'npz', chunk_rows)
  np.testing.assert_array_equal(images, expected_images(batch))
  assert images.shape == (ROWS, SIZE, SIZE, 3) and images.dtype == np.uint8
  np.testing.assert_array_equal(labels, np.asarray(batch['labels']) - 1)
  assert [c.start for c in chunks] == list(range(0, ROWS, chunk_rows))
  assert all(len(c.images) <= chunk_rows for c in chunks)


def test_fake_pickle_is_python2_style(batch):
  """The fake pickles use Python 2's opcodes and numpy 1.x's module name."""
  ops = {op.name for op, _, _ in pickletools.genops(fake.py2_pickle_bytes(batch))}
  assert 'BINSTRING' in ops  # The pixel bytes, as a Python 2 str.
  assert 'SHORT_BINSTRING' in ops  # The dict keys.
  assert b'numpy.core.multiarray\n_reconstruct' in fake.py2_pickle_bytes(batch)
  stored = fake_helpers.read_batch_file(fake.py2_pickle_bytes(batch), False)
  assert isinstance(stored['labels'], list)


@pytest.mark.parametrize('protocol', [2, 4, 5])
def test_reads_python3_pickles_too(batch, protocol):
  """Pickles of today's numpy (numpy._core, _codecs.encode, protocol 5)."""
  as_py3 = {'data': batch['data'], 'labels': batch['labels'].tolist()}
  data = pickle.dumps(as_py3, protocol=protocol)
  _, images, labels = read_all(io.BytesIO(data), False, 4)
  np.testing.assert_array_equal(images, expected_images(batch))
  np.testing.assert_array_equal(labels, np.asarray(batch['labels']) - 1)


class _ReadSizes(io.RawIOBase):
  """A seekable file that records the size of every read asked of it."""

  def __init__(self, data: bytes):
    self._buf = io.BytesIO(data)
    self.reads = []

  def readable(self):
    return True

  def seekable(self):
    return True

  def seek(self, offset, whence=0):
    return self._buf.seek(offset, whence)

  def tell(self):
    return self._buf.tell()

  def read(self, n=-1):
    self.reads.append(n)
    return self._buf.read(n)

  def readinto(self, b):
    data = self.read(len(b))
    b[: len(data)] = data
    return len(data)


def test_npz_inside_a_deflated_zip_is_streamed(tmp_path, monkeypatch):
  """Rows come from the npy in the npz in the zip one chunk at a time.

  Every read asked of the archive is bounded by a chunk of rows (or zipfile's
  own read sizes, shrunk here so that the bound shows on a small batch).
  """
  monkeypatch.setattr(zipfile.ZipExtFile, 'MAX_SEEK_READ', 4096)
  rows, chunk_rows = 3000, 16
  big = fake.make_batch(np.random.default_rng(3), rows, SIZE)
  outer = tmp_path / 'Imagenet8_train_npz.zip'
  fake.write_zip(str(outer), [('Imagenet8_train_npz/train_data_batch_1.npz', fake.npz_bytes(big))])
  spy = _ReadSizes(outer.read_bytes())
  with zipfile.ZipFile(spy) as zf, zf.open('Imagenet8_train_npz/train_data_batch_1.npz') as member:
    spy.reads.clear()
    _, images, labels = read_all(member, True, chunk_rows)
  np.testing.assert_array_equal(images, np.stack([
      r.reshape(3, SIZE, SIZE).transpose(1, 2, 0) for r in big['data']
  ]))
  np.testing.assert_array_equal(labels, big['labels'] - 1)
  chunk_bytes = chunk_rows * 3 * SIZE * SIZE
  assert max(spy.reads) <= max(chunk_bytes, zipfile.ZipExtFile.MIN_READ_SIZE)
  assert sum(spy.reads) >= os.path.getsize(outer) // 2  # It did read the batch.
  assert big['data'].nbytes > 100 * max(spy.reads)


def test_npz_object_arrays_are_refused(batch):
  """npz is read with pickles disallowed: an object array stops the read."""
  buf = io.BytesIO()
  np.savez(buf, data=batch['data'], labels=np.array(batch['labels'].tolist(), dtype=object))
  with pytest.raises(SourceError) as e:
    read_all(io.BytesIO(buf.getvalue()), True, 4, where='x.npz')
  assert str(e.value) == (
      'x.npz:labels.npy: holds Python objects (a pickle); expected plain numbers'
  )


class _Touch:
  """Unpickling this would create a file (if the unpickler ran it)."""

  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return (open, (self.path, 'w'))


def test_malicious_pickle_never_runs(batch, tmp_path):
  target = tmp_path / 'pwned'
  evil = pickle.dumps({'data': batch['data'], 'labels': _Touch(str(target))}, protocol=2)
  with pytest.raises(SourceError) as e:
    read_all(io.BytesIO(evil), False, 4, where='val_data')
  assert not target.exists()
  assert str(e.value) == (
      f'val_data: the pickle asks for `{open.__module__}.{open.__name__}`, which is'
      ' not allowed; a batch pickle may only hold numpy arrays, dicts, lists'
      ' and numbers'
  )
  assert not os.path.exists(target)


@pytest.mark.parametrize('width, fits', [
    (3 * 16 * 16, 16), (3 * 64 * 64, 64), (192, 8), (100, None), (3 * 7 * 7, 7),
])
def test_size_of_width(width, fits):
  assert batch_chunks.size_of_width(width) == fits
