"""Every compression method a zip may use reads the same rows.

The authors' zips are deflated; a user who re-zipped them with bzip2 or
LZMA (`zip -Z bzip2`, 7-Zip) gets the same examples. Expected values are
the batch as written, rebuilt with plain numpy.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from imagenet_resized.tools import fake
from imagenet_resized.authors import batch_files

SIZE = 8
METHODS = {
    'stored': zipfile.ZIP_STORED, 'deflate': zipfile.ZIP_DEFLATED,
    'bzip2': zipfile.ZIP_BZIP2, 'lzma': zipfile.ZIP_LZMA,
}


def _npz(batch: dict, method: int) -> bytes:
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, 'w', method) as zf:
    for key in ('data', 'labels'):
      member = io.BytesIO()
      np.lib.format.write_array(member, np.asarray(batch[key]))
      zf.writestr(f'{key}.npy', member.getvalue())
  return buf.getvalue()


def _hwc(batch: dict) -> np.ndarray:
  rows = batch['data']
  return rows.reshape(len(rows), 3, SIZE, SIZE).transpose(0, 2, 3, 1)


@pytest.mark.parametrize('outer', METHODS)
@pytest.mark.parametrize('inner', METHODS)
def test_npz_in_a_zip_reads_alike_whatever_the_methods(outer, inner, tmp_path):
  batch = fake.make_batch(np.random.default_rng(1), 50, SIZE)
  path = tmp_path / 'Imagenet8_val_npz.zip'
  with zipfile.ZipFile(path, 'w', METHODS[outer]) as zf:
    zf.writestr('val_data.npz', _npz(batch, METHODS[inner]))
  b = batch_files.Batch(str(path), 'val_data.npz', 'val_data.npz', True)
  chunks = list(b.chunks(SIZE, chunk_rows=7))
  np.testing.assert_array_equal(np.concatenate([c.images for c in chunks]), _hwc(batch))
  np.testing.assert_array_equal(
      np.concatenate([c.labels for c in chunks]), np.asarray(batch['labels']) - 1
  )


@pytest.mark.parametrize('outer', METHODS)
def test_pickle_in_a_zip_reads_alike_whatever_the_method(outer, tmp_path):
  batch = fake.make_batch(np.random.default_rng(2), 50, SIZE)
  path = tmp_path / 'Imagenet8_val.zip'
  with zipfile.ZipFile(path, 'w', METHODS[outer]) as zf:
    zf.writestr('val_data', fake.py2_pickle_bytes(batch))
  b = batch_files.Batch(str(path), 'val_data', 'val_data', False)
  chunks = list(b.chunks(SIZE, chunk_rows=7))
  np.testing.assert_array_equal(np.concatenate([c.images for c in chunks]), _hwc(batch))
  np.testing.assert_array_equal(
      np.concatenate([c.labels for c in chunks]), np.asarray(batch['labels']) - 1
  )
