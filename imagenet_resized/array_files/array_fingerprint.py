"""What an exported split's array files are: their fingerprint, and its checks.

An export (`array_export`) writes `images.npy`, `labels.npy` and, last,
`fingerprint.json`, which ties them to one prepared dataset:

* `dataset`: name, config, version, split, example count, file format and
  shards (names, sizes, example counts) of the prepared dataset;
* `files`: each .npy's size, dtype, shape and mtime_ns;
* `checksums`: CRC-32C of each file's data bytes, per range of rows exported;
* `statistics`: the exact pixel sums of the split's images (`pixel_statistics`).

`check` (on open, cheap): `dataset` equals the prepared dataset's (shards
re-stat'ed); each file has its recorded size, dtype and shape. A file whose
mtime differs (touched, copied without -p, modified in place) has its
checksums verified, as all have with `verify=True`. Refusals: `ArraysError`.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import os

import google_crc32c
import numpy as np

from imagenet_resized.common import SourceError
from imagenet_resized.readers import npz_batches

FORMAT = 'imagenet_resized arrays 1'
FINGERPRINT = 'fingerprint.json'
IMAGES = 'images.npy'
LABELS = 'labels.npy'
FILES = (IMAGES, LABELS)
# Bytes read at a time when verifying checksums.
_READ_BYTES = 8 << 20


class ArraysError(ValueError):
  """Array files that are not (or no longer) the export of a prepared split."""


def npy_data_offset(path: str) -> tuple[int, tuple[int, ...], np.dtype]:
  """(offset of the data, shape, dtype) of a C-order .npy of plain numbers;
  ArraysError (one line) for any other file."""
  with open(path, 'rb') as f:
    try:
      shape, fortran, dtype = npz_batches.read_npy_header(f, path)
    except SourceError as e:
      raise ArraysError(str(e)) from None
    if fortran:
      raise ArraysError(f'{path}: in Fortran order; expected C order')
    return f.tell(), shape, dtype


def range_crc(path: str, offset: int, length: int) -> str:
  """CRC-32C (hex) of `length` bytes of `path` from `offset`."""
  crc = google_crc32c.Checksum()
  with open(path, 'rb') as f:
    f.seek(offset)
    left = length
    while left:
      block = f.read(min(left, _READ_BYTES))
      if not block:
        break
      crc.update(block)
      left -= len(block)
  return crc.hexdigest().decode('ascii')


def file_record(path: str, shape: Sequence[int], dtype: np.dtype) -> dict:
  """The `files` entry of a finished .npy file."""
  st = os.stat(path)
  return {
      'size': st.st_size,
      'mtime_ns': st.st_mtime_ns,
      'dtype': np.lib.format.dtype_to_descr(np.dtype(dtype)),
      'shape': list(shape),
  }


def read(folder: str) -> dict | None:
  """The fingerprint in `folder`, None if there is none (written last, so
  also after a killed export); ArraysError if unreadable."""
  path = os.path.join(folder, FINGERPRINT)
  try:
    with open(path, 'rb') as f:
      text = f.read(1 << 24)
  except FileNotFoundError:
    return None
  try:
    data = json.loads(text)
  except (ValueError, UnicodeDecodeError):
    raise ArraysError(
        f'{path}: not valid JSON; expected the fingerprint an export writes'
        ' (refresh=True / --refresh exports again)'
    ) from None
  if not isinstance(data, dict) or data.get('format') != FORMAT:
    raise ArraysError(
        f'{path}: not a fingerprint of format {FORMAT!r}; refresh=True /'
        ' --refresh exports again'
    )
  return data


def write(folder: str, data: dict) -> None:
  """Writes the fingerprint atomically (temp file, fsync, os.replace)."""
  path = os.path.join(folder, FINGERPRINT)
  temp = f'{path}.incomplete-{os.getpid()}'
  with open(temp, 'w', encoding='utf-8') as f:
    json.dump(data, f, indent=1, sort_keys=True)
    f.flush()
    os.fsync(f.fileno())
  os.replace(temp, path)


def _verify_checksums(folder: str, name: str, fingerprint: dict) -> None:
  path = os.path.join(folder, name)
  record = fingerprint['files'][name]
  offset, _, dtype = npy_data_offset(path)
  row_bytes = (
      int(np.prod(record['shape'][1:], dtype=np.int64))
      * np.dtype(dtype).itemsize
  )
  for first, count, crcs in fingerprint['checksums']['ranges']:
    got = range_crc(path, offset + first * row_bytes, count * row_bytes)
    if got != crcs[name]:
      raise ArraysError(
          f'{path}: rows {first}..{first + count - 1} have CRC-32C {got};'
          f' expected {crcs[name]} (modified since the export; refresh=True /'
          ' --refresh exports again)'
      )


def check(
    folder: str, fingerprint: dict, expected_dataset: dict, verify: bool = False
) -> list[str]:
  """Raises ArraysError unless the files in `folder` are the export the
  fingerprint describes, of `expected_dataset`; returns the names of the files
  whose checksums were verified."""
  where = os.path.join(folder, FINGERPRINT)
  got = fingerprint.get('dataset')
  if got != expected_dataset:
    differ = sorted(
        k
        for k in set(expected_dataset) | set(got or {})
        if (got or {}).get(k) != expected_dataset.get(k)
    )
    raise ArraysError(
        f'{where}: exported from another build of the dataset (differs in'
        f' {", ".join(differ)}); expected an export of this prepared dataset'
        ' (refresh=True / --refresh exports again)'
    )
  verified = []
  for name in FILES:
    path = os.path.join(folder, name)
    record = fingerprint['files'][name]
    try:
      st = os.stat(path)
    except FileNotFoundError:
      raise ArraysError(
          f'{path}: missing; expected the file the fingerprint names'
          ' (refresh=True / --refresh exports again)'
      ) from None
    if st.st_size != record['size']:
      raise ArraysError(
          f'{path}: {st.st_size} bytes; expected {record["size"]} (truncated'
          ' or modified since the export; refresh=True / --refresh exports'
          ' again)'
      )
    try:
      offset, shape, dtype = npy_data_offset(path)
    except OSError as e:
      raise ArraysError(f'{path}: not readable ({e.strerror})') from None
    descr = np.lib.format.dtype_to_descr(dtype)
    expected_size = (
        offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    )
    if (
        list(shape) != record['shape']
        or descr != record['dtype']
        or (expected_size != st.st_size)
    ):
      raise ArraysError(
          f'{path}: header says {descr} {list(shape)}; expected'
          f' {record["dtype"]} {record["shape"]} in {record["size"]} bytes'
          ' (modified since the export; refresh=True / --refresh exports'
          ' again)'
      )
    if verify or st.st_mtime_ns != record['mtime_ns']:
      _verify_checksums(folder, name, fingerprint)
      verified.append(name)
  return verified
