"""Reading one batch of the authors' data, in bounded memory, safely.

A batch is a dict with `data` (uint8, N rows of 3*S*S planar CHW pixels) and
`labels` (N integers in 1..1000). The authors published it in two forms:

* npz: `np.savez` output (`train_data_batch_K.npz`, `val_data.npz`), a zip of
  `.npy` members. We stream `data.npy` a chunk of rows at a time, so memory
  does not grow with the batch (a 64x64 train batch holds ~1.6 GB of pixels).
* pickle: the original Python-2 era pickled dicts (no extension). A pickle
  is never unpickled: its opcodes are parsed into inert records
  (`inert_pickle`), checked against the forms numpy pickles arrays in
  (`pickled_numpy`), and the arrays are built here with np.frombuffer; the
  pixels stay in the file until then and are read a chunk of rows at a time.

Every size a file declares is checked against the others and against the
bytes that back it before anything is allocated; every refusal is a
SourceError of one line: `{file}:{member}: what is wrong; expected ...`.

This module knows nothing about TFDS; it works on file objects and numpy.
"""

from __future__ import annotations

import dataclasses
import io
import lzma
import math
import tokenize
import zipfile
import zlib
from typing import BinaryIO, Iterator

import numpy as np

from imagenet_resized import inert_pickle, pickle_strings, pickled_numpy
from imagenet_resized import one_line, zip_members
from imagenet_resized.one_line import listed, shown
from imagenet_resized.source_error import SourceError  # Re-exported.

NUM_CLASSES = 1000
# Rows per chunk when streaming: 4096 rows of 64x64 are 48 MiB.
DEFAULT_CHUNK_ROWS = 4096
# The published batches hold at most 128,123 rows; 8 times that is refused
# from the header, before anything is read (a file may declare anything).
MAX_ROWS_PER_BATCH = 1 << 20
# The pixels of the largest batch allowed (the most rows, 64x64): no array,
# string or member of a batch file may declare more.
MAX_BATCH_BYTES = MAX_ROWS_PER_BATCH * 3 * 64 * 64


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
  side = math.isqrt(max(width, 0) // 3)  # Exact for any int a header declares.
  return side if 3 * side * side == width else None


def check_rows(
    where: str, shape: tuple[int, ...], dtype: np.dtype, size: int,
    fortran: bool = False,
) -> None:
  """Raises SourceError unless `data` has the layout of the SxS config:
  2-D uint8 rows of 3*S*S values, in C order, at most MAX_ROWS_PER_BATCH."""
  if np.dtype(dtype) != np.uint8:
    raise SourceError(
        f'{where}: `data` has dtype {np.dtype(dtype)}; expected uint8 pixel values'
    )
  if len(shape) != 2:
    raise SourceError(
        f'{where}: `data` has shape {one_line.shape(shape)}; expected a 2-D array of'
        f' rows, each 3*{size}*{size} = {3 * size * size} values wide'
    )
  if shape[0] > MAX_ROWS_PER_BATCH:
    raise SourceError(
        f'{where}: `data` declares {one_line.quantity(shape[0])} rows; expected at most'
        f' {MAX_ROWS_PER_BATCH} (the published batches hold at most 128123)'
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
  if fortran and shape[0] > 1:
    raise SourceError(
        f'{where}: `data` is stored in Fortran order; expected C order'
        ' rows as np.savez writes them'
    )


def check_label_count(
    where: str, shape: tuple[int, ...], dtype: np.dtype, num_rows: int
) -> None:
  """Raises SourceError unless `labels` (as declared) fit `num_rows` rows.

  Checked from the declared shape and dtype, before any label is read.
  """
  if len(shape) != 1:
    raise SourceError(
        f'{where}: `labels` has shape {one_line.shape(shape)}; expected a list of'
        f' {num_rows} labels, one per row of `data`'
    )
  if shape[0] != num_rows:
    raise SourceError(
        f'{where}: `labels` holds {one_line.quantity(shape[0])} labels but `data` holds'
        f' {num_rows} rows; expected one label per row'
    )
  if num_rows and not np.issubdtype(dtype, np.integer):
    raise SourceError(
        f'{where}: `labels` has dtype {dtype}; expected integers 1..1000'
    )


def zero_based_labels(where: str, labels: np.ndarray) -> np.ndarray:
  """Checks 1-based integer labels and returns them 0-based as int64."""
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

# numpy's own limit on a .npy header (a dict literal of a few dozen bytes).
MAX_NPY_HEADER = 10_000
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
    (3, 0): np.lib.format.read_array_header_2_0,
}


def read_npy_header(fp: BinaryIO, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
  """Reads a .npy header (numpy's own parser) and leaves fp at the data.

  Refuses dtypes other than plain numbers (objects, fields, subarrays).
  """
  read_header = None
  try:
    version = np.lib.format.read_magic(fp)
    read_header = _NPY_HEADER_READERS.get(version)
    if read_header is not None:
      shape, fortran, dtype = read_header(fp, max_header_size=MAX_NPY_HEADER)
  except (
      ValueError, TypeError, OverflowError, SyntaxError, EOFError,
      tokenize.TokenError, RecursionError,  # numpy's parser of the header dict.
  ) as e:
    raise SourceError(
        f'{where}: not a readable .npy header ({type(e).__name__}:'
        f' {_first_line(e)}); expected an array as np.save writes it'
    ) from None
  if read_header is None:
    raise SourceError(f'{where}: unsupported .npy format version {version}')
  if dtype.hasobject:
    raise SourceError(
        f'{where}: holds Python objects (a pickle); expected plain numbers'
    )
  if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in 'biuf':
    raise SourceError(
        f'{where}: has dtype {dtype}, which is not a plain number type;'
        ' expected plain numbers'
    )
  if any(n < 0 for n in shape):
    raise SourceError(
        f'{where}: declares shape {one_line.shape(shape)}; expected sizes >= 0'
    )
  return tuple(shape), fortran, dtype


def _first_line(e: BaseException) -> str:
  return shown(str(e).splitlines()[0] if str(e) else '', 120)


@dataclasses.dataclass(frozen=True)
class NpyMember:
  """An npz member's .npy header, checked against the member's size."""

  name: str
  shape: tuple[int, ...]
  fortran: bool
  dtype: np.dtype
  offset: int  # Of the data, within the member.


def _npy_member(npz: zipfile.ZipFile, name: str, where: str) -> NpyMember:
  with zip_members.open_member(npz, name, f'{where}:{name}') as fp:
    shape, fortran, dtype = read_npy_header(fp, f'{where}:{name}')
    return NpyMember(name, shape, fortran, dtype, fp.tell())


def _check_member_size(npz: zipfile.ZipFile, member: NpyMember, where: str) -> None:
  """The header's shape x itemsize must be what the zip member holds."""
  declared = math.prod(member.shape) * member.dtype.itemsize
  held = npz.getinfo(member.name).file_size - member.offset
  if declared != held:
    raise SourceError(
        f'{where}:{member.name}: the .npy header declares shape'
        f' {one_line.shape(member.shape)}'
        f' of {member.dtype} ({declared} bytes) but the member holds {held}'
        ' bytes after it; expected the two to agree'
    )


# What reading a corrupt or truncated zip (or a zip inside a zip) can raise:
# zipfile raises NotImplementedError for compression features it lacks,
# RuntimeError for encrypted members, UnicodeDecodeError for names flagged
# UTF-8 that are not; lzma its own error.
ZIP_ERRORS = (
    zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
    RuntimeError, UnicodeDecodeError, lzma.LZMAError,
)


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
  held = sorted(n.removesuffix('.npy') for n in names)
  raise SourceError(
      f'{where}: no `{key}` array in the npz (it holds {listed(held)});'
      ' expected `data` and `labels`'
  )


def _iter_rows(
    read, num_rows: int, size: int, labels: np.ndarray, chunk_rows: int
) -> Iterator[Chunk]:
  """Chunks of rows, `read(n)` giving the next n bytes of rows."""
  row_bytes = 3 * size * size
  for start in range(0, num_rows, chunk_rows):
    n = min(chunk_rows, num_rows - start)
    rows = np.frombuffer(read(n * row_bytes), dtype=np.uint8).reshape(n, row_bytes)
    yield Chunk(start, rows_to_images(rows, size), labels[start : start + n])


def iter_npz_chunks(
    fileobj: BinaryIO, where: str, size: int, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[Chunk]:
  """Streams a batch in npz form from a seekable binary file object.

  Peak memory is about one chunk of rows, whatever the batch size. Every
  size in the .npy headers is checked against the others and against the
  zip members before anything is read past the headers; pickled objects are
  never loaded.
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
      labels_member = _npy_member(npz, _npz_member(npz, 'labels', where), where)
      data_member = _npy_member(npz, _npz_member(npz, 'data', where), where)
      check_rows(
          where, data_member.shape, data_member.dtype, size, data_member.fortran
      )
      num_rows = data_member.shape[0]
      check_label_count(where, labels_member.shape, labels_member.dtype, num_rows)
      _check_member_size(npz, labels_member, where)
      _check_member_size(npz, data_member, where)
      with zip_members.open_member(
          npz, labels_member.name, f'{where}:{labels_member.name}'
      ) as fp:
        fp.seek(labels_member.offset)
        raw = _read_exact(
            fp, num_rows * labels_member.dtype.itemsize,
            f'{where}:{labels_member.name}',
        )
      labels = zero_based_labels(where, np.frombuffer(raw, labels_member.dtype))
      with zip_members.open_member(
          npz, data_member.name, f'{where}:{data_member.name}'
      ) as fp:
        fp.seek(data_member.offset)
        where_data = f'{where}:{data_member.name}'
        yield from _iter_rows(
            lambda n: _read_exact(fp, n, where_data), num_rows, size, labels,
            chunk_rows,
        )
  except SourceError:
    raise
  except (*ZIP_ERRORS, ValueError) as e:
    raise SourceError(
        f'{where}: corrupt or truncated npz ({type(e).__name__}: {e}); expected'
        ' an np.savez file with `data` and `labels`'
    ) from None


# ----------------------------------------------------------------------------
# pickle, parsed into inert records (never unpickled).

# Values a batch pickle may push: one per label, and a few hundred for the
# dict, the arrays and their dtypes.
MAX_PICKLE_VALUES = MAX_ROWS_PER_BATCH + 4096
# String bytes read into memory while parsing; larger strings (the pixels)
# stay in the file until their array is checked, then are read in chunks.
PICKLE_EAGER_BYTES = 16 << 20


@dataclasses.dataclass(frozen=True)
class PickledBatch:
  """A batch pickle, checked: `data` rows, and `labels` as the file has them."""

  data: pickled_numpy.PickledArray  # 2-D uint8, C order.
  labels: list[int] | pickled_numpy.PickledArray  # One per row.


def _batch_value(batch: dict, key: str, where: str):
  for candidate in (key, key.encode('latin-1')):
    if candidate in batch:
      return batch[candidate]
  keys = sorted(k.decode('latin-1') if isinstance(k, bytes) else k for k in batch)
  raise SourceError(
      f'{where}: no `{key}` in the pickled dict (it holds {listed(keys)});'
      ' expected `data` and `labels`'
  )


def read_pickle_batch(
    fileobj: BinaryIO, where: str, eager_bytes: int = PICKLE_EAGER_BYTES
) -> PickledBatch:
  """Parses and checks a batch pickle; nothing from the file is executed.

  Reads the pickle's opcodes into inert records (`inert_pickle`), checks
  them against the forms numpy pickles arrays in (`pickled_numpy`); the
  pixels stay in the file (strings past `eager_bytes` in all). `data` is
  checked for being 2-D uint8 rows here, their width against the config by
  the caller.
  """
  try:
    batch = inert_pickle.parse(
        fileobj, pickled_numpy.GLOBALS, MAX_PICKLE_VALUES, eager_bytes,
        MAX_BATCH_BYTES,
    )
  except inert_pickle.Malformed as e:
    raise SourceError(
        f'{where}: corrupt or truncated pickle (UnpicklingError: {e});'
        ' expected a pickled dict with `data` and `labels`'
    ) from None
  except inert_pickle.Forbidden as e:
    raise SourceError(
        f'{where}: {e}; a batch pickle may only hold numpy arrays, dicts,'
        ' lists and numbers'
    ) from None
  if not isinstance(batch, dict):
    raise SourceError(
        f'{where}: the pickle holds a {inert_pickle.describe(batch)}; expected'
        ' a dict with `data` and `labels`'
    )
  data = _batch_value(batch, 'data', where)
  labels = _batch_value(batch, 'labels', where)
  if not pickled_numpy.is_array(data):
    raise SourceError(
        f'{where}: `data` is a {inert_pickle.describe(data)}; expected a uint8'
        ' numpy array'
    )
  try:
    data = pickled_numpy.read_array(data, '`data`', 'uint8 pixel values')
    if isinstance(labels, list):
      _check_flat_ints(labels, where)
    else:
      labels = pickled_numpy.read_array(labels, '`labels`', 'integers 1..1000')
  except pickled_numpy.NotAnArray as e:
    raise SourceError(f'{where}: {e}') from None
  return PickledBatch(data, labels)


def _check_flat_ints(labels: list, where: str) -> None:
  """A pickled list of labels holds ints only (no nested lists, no objects)."""
  for i, label in enumerate(labels):
    if type(label) is not int:  # pylint: disable=unidiomatic-typecheck
      raise SourceError(
          f'{where}: `labels` holds a {inert_pickle.describe(label)} at row'
          f' {i}; expected a flat list of integers 1..{NUM_CLASSES}'
      )


def _pickled_labels(
    batch: PickledBatch, fileobj: BinaryIO, where: str, num_rows: int
) -> np.ndarray:
  """The labels of a checked batch, 0-based, read and checked."""
  labels = batch.labels
  if isinstance(labels, list):
    check_label_count(where, (len(labels),), np.dtype(np.int64), num_rows)
    values = labels
    out_of_range = next(
        (i for i, v in enumerate(values) if not 1 <= v <= NUM_CLASSES), None
    )
    if out_of_range is not None:
      raise SourceError(
          f'{where}: `labels` holds'
          f' {shown(str(values[out_of_range]), 30)} at row'
          f' {out_of_range}; expected labels 1..{NUM_CLASSES} (the authors\''
          ' labels are 1-based)'
      )
    return np.array(values, dtype=np.int64) - 1
  check_label_count(where, labels.shape, labels.dtype, num_rows)
  return zero_based_labels(where, np.frombuffer(_all_bytes(fileobj, labels.raw), labels.dtype))


def _all_bytes(fileobj: BinaryIO, raw: pickled_numpy.Raw) -> bytes:
  if isinstance(raw, bytes):
    return raw
  return b''.join(pickle_strings.iter_bytes(fileobj, raw))


def _rows_reader(fileobj: BinaryIO, raw: pickled_numpy.Raw, where: str):
  """read(n): the next n bytes of the pixels, from memory or the file."""
  if isinstance(raw, bytes):
    view = memoryview(raw)
    position = [0]

    def read(n: int) -> bytes:
      start = position[0]
      position[0] += n
      return view[start : start + n]

    return read
  reader = pickle_strings.StringReader(fileobj, raw)
  return lambda n: _read_exact(reader, n, where)


def iter_pickle_chunks(
    fileobj: BinaryIO, where: str, size: int, chunk_rows: int = DEFAULT_CHUNK_ROWS,
    eager_bytes: int = PICKLE_EAGER_BYTES,
) -> Iterator[Chunk]:
  """Reads a batch in pickle form: parsed, checked, then its rows in chunks.

  Memory: the labels and one chunk of rows, whatever the batch size: the
  pixels stay in the file until read (decoded block by block if the pickle
  holds them as text), unless they fit in `eager_bytes`.
  """
  batch = read_pickle_batch(fileobj, where, eager_bytes)
  data = batch.data
  check_rows(where, data.shape, data.dtype, size, data.fortran)
  num_rows = data.shape[0]
  try:
    labels = _pickled_labels(batch, fileobj, where, num_rows)
    read = _rows_reader(fileobj, data.raw, where)
    yield from _iter_rows(read, num_rows, size, labels, chunk_rows)
  except pickle_strings.DecodeError as e:
    raise SourceError(
        f'{where}: corrupt or truncated pickle (UnpicklingError: {e});'
        ' expected a pickled dict with `data` and `labels`'
    ) from None


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
      with zip_members.open_member(npz, name, '') as fp:
        return read_npy_header(fp, '')[0]
  except (SourceError, *ZIP_ERRORS, ValueError):
    return None


def as_seekable(fileobj: BinaryIO) -> BinaryIO:
  """Zip members are seekable in Python >= 3.7; other streams are buffered."""
  if fileobj.seekable():
    return fileobj
  return io.BytesIO(fileobj.read())
