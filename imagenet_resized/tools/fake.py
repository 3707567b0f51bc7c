"""Writes fake sources in the authors' exact names and layout.

For `dummy_data/`, the tests and the benchmarks: image-like content (no two
corners alike, so a wrong transpose or channel order shows), labels covering
1 and 1000, byte-for-byte deterministic for a seed (fixed zip timestamps).
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
import io
import os
import pickle
import struct
import zipfile

import numpy as np

from imagenet_resized import common
from imagenet_resized.authors import publication

# Zip timestamps are fixed so that the same call writes the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def make_images(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
  """(n, S, S, 3) uint8 image-like HWC pictures: a gradient and a shape."""
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
  images = np.empty((n, size, size, 3), np.uint8)
  for i in range(n):
    c0, c1 = rng.integers(0, 256, size=(2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx + np.sin(angle) * yy + 1.5) / 3.0
    img = (
        c0[None, None, :] * (1 - t[..., None])
        + c1[None, None, :] * t[..., None]
    )
    # A disc or a box in a random colour, off-centre.
    cy, cx = rng.uniform(0.2, 0.8, size=2)
    r = rng.uniform(0.1, 0.3)
    if rng.integers(2):
      mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    else:
      mask = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r * 0.6)
    img[mask] = rng.integers(0, 256, size=3)
    # A marker in the top-left corner: red along x, green along y.
    k = max(1, size // 8)
    img[0, :k] = (255, 0, 0)
    img[:k, 0] = (0, 255, 0)
    img[0, 0] = (0, 0, 255)
    images[i] = np.clip(img, 0, 255).astype(np.uint8)
  return images


def images_to_rows(images: np.ndarray) -> np.ndarray:
  """(n, S, S, 3) HWC -> (n, 3*S*S) planar CHW rows, the authors' layout."""
  return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(
      len(images), -1
  )


def make_batch(
    rng: np.random.Generator, n: int, size: int, edge_labels: bool = True
) -> dict:
  """A batch dict as the authors store it: `data` rows, 1-based `labels`."""
  labels = rng.integers(1, 1001, size=n)
  if edge_labels and n >= 2:
    labels[0], labels[-1] = 1, 1000
  return {'data': images_to_rows(make_images(rng, n, size)), 'labels': labels}


def write_npz(fileobj, arrays: dict[str, np.ndarray]) -> None:
  """Writes what `np.savez(fileobj, **arrays)` does, with fixed timestamps."""
  with zipfile.ZipFile(fileobj, 'w', zipfile.ZIP_STORED) as zf:
    for name, array in arrays.items():
      info = zipfile.ZipInfo(f'{name}.npy', _ZIP_DATE)
      with zf.open(info, 'w', force_zip64=True) as f:
        np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
  """`write_npz` into memory."""
  buf = io.BytesIO()
  write_npz(buf, arrays)
  return buf.getvalue()


# The function numpy pickles an array as a call of (`_reconstruct`).
_RECONSTRUCT = np.zeros(0).__reduce__()[0]


class _Py2Pickler(pickle._Pickler):
  """Writes pickles as Python 2 wrote them for the authors: Python 2's
  opcodes for byte strings, and numpy 1.x's global names."""

  dispatch = dict(pickle._Pickler.dispatch)
  _NUMPY_GLOBALS = {
      _RECONSTRUCT: b'numpy.core.multiarray\n_reconstruct\n',
      np.ndarray: b'numpy\nndarray\n',
      np.dtype: b'numpy\ndtype\n',
  }

  def save_bytes(self, obj):  # As Python 2 `str`.
    n = len(obj)
    if self.proto == 0:
      self.write(pickle.STRING + _py2_repr(obj) + b'\n')
    elif n < 256:
      self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
    else:
      self.write(pickle.BINSTRING + struct.pack('<i', n) + obj)
    self.memoize(obj)

  dispatch[bytes] = save_bytes

  def save_global(self, obj, name=None):
    if obj not in self._NUMPY_GLOBALS:
      return super().save_global(obj, name)
    self.write(pickle.GLOBAL + self._NUMPY_GLOBALS[obj])
    self.memoize(obj)


def _py2_repr(data: bytes) -> bytes:
  """Python 2's `repr` of a `str` (its protocol 0 STRING argument): quoted
  with `"`, `'` unescaped, when the text holds `'` and no `"`."""
  body = codecs.escape_encode(data)[0]
  if b"'" in data and b'"' not in data:
    return b'"' + body.replace(b"\\'", b"'") + b'"'
  return b"'" + body + b"'"


def py2_pickle_bytes(batch: dict, protocol: int = 2) -> bytes:
  """A batch dict pickled as Python 2 pickled the authors' batches, at
  protocol 2 (cPickle's highest), 1 or 0 (Python 2's default)."""
  as_py2 = {
      k.encode('latin1'): (v.tolist() if k == 'labels' else v)
      for k, v in batch.items()
  }
  buf = io.BytesIO()
  _Py2Pickler(buf, protocol=protocol).dump(as_py2)
  return buf.getvalue()


def batch_bytes(batch: dict, fmt: str) -> bytes:
  if fmt == 'npz':
    return npz_bytes(batch)
  if fmt == 'pickle':
    return py2_pickle_bytes(batch)
  raise ValueError(f'unknown format {fmt!r}; expected npz or pickle')


def write_zip(path: str, members: Sequence[tuple[str, bytes]]) -> None:
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf:
    for name, data in members:
      info = zipfile.ZipInfo(name, _ZIP_DATE)
      info.compress_type = zipfile.ZIP_DEFLATED
      info.external_attr = 0o644 << 16
      zf.writestr(info, data)


def write_sources(
    out_dir: str,
    size: int,
    fmt: str = 'npz',
    train_batches: int = 3,
    examples_per_batch: int = 10,
    val_examples: int = 10,
    seed: int = 0,
    zipped: bool = True,
    train_folder: bool = True,
) -> list[str]:
  """Writes one config's sources; returns the paths written.

  zipped: the authors' zips (`Imagenet{S}_train_npz.zip`, ...); otherwise the
  extracted batch files in `Imagenet{S}_train/` and `Imagenet{S}_val/`.
  train_folder: train members sit in a folder of their zip (val ones do not).
  """
  if not 1 <= train_batches <= publication.NUM_TRAIN_BATCHES:
    raise ValueError(f'train_batches must be 1..10, got {train_batches}')
  rng = np.random.default_rng([seed, size])
  ext = '.npz' if fmt == 'npz' else ''
  train = [
      (f'train_data_batch_{k}{ext}', make_batch(rng, examples_per_batch, size))
      for k in range(1, train_batches + 1)
  ]
  for _, batch in train:
    batch['mean'] = batch['data'].mean(axis=0, dtype=np.float64)
  val = [(f'val_data{ext}', make_batch(rng, val_examples, size))]
  os.makedirs(out_dir, exist_ok=True)
  written = []
  npz = fmt == 'npz'
  train_archives = publication.archive_names(size, common.TRAIN, npz)
  # Batches are shared out between the train archives (64x64 has two parts).
  per_archive = -(-len(train) // len(train_archives))
  groups = [
      (name, train[i * per_archive : (i + 1) * per_archive], train_folder)
      for i, name in enumerate(train_archives)
  ]
  groups.append(
      (publication.archive_names(size, common.VALIDATION, npz)[0], val, False)
  )
  for archive, batches, in_folder in groups:
    folder = archive.removesuffix('.zip')
    members = [
        (f'{folder}/{name}' if in_folder else name, batch_bytes(batch, fmt))
        for name, batch in batches
    ]
    if zipped:
      path = os.path.join(out_dir, archive)
      write_zip(path, members)
      written.append(path)
    else:
      for name, data in members:
        path = os.path.join(out_dir, folder, os.path.basename(name))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
          f.write(data)
        written.append(path)
  return written


# Layout of the bundled `dummy_data/`: every size, npz zips, three train
# batches (64x64: two in part1, one in part2), train members in a folder.
DUMMY_TRAIN_BATCHES = 3
DUMMY_EXAMPLES_PER_BATCH = 6
DUMMY_VAL_EXAMPLES = 5


def write_dummy_data(out_dir: str) -> list[str]:
  """Writes the repository's `dummy_data/` (all four sizes)."""
  written = []
  for size in common.SIZES:
    written += write_sources(
        out_dir,
        size,
        fmt='npz',
        train_batches=DUMMY_TRAIN_BATCHES,
        examples_per_batch=DUMMY_EXAMPLES_PER_BATCH,
        val_examples=DUMMY_VAL_EXAMPLES,
        seed=0,
    )
  return written
