"""Lossless PNG encoding of image chunks, optionally in worker processes.

`tfds.features.Image` passes `bytes` through unchanged but PNG-encodes numpy
arrays one at a time through a TF graph, which is the largest cost of a build.
We encode with Pillow instead, a chunk of images per call, in a pool of
forked worker processes, keeping a bounded number of chunks in flight so memory
stays flat and the output order stays that of the input (deterministic).
"""

from __future__ import annotations

import collections
import io
import multiprocessing
import os
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np
from PIL import Image

T = TypeVar('T')


def encode_png(image: np.ndarray) -> bytes:
  """HWC uint8 image -> PNG bytes (Pillow's default zlib level, deterministic)."""
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format='PNG')
  return buf.getvalue()


def encode_pngs(images: np.ndarray) -> list[bytes]:
  """(n, H, W, 3) uint8 -> n PNG byte strings."""
  return [encode_png(image) for image in images]


def default_workers() -> int:
  """Worker processes for encoding: one per core, none where fork is absent."""
  if 'fork' not in multiprocessing.get_all_start_methods():
    return 0
  return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (
      os.cpu_count() or 1
  )


def parallel_map(
    fn: Callable[[T], object],
    items: Iterable[T],
    workers: int,
    in_flight_per_worker: int = 2,
) -> Iterator[object]:
  """`map(fn, items)` across forked processes, in order, with bounded read-ahead.

  multiprocessing.Pool.imap would drain `items` as fast as it can (its feeder
  thread has no bound), which would defeat the streaming reader; here at most
  `workers * in_flight_per_worker` items are pending at once.
  With `workers` == 0 it runs in this process.
  """
  if workers <= 0:
    yield from map(fn, items)
    return
  # Fork: the children need only numpy and Pillow, and start instantly with the
  # parent's modules (a spawned child would re-import TensorFlow).
  ctx = multiprocessing.get_context('fork')
  with ctx.Pool(workers) as pool:
    pending = collections.deque()
    limit = max(1, workers * in_flight_per_worker)
    for item in items:
      pending.append(pool.apply_async(fn, (item,)))
      if len(pending) >= limit:
        yield pending.popleft().get()
    while pending:
      yield pending.popleft().get()
