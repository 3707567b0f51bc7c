"""Exports a prepared split as two .npy files: images (N, S, S, 3) uint8 and
labels (N,) int64, in the order of `as_dataset(split, shuffle_files=False)`.

* Pixels come from the shards, without TensorFlow (`shard_records`): the
  shards, in TFDS's read order, are cut into ranges of rows, each decoded by
  a worker of `worker_pool.parallel_streams`. The shard lengths in the info
  place each range in the split, so chunks are written where they belong as
  they arrive (`os.pwrite`): memory holds a few chunks, never the split.
* Each .npy goes to a temporary file in the folder, then fsync, os.replace,
  and the fingerprint (`array_fingerprint`) last: a killed export leaves no
  fingerprint, so `load` never takes it as complete (the next export cleans).
* Exports of one split into one folder hold a lock (`file_lock`): a second
  one waits for the first, then finds its result.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import threading

import google_crc32c
import numpy as np

from imagenet_resized.array_files import array_fingerprint
from imagenet_resized.array_files import shard_records
from imagenet_resized.pipeline import pixel_statistics
from imagenet_resized.pipeline import worker_pool

# Rows of a shard decoded by one worker as one item.
RANGE_ROWS = 16384
INCOMPLETE = '.incomplete-'

log = logging.getLogger(__name__)


def work_ranges(
    shards: list[tuple[str, int]],
    file_format: str,
    size: int,
    range_rows: int = RANGE_ROWS,
    sums: bool = True,
) -> list[tuple[int, shard_records.ShardRange]]:
  """(first row in the split, ShardRange) covering the shards, in order."""
  out = []
  first = 0
  for path, count in shards:
    for start in range(0, count, range_rows):
      n = min(range_rows, count - start)
      task = shard_records.ShardRange(path, file_format, start, n, size, sums)
      out.append((first, task))
      first += n
  return out


# Bytes written to a .npy file between two flushes to disk (see _NpyWriter).
SYNC_BYTES = 256 << 20


class _NpyWriter:
  """A .npy file of a known shape, written as header + rows at offsets; an
  fdatasync runs in a thread every SYNC_BYTES, leaving `finish` little to do."""

  def __init__(self, path: str, shape: tuple[int, ...], dtype):
    self.path = path
    self.dtype = np.dtype(dtype)
    self.shape = shape
    self.row_bytes = (
        int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize
    )
    self._fd = os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644
    )
    with os.fdopen(os.dup(self._fd), 'wb') as f:
      np.lib.format.write_array_header_1_0(
          f,
          {
              'descr': np.lib.format.dtype_to_descr(self.dtype),
              'fortran_order': False,
              'shape': shape,
          },
      )
      self.offset = f.tell()
    os.ftruncate(self._fd, self.offset + shape[0] * self.row_bytes)
    self._unsynced = 0
    self._sync: threading.Thread | None = None

  def write_rows(self, first: int, rows: np.ndarray) -> None:
    data = memoryview(np.ascontiguousarray(rows, self.dtype)).cast('B')
    self._unsynced += len(data)
    position = self.offset + first * self.row_bytes
    while data:
      written = os.pwrite(self._fd, data, position)
      data, position = data[written:], position + written
    if self._unsynced >= SYNC_BYTES and not (
        self._sync is not None and self._sync.is_alive()
    ):
      self._unsynced = 0
      self._sync = threading.Thread(
          target=_flushed, args=(self._fd,), daemon=True
      )
      self._sync.start()

  def _wait_for_sync(self) -> None:
    if self._sync is not None:
      self._sync.join()
      self._sync = None

  def finish(self) -> None:
    self._wait_for_sync()
    os.fsync(self._fd)
    os.close(self._fd)
    self._fd = None

  def close(self) -> None:
    if self._fd is not None:
      self._wait_for_sync()
      os.close(self._fd)
      self._fd = None


def _flushed(fd: int) -> None:
  """os.fdatasync, errors left to the final fsync (which meets them again)."""
  with contextlib.suppress(OSError):
    os.fdatasync(fd)


def remove_incomplete(folder: str) -> None:
  """Removes unfinished exports' temporary files (the folder's lock held)."""
  for path in glob.glob(os.path.join(glob.escape(folder), f'*{INCOMPLETE}*')):
    log.info('Removing %s, left by an export that did not finish', path)
    os.remove(path)


def _progress(total: int, description: str):
  try:
    from tqdm import auto as tqdm
  except ImportError:  # pragma: no cover - TFDS depends on tqdm.
    return contextlib.nullcontext(None)
  return tqdm.tqdm(
      total=total, unit=' examples', desc=description, dynamic_ncols=True
  )


def export(
    folder: str,
    dataset: dict,
    shards: list[tuple[str, int]],
    size: int,
    workers: int,
    description: str,
    sums: bool = True,
) -> dict:
  """Writes the split's .npy files and fingerprint into `folder` (its lock
  held); returns the fingerprint. `dataset`: its `dataset` entry
  (array_location.identity); `shards`: (path, examples) in TFDS's read order;
  `sums`: whether to add up the pixels for the fingerprint's statistics."""
  os.makedirs(folder, exist_ok=True)
  remove_incomplete(folder)
  # Whatever was here is no longer complete from now on.
  with contextlib.suppress(FileNotFoundError):
    os.remove(os.path.join(folder, array_fingerprint.FINGERPRINT))
  total = dataset['num_examples']
  ranges = work_ranges(shards, dataset['file_format'], size, RANGE_ROWS, sums)
  suffix = f'{INCOMPLETE}{os.getpid()}'
  paths = {
      name: os.path.join(folder, name + suffix)
      for name in array_fingerprint.FILES
  }
  images = _NpyWriter(
      paths[array_fingerprint.IMAGES], (total, size, size, 3), np.uint8
  )
  labels = _NpyWriter(paths[array_fingerprint.LABELS], (total,), np.int64)
  crcs = [
      {name: google_crc32c.Checksum() for name in array_fingerprint.FILES}
      for _ in ranges
  ]
  filled = [0] * len(ranges)
  tally = pixel_statistics.Tally()
  try:
    with _progress(total, description) as bar:
      for index, chunk in worker_pool.parallel_streams(
          shard_records.decode_range, [r for _, r in ranges], workers
      ):
        first = ranges[index][0] + filled[index]
        images.write_rows(first, chunk.images)
        labels.write_rows(first, chunk.labels)
        crcs[index][array_fingerprint.IMAGES].update(
            np.ascontiguousarray(chunk.images).tobytes()
        )
        crcs[index][array_fingerprint.LABELS].update(
            np.ascontiguousarray(chunk.labels, np.int64).tobytes()
        )
        filled[index] += len(chunk.labels)
        tally.add(chunk.sums)
        if bar is not None:
          bar.update(len(chunk.labels))
    for (_, task), got in zip(ranges, filled):
      if got != task.count:
        raise array_fingerprint.ArraysError(
            f'{task.path}: gave {got} examples from record {task.start};'
            f" expected {task.count} (the dataset's info)"
        )
    images.finish()
    labels.finish()
    files = {}
    for name, writer in (
        (array_fingerprint.IMAGES, images),
        (array_fingerprint.LABELS, labels),
    ):
      final = os.path.join(folder, name)
      os.replace(writer.path, final)
      files[name] = array_fingerprint.file_record(
          final, writer.shape, writer.dtype
      )
  except BaseException:
    images.close()
    labels.close()
    for path in paths.values():
      with contextlib.suppress(FileNotFoundError):
        os.remove(path)
    raise
  fingerprint = {
      'format': array_fingerprint.FORMAT,
      'dataset': dataset,
      'files': files,
      'checksums': {
          'algorithm': 'crc32c',
          'ranges': [
              [
                  first,
                  task.count,
                  {
                      name: crc.hexdigest().decode('ascii')
                      for name, crc in c.items()
                  },
              ]
              for (first, task), c in zip(ranges, crcs)
          ],
      },
      'statistics': tally.sums.as_json(),
  }
  _fsync_folder(folder)
  array_fingerprint.write(folder, fingerprint)
  _fsync_folder(folder)
  return fingerprint


def _fsync_folder(folder: str) -> None:
  fd = os.open(folder, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)
