"""TFDS's shard and spill files on Python's own files, for local paths.

TFDS writes its TFRecord shards (`TfRecordFileAdapter.write_examples`) and
its shuffler's spill files (`shuffle._Bucket`) through TensorFlow's file API,
the only reason a build from local files imports TensorFlow. These write the
same bytes through Python's files for local paths (`tfds_touches` puts them
in place); other paths (gs://...) keep TFDS's own code.
"""

from __future__ import annotations

import errno
import os
import struct

from tensorflow_datasets.core import shuffle

from imagenet_resized import common
from imagenet_resized.formats import tfrecord_files

# Bytes buffered per spill file: the shuffler writes to up to 1,000 files at
# once, a little at a time.
_SPILL_BUFFER = 64 << 10
# An entry's head as TFDS writes it: the 128-bit hashed key as two 64-bit
# halves, then the data's size (tests/test_versions.py compares the bytes).
_ENTRY_HEAD = struct.Struct('=QQQ')
_HALF = (1 << 64) - 1


class LocalBucket(shuffle._Bucket):
  """TFDS's shuffle bucket on Python's own files, for local paths: the same
  file format (16-byte hashed key, 8-byte size, data) and behaviour."""

  def __init__(self, path):
    super().__init__(path)
    self._local = common.is_local(path)

  def add(self, key, data: bytes) -> None:
    if not self._local:
      return super().add(key, data)
    if not self._fobj:
      os.makedirs(os.path.dirname(os.fspath(self._path)), exist_ok=True)
      try:
        self._fobj = open(self._path, 'wb', buffering=_SPILL_BUFFER)
      except OSError as e:
        if e.errno != errno.EMFILE:
          raise
        # Up to 1,000 bucket files are open at once, as with TFDS's own.
        shuffle._increase_open_files_limit()
        self._fobj = open(self._path, 'wb', buffering=_SPILL_BUFFER)
    self._fobj.write(
        _ENTRY_HEAD.pack(key >> 64 & _HALF, key & _HALF, len(data))
    )
    self._fobj.write(data)
    self._length += 1
    self._size += len(data)

  def flush(self) -> None:
    # TFDS's flush closes the file; a closed Python file cannot be flushed
    # again, and read_values flushes first.
    if self._fobj and not (self._local and self._fobj.closed):
      super().flush()

  def read_values(self):
    if not self._local:
      yield from super().read_values()
      return
    self.flush()
    if not os.path.exists(self._path):  # Nothing was ever added.
      return
    with open(self._path, 'rb') as f:
      data = f.read()  # A bucket holds a thousandth of the split's bytes.
    pos, head = 0, _ENTRY_HEAD.size
    while pos < len(data):
      high, low, size = _ENTRY_HEAD.unpack_from(data, pos)
      yield high << 64 | low, data[pos + head : pos + head + size]
      pos += head + size

  def del_file(self) -> None:
    if not self._local:
      return super().del_file()
    if os.path.exists(self._path):
      os.remove(self._path)


def shard_writer(original: classmethod) -> classmethod:
  """TfRecordFileAdapter.write_examples (`original`), on local Python files."""

  def write_examples(cls, path, iterator):
    if not common.is_local(path):
      return original.__func__(cls, path, iterator)
    tfrecord_files.write_records(path, (data for _, data in iterator))
    return None  # As TFDS's: TFRecord shards record no positions.

  return classmethod(write_examples)
