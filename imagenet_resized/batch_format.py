"""Reading one batch of the authors' data, in bounded memory, safely.

A batch is a dict with `data` (uint8, N rows of 3*S*S planar CHW pixels) and
`labels` (N integers in 1..1000). The authors published it in two forms:

* npz: `np.savez` output (`train_data_batch_K.npz`, `val_data.npz`), a zip of
  `.npy` members. We stream `data.npy` a chunk of rows at a time, so memory
  does not grow with the batch (a 64x64 train batch holds ~1.6 GB of pixels).
* pickle: the original Python-2 era pickled dicts (no extension). A pickle
  cannot be streamed; it is loaded whole through a restricted unpickler that
  only admits what numpy arrays, dicts, lists and numbers need.

This module knows nothing about TFDS; it works on file objects and numpy.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import zipfile
import zlib
from typing import BinaryIO, Iterator

import numpy as np

NUM_CLASSES = 1000
# Rows per chunk when streaming: 4096 rows of 64x64 are 48 MiB.
DEFAULT_CHUNK_ROWS = 4096


class SourceError(ValueError):
  """A source file is missing, malformed or not what the config expects."""


@dataclasses.dataclass(frozen=True)
class Chunk:
  """Consecutive rows of one batch, already in TFDS's conventions."""

  start: int  # Index of the first row within its batch.
  images: np.ndarray  # (n, S, S, 3) uint8, HWC.
  labels: np.ndarray  # (n,) int64, 0-based.


def rows_to_images(rows: np.ndarray, size: int) -> np.ndarray:
  """(n, 3*S*S) planar CHW rows -> (n, S, S, 3) HWC images (contiguous)."""
  n = rows.shape[0]
  return np.ascontiguousarray(rows.reshape(n, 3, size, size).transpose(0, 2, 3, 1))


def size_of_width(width: int) -> int | None:
  """The image size S whose rows are `width` = 3*S*S values wide, if any."""
  side = int(round((width / 3) ** 0.5))
  return side if 3 * side * side == width else None


def check_rows(where: str, shape: tuple[int, ...], dtype: np.dtype, size: int) -> None:
  """Raises SourceError unless `data` has the layout of the SxS config."""
  if np.dtype(dtype) != np.uint8:
    raise SourceError(
        f'{where}: `data` has dtype {np.dtype(dtype)}; expected uint8 pixel values'
    )
  if len(shape) != 2:
    raise SourceError(
        f'{where}: `data` has shape {tuple(shape)}; expected a 2-D array of'
        f' rows, each 3*{size}*{size} = {3 * size * size} values wide'
    )
  width = shape[1]
  if width != 3 * size * size:
    fits = size_of_width(width)
    hint = (
        f'rows of {width} values are {fits}x{fits} images'
        if fits
        else f'rows of {width} values fit no square RGB image'
    )
    raise SourceError(
        f'{where}: {hint}; this is the {size}x{size} config, which expects rows'
        f' of {3 * size * size} values'
    )


def check_labels(where: str, labels: np.ndarray, num_rows: int) -> np.ndarray:
  """Validates 1-based labels and returns them 0-based as int64."""
  labels = np.asarray(labels)
  if labels.ndim != 1:
    raise SourceError(
        f'{where}: `labels` has shape {labels.shape}; expected a list of'
        f' {num_rows} labels, one per row of `data`'
    )
  if labels.shape[0] != num_rows:
    raise SourceError(
        f'{where}: `labels` holds {labels.shape[0]} labels but `data` holds'
        f' {num_rows} rows; expected one label per row'
    )
  if num_rows and not np.issubdtype(labels.dtype, np.integer):
    raise SourceError(
        f'{where}: `labels` has dtype {labels.dtype}; expected integers 1..1000'
    )
  labels = labels.astype(np.int64)
  bad = (labels < 1) | (labels > NUM_CLASSES)
  if bad.any():
    i = int(np.argmax(bad))
    raise SourceError(
        f'{where}: `labels` holds {labels[i]} at row {i}; expected labels'
        f' 1..{NUM_CLASSES} (the authors\' labels are 1-based)'
    )
  return labels - 1


# ----------------------------------------------------------------------------
# npz, streamed.


def _npy_header(fp: BinaryIO, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
  """Reads a .npy header (numpy's own parser) and leaves fp at the data."""
  version = np.lib.format.read_magic(fp)
  if version == (1, 0):
    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
  elif version in ((2, 0), (3, 0)):
    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
  else:
    raise SourceError(f'{where}: unsupported .npy format version {version}')
  if dtype.hasobject:
    raise SourceError(
        f'{where}: holds Python objects (a pickle); expected plain numbers'
    )
  return tuple(shape), fortran, dtype


# What reading a corrupt or truncated zip (or a zip inside a zip) can raise.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)


def _read_exact(fp: BinaryIO, n: int, where: str) -> bytes:
  buf = fp.read(n)
  if len(buf) != n:
    raise SourceError(
        f'{where}: file ends early (truncated): expected {n} more bytes, got'
        f' {len(buf)}'
    )
  return buf


def _npz_member(npz: zipfile.ZipFile, key: str, where: str) -> str:
  names = {n: n for n in npz.namelist()}
  for candidate in (f'{key}.npy', key):
    if candidate in names:
      return candidate
  raise SourceError(
      f'{where}: no `{key}` array in the npz (it holds'
      f' {sorted(n.removesuffix(".npy") for n in names)}); expected `data` and'
      ' `labels`'
  )


def iter_npz_chunks(
    fileobj: BinaryIO, where: str, size: int, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[Chunk]:
  """Streams a batch in npz form from a seekable binary file object.

  Peak memory is about one chunk of rows, whatever the batch size. Pickled
  objects are never loaded (the header is refused if it declares objects).
  """
  try:
    npz = zipfile.ZipFile(fileobj)
  except ZIP_ERRORS as e:
    raise SourceError(
        f'{where}: not a readable npz (corrupt or truncated zip: {e}); expected'
        ' an np.savez file with `data` and `labels`'
    ) from None
  try:
    with npz:
      labels_name = _npz_member(npz, 'labels', where)
      data_name = _npz_member(npz, 'data', where)
      with npz.open(labels_name) as fp:
        _npy_header(fp, f'{where}:{labels_name}')  # Refuses pickled objects.
        fp.seek(0)
        raw_labels = np.lib.format.read_array(fp, allow_pickle=False)
      with npz.open(data_name) as fp:
        shape, fortran, dtype = _npy_header(fp, f'{where}:{data_name}')
        check_rows(where, shape, dtype, size)
        if fortran and shape[0] > 1:
          raise SourceError(
              f'{where}: `data` is stored in Fortran order; expected C order'
              ' rows as np.savez writes them'
          )
        num_rows = shape[0]
        labels = check_labels(where, raw_labels, num_rows)
        row_bytes = 3 * size * size
        for start in range(0, num_rows, chunk_rows):
          n = min(chunk_rows, num_rows - start)
          buf = _read_exact(fp, n * row_bytes, f'{where}:{data_name}')
          rows = np.frombuffer(buf, dtype=np.uint8).reshape(n, row_bytes)
          yield Chunk(start, rows_to_images(rows, size), labels[start : start + n])
  except SourceError:
    raise
  except (*ZIP_ERRORS, ValueError) as e:
    raise SourceError(
        f'{where}: corrupt or truncated npz ({type(e).__name__}: {e}); expected'
        ' an np.savez file with `data` and `labels`'
    ) from None


# ----------------------------------------------------------------------------
# pickle, loaded whole through a restricted unpickler.

# The only globals a pickled batch needs: numpy's array reconstruction (under
# its numpy 1.x and 2.x module names) and, for pickles written by Python 3 at
# protocol < 3, the codec call that rebuilds `bytes`.
_ALLOWED_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): ('numpy._core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'): ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'): ('numpy._core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'): ('numpy._core.multiarray', 'scalar'),
    ('numpy.core.numeric', '_frombuffer'): ('numpy._core.numeric', '_frombuffer'),
    ('numpy._core.numeric', '_frombuffer'): ('numpy._core.numeric', '_frombuffer'),
    ('numpy', 'ndarray'): ('numpy', 'ndarray'),
    ('numpy', 'dtype'): ('numpy', 'dtype'),
    ('_codecs', 'encode'): ('_codecs', 'encode'),
}


class _BatchUnpickler(pickle.Unpickler):
  """Refuses every global but those numpy arrays are rebuilt from."""

  def __init__(self, fileobj: BinaryIO, where: str):
    super().__init__(fileobj, encoding='latin1')
    self._where = where

  def find_class(self, module: str, name: str):
    target = _ALLOWED_GLOBALS.get((module, name))
    if target is None:
      raise SourceError(
          f'{self._where}: the pickle asks for `{module}.{name}`, which is not'
          ' allowed; a batch pickle may only hold numpy arrays, dicts, lists'
          ' and numbers'
      )
    return super().find_class(*target)


def load_pickle_batch(fileobj: BinaryIO, where: str) -> dict:
  """Loads a pickled batch dict; never runs code from the file."""
  try:
    batch = _BatchUnpickler(fileobj, where).load()
  except SourceError:
    raise
  except Exception as e:  # pickle raises many kinds on corrupt input.
    raise SourceError(
        f'{where}: corrupt or truncated pickle ({type(e).__name__}: {e});'
        ' expected a pickled dict with `data` and `labels`'
    ) from None
  if not isinstance(batch, dict):
    raise SourceError(
        f'{where}: the pickle holds a {type(batch).__name__}; expected a dict'
        ' with `data` and `labels`'
    )
  return batch


def iter_pickle_chunks(
    fileobj: BinaryIO, where: str, size: int, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[Chunk]:
  """Reads a batch in pickle form (whole, as pickles cannot stream)."""
  batch = load_pickle_batch(fileobj, where)
  for key in ('data', 'labels'):
    if key not in batch:
      raise SourceError(
          f'{where}: no `{key}` in the pickled dict (it holds'
          f' {sorted(map(str, batch))}); expected `data` and `labels`'
      )
  data = batch['data']
  if not isinstance(data, np.ndarray):
    raise SourceError(
        f'{where}: `data` is a {type(data).__name__}; expected a uint8 numpy array'
    )
  check_rows(where, data.shape, data.dtype, size)
  labels = check_labels(where, np.asarray(batch['labels']), data.shape[0])
  del batch
  for start in range(0, data.shape[0], chunk_rows):
    rows = data[start : start + chunk_rows]
    yield Chunk(start, rows_to_images(rows, size), labels[start : start + len(rows)])


def iter_chunks(
    fileobj: BinaryIO, where: str, size: int, is_npz: bool,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[Chunk]:
  reader = iter_npz_chunks if is_npz else iter_pickle_chunks
  return reader(fileobj, where, size, chunk_rows)


def read_npz_header(fileobj: BinaryIO) -> tuple[int, ...] | None:
  """Shape of `data` in an npz, or None if it is not a readable npz."""
  try:
    with zipfile.ZipFile(fileobj) as npz:
      name = _npz_member(npz, 'data', '')
      with npz.open(name) as fp:
        return _npy_header(fp, '')[0]
  except (SourceError, *ZIP_ERRORS, ValueError):
    return None


def as_seekable(fileobj: BinaryIO) -> BinaryIO:
  """Zip members are seekable in Python >= 3.7; other streams are buffered."""
  if fileobj.seekable():
    return fileobj
  return io.BytesIO(fileobj.read())
