"""Lossless PNG encoding of image chunks: adaptive row filters, libdeflate.

`tfds.features.Image` passes `bytes` through unchanged but PNG-encodes numpy
arrays one at a time through a TF graph (libpng), which is the largest cost of
TFDS's build. We encode a whole chunk of images per call (the builder runs the
calls in the worker processes of `worker_pool`), 2-6x faster than libpng
through TensorFlow, into files of libpng's size (no larger up to 16x16, at
most 2 % larger above; BENCHMARKS.md):

* Row filters (PNG spec, section 9): every scanline is stored as one of five
  predictions of its bytes (None, Sub, Up, Average, Paeth), chosen per row by
  libpng's own heuristic: the least sum of the filtered bytes read as signed
  values (min(v, 256 - v)). numpy computes all five filters and their sums for
  a block of images at once, so the choice costs a few microseconds per image.
* Deflate by libdeflate (the `deflate` package), at the level
  `deflate_level` picks by image size. Measured on crops of photographs
  (BENCHMARKS.md, "PNG writer", `benchmarks/bench_png.py`): libdeflate's
  level 1 compresses these small, detailed images as well as its levels 2-9
  and as zlib at any level (within 1-2 % of libpng's files), 3-6x faster than
  zlib; its levels 10-12 (near-optimal parsing) are the only way below
  libpng's size, by 0.1-1 %, at 2-10x the time. So images of up to 16x16,
  whose compression is a small part of a build's cost per example, get level
  12; larger ones level 1.

The files are 8-bit, non-interlaced, with one IDAT chunk; any PNG decoder
reads them (tests decode them with Pillow and with TensorFlow). They are
written out here rather than by Pillow (or OpenCV, imagecodecs) because for
images this small the libraries' per-image fixed costs (an image object, an
encoder, its buffers) cost more than compressing the pixels: ~150 us per
32x32 image with Pillow (filter None) against ~44 us for the writer here,
adaptive filters included.

Determinism: the bytes are a pure function of the pixels, the level and the
deflate implementation. libdeflate's output can change between its releases,
so pyproject.toml pins the `deflate` package (whose wheels bundle libdeflate)
to one version: the same sources then give byte-identical shards.
"""

from __future__ import annotations

from collections.abc import Callable
import struct
import zlib

import deflate
import numpy as np

# libdeflate's levels (1..12) by image size; see `deflate_level`.
SMALL_IMAGE_PIXELS = 16 * 16
SMALL_IMAGE_LEVEL = 12
LEVEL = 1

# PNG filter types (PNG spec, 9.2), in the order libpng tries them: ties go to
# the first.
NONE, SUB, UP, AVERAGE, PAETH = range(5)
FILTER_TYPES = (NONE, SUB, UP, AVERAGE, PAETH)

_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# PNG colour type by the number of channels: grey, grey+alpha, RGB, RGBA.
_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
# Images filtered per numpy pass: about 256 KiB of pixels, so the five
# filtered copies and their temporaries stay in the CPU caches and a worker's
# memory stays small whatever the chunk size.
_BLOCK_BYTES = 256 << 10


def _chunk(tag: bytes, data: bytes) -> bytes:
  """A PNG chunk: length, type, data, CRC-32 of type and data."""
  crc = zlib.crc32(data, zlib.crc32(tag))
  return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', crc)


_IEND = _chunk(b'IEND', b'')


def _check(images: np.ndarray) -> np.ndarray:
  images = np.asarray(images)
  if (
      images.dtype != np.uint8
      or images.ndim != 4
      or images.shape[3] not in _COLOR_TYPES
  ):
    raise ValueError(
        f'images have dtype {images.dtype} and shape {images.shape}; expected'
        ' uint8 of shape (n, height, width, channels) with 1 to 4 channels'
    )
  return images


def filtered_rows(rows: np.ndarray, bpp: int) -> np.ndarray:
  """All five filters of every scanline: (5, n, H, L) uint8, L = W * bpp.

  `rows` is (n, H, L) uint8; `bpp` the bytes per pixel. Byte arithmetic is
  modulo 256 as the spec has it (uint8 wraps); a, b, c are the bytes to the
  left, above and above-left, 0 outside the image: views into one copy of the
  rows padded with a zero row on top and a zero pixel on the left.
  """
  n, height, length = rows.shape
  padded = np.zeros((n, height + 1, length + bpp), np.uint8)
  padded[:, 1:, bpp:] = rows
  # Contiguous copies: numpy's loops over strided views measured 2-10x slower.
  x = np.ascontiguousarray(rows)
  a = np.ascontiguousarray(padded[:, 1:, :-bpp])
  b = np.ascontiguousarray(padded[:, :-1, bpp:])
  c = np.ascontiguousarray(padded[:, :-1, :-bpp])
  out = np.empty((5, n, height, length), np.uint8)
  out[NONE] = x
  np.subtract(x, a, out=out[SUB])
  np.subtract(x, b, out=out[UP])
  # floor((a + b) / 2) without leaving 8 bits.
  np.subtract(x, (a >> 1) + (b >> 1) + (a & b & 1), out=out[AVERAGE])
  # Paeth: of a, b, c the one closest to p = a + b - c (ties: a, then b);
  # |p - a| = |b - c|, |p - b| = |a - c|, |p - c| = |(a - c) + (b - c)|.
  a_c = np.subtract(a, c, dtype=np.int16)
  b_c = np.subtract(b, c, dtype=np.int16)
  pa, pb, pc = np.abs(b_c), np.abs(a_c), np.abs(a_c + b_c)
  use_a = ((pa <= pb) & (pa <= pc)).view(np.uint8)
  use_b = (pb <= pc).view(np.uint8)
  # Selection by 0/1 factors (modulo 256): np.where on uint8 measured ~10x
  # slower.
  predictor = c + (b - c) * use_b
  predictor += (a - predictor) * use_a
  np.subtract(x, predictor, out=out[PAETH])
  return out


def choose_filters(filtered: np.ndarray) -> np.ndarray:
  """libpng's choice per row: (n, H) filter types, from `filtered_rows`.

  The cost of a row is the sum of its bytes read as signed (min(v, 256 - v),
  which is |int8(v)| with -128 read as 128); the least cost wins, ties to the
  lower filter type.
  """
  magnitude = np.abs(filtered.view(np.int8)).view(np.uint8)
  # Summed as float32 through a matrix product: exact (sums < 2**24 for rows
  # under 131,072 bytes) and measured ~1.7x faster than sum(dtype=uint32).
  if magnitude.shape[-1] < (1 << 17):
    costs = magnitude.astype(np.float32) @ np.ones(
        magnitude.shape[-1], np.float32
    )
  else:
    costs = magnitude.sum(axis=-1, dtype=np.uint64)
  return np.argmin(costs, axis=0).astype(np.uint8)


def scanlines(images: np.ndarray, filter_type: int | None = None) -> np.ndarray:
  """(n, H, 1 + W*C) uint8: each row's filter type byte, then its filtered bytes.

  filter_type: None chooses per row (libpng's heuristic); one of
  FILTER_TYPES uses that filter on every row (for tests).
  """
  images = _check(images)
  n, height, width, channels = images.shape
  length = width * channels
  rows = images.reshape(n, height, length)
  out = np.empty((n, height, 1 + length), np.uint8)
  per_block = max(1, _BLOCK_BYTES // max(1, height * length))
  for start in range(0, n, per_block):
    block = rows[start : start + per_block]
    filtered = filtered_rows(block, channels)
    if filter_type is None:
      chosen = choose_filters(filtered)
    else:
      chosen = np.full(block.shape[:2], filter_type, np.uint8)
    target = out[start : start + per_block].reshape(-1, 1 + length)
    target[:, 0] = chosen.reshape(-1)
    # Each row's chosen copy, gathered whole rows at a time.
    count = target.shape[0]
    target[:, 1:] = filtered.reshape(5, count, length)[
        chosen.reshape(-1), np.arange(count)
    ]
  return out


def deflate_level(height: int, width: int) -> int:
  """libdeflate's level for images of this size (module docstring: why)."""
  return SMALL_IMAGE_LEVEL if height * width <= SMALL_IMAGE_PIXELS else LEVEL


def encode_pngs(
    images: np.ndarray,
    level: int | None = None,
    compress: Callable[[bytes, int], bytes] | None = None,
    filter_type: int | None = None,
) -> list[bytes]:
  """(n, H, W, C) uint8 images (C in 1..4) -> n lossless PNG byte strings.

  level: the compressor's level; None: `deflate_level` of the image size.
  compress: a zlib-stream compressor (data, level) -> bytes, libdeflate's by
  default (the benchmark passes others to compare them).
  filter_type: see `scanlines`.
  """
  images = _check(images)
  _, height, width, channels = images.shape
  compress = compress or deflate.zlib_compress
  if level is None:
    level = deflate_level(height, width)
  header = _SIGNATURE + _chunk(
      b'IHDR',
      # Width, height, bit depth 8, colour type, deflate, filters, no interlace.
      struct.pack(
          '>IIBBBBB', width, height, 8, _COLOR_TYPES[channels], 0, 0, 0
      ),
  )
  return [
      b''.join((header, _chunk(b'IDAT', compress(rows, level)), _IEND))
      for rows in scanlines(images, filter_type)
  ]


def encode_png(image: np.ndarray, level: int | None = None) -> bytes:
  """One (H, W, C) uint8 image -> lossless PNG bytes."""
  return encode_pngs(np.asarray(image)[None], level)[0]
