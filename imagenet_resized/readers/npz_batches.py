"""The authors' npz batches, streamed a chunk of rows at a time, each `.npy`
header checked against its member's size before anything is allocated."""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import io
import lzma
import math
import tokenize
from typing import BinaryIO
import zipfile
import zlib

import numpy as np

from imagenet_resized import common
from imagenet_resized.readers import batch_chunks
from imagenet_resized.readers import one_line
from imagenet_resized.readers import zip_members
from imagenet_resized.readers.one_line import listed

# numpy's own limit on a .npy header.
MAX_NPY_HEADER = 10_000
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
    (3, 0): np.lib.format.read_array_header_2_0,
}


def read_npy_header(
    fp: BinaryIO, where: str
) -> tuple[tuple[int, ...], bool, np.dtype]:
  """Reads a .npy header of plain numbers (numpy's parser); fp left at data."""
  read_header = None
  try:
    version = np.lib.format.read_magic(fp)
    read_header = _NPY_HEADER_READERS.get(version)
    if read_header is not None:
      shape, fortran, dtype = read_header(fp, max_header_size=MAX_NPY_HEADER)
  except (
      ValueError,
      TypeError,
      OverflowError,
      SyntaxError,
      EOFError,
      tokenize.TokenError,
      RecursionError,  # numpy's parser of the header dict.
  ) as e:
    raise common.SourceError(
        f'{where}: not a readable .npy header ({type(e).__name__}:'
        f' {one_line.reason(e)}); expected an array as np.save writes it'
    ) from None
  if read_header is None:
    raise common.SourceError(
        f'{where}: unsupported .npy format version {version}'
    )
  if dtype.hasobject:
    raise common.SourceError(
        f'{where}: holds Python objects (a pickle); expected plain numbers'
    )
  if (
      dtype.names is not None
      or dtype.subdtype is not None
      or dtype.kind not in 'biuf'
  ):
    raise common.SourceError(
        f'{where}: has dtype {dtype}, which is not a plain number type;'
        ' expected plain numbers'
    )
  if any(n < 0 for n in shape):
    raise common.SourceError(
        f'{where}: declares shape {one_line.shape(shape)}; expected sizes >= 0'
    )
  return tuple(shape), fortran, dtype


@dataclasses.dataclass(frozen=True)
class NpyMember:
  """An npz member's .npy header."""

  name: str
  where: str  # 'npz:member', for messages.
  shape: tuple[int, ...]
  fortran: bool
  dtype: np.dtype
  offset: int  # Of the data, within the member.


def _npy_member(npz: zipfile.ZipFile, key: str, where: str) -> NpyMember:
  """The header of array `key` of the npz."""
  names = set(npz.namelist())
  name = next((n for n in (f'{key}.npy', key) if n in names), None)
  if name is None:
    held = sorted(n.removesuffix('.npy') for n in names)
    raise common.SourceError(
        f'{where}: no `{key}` array in the npz (it holds {listed(held)});'
        ' expected `data` and `labels`'
    )
  where = f'{where}:{name}'
  with zip_members.open_member(npz, name, where) as fp:
    shape, fortran, dtype = read_npy_header(fp, where)
    return NpyMember(name, where, shape, fortran, dtype, fp.tell())


def _check_member_size(npz: zipfile.ZipFile, member: NpyMember) -> None:
  """The header's shape x itemsize must be what the zip member holds."""
  declared = math.prod(member.shape) * member.dtype.itemsize
  held = npz.getinfo(member.name).file_size - member.offset
  if declared != held:
    raise common.SourceError(
        f'{member.where}: the .npy header declares shape'
        f' {one_line.shape(member.shape)}'
        f' of {member.dtype} ({declared} bytes) but the member holds {held}'
        ' bytes after it; expected the two to agree'
    )


# What reading a corrupt or truncated zip can raise (NotImplementedError:
# features zipfile lacks; RuntimeError: encryption; UnicodeDecodeError: names).
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    UnicodeDecodeError,
    lzma.LZMAError,
)


def iter_npz_chunks(
    fileobj: BinaryIO,
    where: str,
    size: int,
    chunk_rows: int = batch_chunks.DEFAULT_CHUNK_ROWS,
) -> Iterator[batch_chunks.Chunk]:
  """Streams an npz batch from a seekable file, its headers checked first."""
  try:
    npz = zipfile.ZipFile(fileobj)
  except ZIP_ERRORS as e:
    raise common.SourceError(
        f'{where}: not a readable npz (corrupt or truncated zip: {e}); expected'
        ' an np.savez file with `data` and `labels`'
    ) from None
  try:
    with npz:
      labels = _npy_member(npz, 'labels', where)
      data = _npy_member(npz, 'data', where)
      batch_chunks.check_rows(where, data.shape, data.dtype, size, data.fortran)
      num_rows = data.shape[0]
      batch_chunks.check_label_count(
          where, labels.shape, labels.dtype, num_rows
      )
      _check_member_size(npz, labels)
      _check_member_size(npz, data)
      with zip_members.open_member(npz, labels.name, labels.where) as fp:
        fp.seek(labels.offset)
        raw = batch_chunks.read_exact(
            fp, num_rows * labels.dtype.itemsize, labels.where
        )
      zero_based = batch_chunks.zero_based_labels(
          where, np.frombuffer(raw, labels.dtype)
      )
      with zip_members.open_member(npz, data.name, data.where) as fp:
        fp.seek(data.offset)
        yield from batch_chunks.iter_rows(
            lambda n: batch_chunks.read_exact(fp, n, data.where),
            num_rows,
            size,
            zero_based,
            chunk_rows,
        )
  except common.SourceError:
    raise
  except (*ZIP_ERRORS, ValueError) as e:
    raise common.SourceError(
        f'{where}: corrupt or truncated npz ({type(e).__name__}: {e}); expected'
        ' an np.savez file with `data` and `labels`'
    ) from None


def read_npz_header(fileobj: BinaryIO) -> tuple[int, ...] | None:
  """Shape of `data` in an npz, or None if it is not a readable npz."""
  try:
    with zipfile.ZipFile(fileobj) as npz:
      return _npy_member(npz, 'data', '').shape
  except (common.SourceError, *ZIP_ERRORS, ValueError):
    return None


def as_seekable(fileobj: BinaryIO) -> BinaryIO:
  """`fileobj` if seekable (zip members are), else its bytes in memory."""
  if fileobj.seekable():
    return fileobj
  return io.BytesIO(fileobj.read())
