"""Lossless PNG encoding of image chunks: adaptive row filters, libdeflate.

`tfds.features.Image` PNG-encodes arrays one at a time through a TF graph and
passes `bytes` through; the builder's workers encode a chunk per call here:

* Row filters (PNG spec, section 9): each scanline is stored as one of five
  predictions (None, Sub, Up, Average, Paeth), chosen per row by libpng's
  heuristic, all computed by numpy for a block of images at once.
* Deflate by libdeflate (the `deflate` package) at the level `deflate_level`
  picks by image size (docs/speed.md, "The PNG writer").

The files are 8-bit, non-interlaced, with one IDAT chunk, written here as
Pillow's or OpenCV's fixed cost per image outweighs the work at these sizes.
The bytes are a pure function of the pixels, the level and libdeflate, whose
output may change between releases: pyproject.toml pins `deflate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import functools
import struct
import zlib

import deflate
import numpy as np

# libdeflate's levels (1..12) by image size; see `deflate_level`.
SMALL_IMAGE_PIXELS = 16 * 16
SMALL_IMAGE_LEVEL = 12
LEVEL = 1

# PNG filter types (PNG spec, 9.2), in libpng's order: ties go to the first.
NONE, SUB, UP, AVERAGE, PAETH = range(5)
FILTER_TYPES = (NONE, SUB, UP, AVERAGE, PAETH)

SIGNATURE = b'\x89PNG\r\n\x1a\n'
# IHDR's data: width, height, bit depth, colour type, compression (deflate),
# filter method, interlace (none).
IHDR = struct.Struct('>IIBBBBB')
# PNG colour type by the number of channels: grey, grey+alpha, RGB, RGBA.
_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
RGB = _COLOR_TYPES[3]
# Pixel bytes filtered per numpy pass: the five filtered copies and their
# temporaries stay in a core's caches (docs/speed.md).
_BLOCK_BYTES = 96 << 10


def _chunk(tag: bytes, data: bytes) -> bytes:
  """A PNG chunk: length, type, data, CRC-32 of type and data."""
  crc = zlib.crc32(data, zlib.crc32(tag))
  return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', crc)


IEND = _chunk(b'IEND', b'')
_WORD = struct.Struct('>I')
_IDAT_CRC = zlib.crc32(b'IDAT')


@functools.cache
def header(height: int, width: int, channels: int = 3) -> bytes:
  """The signature and IHDR chunk (8-bit, non-interlaced) before the IDAT."""
  ihdr = IHDR.pack(width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
  return SIGNATURE + _chunk(b'IHDR', ihdr)


def before_stream(size: int, stream_length: int) -> bytes:
  """The bytes of this writer's size x size RGB PNG before its zlib stream of
  `stream_length` bytes (`IEND_AFTER_STREAM` bytes follow the stream)."""
  return header(size, size) + struct.pack('>I', stream_length) + b'IDAT'


# After the zlib stream: IDAT's CRC, then the IEND chunk.
IEND_AFTER_STREAM = 4 + len(IEND)


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

  `rows` is (n, H, L) uint8, `bpp` bytes per pixel; bytes wrap modulo 256.
  a, b, c (left, above, above-left; 0 outside the image) come from one copy
  of the rows padded with zeros on top and on the left.
  """
  n, height, length = rows.shape
  padded = np.zeros((n, height + 1, length + bpp), np.uint8)
  padded[:, 1:, bpp:] = rows
  # Contiguous copies: numpy's loops over strided views are slower.
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
  # Selection by 0/1 factors (modulo 256): faster than np.where on uint8.
  predictor = c + (b - c) * use_b
  predictor += (a - predictor) * use_a
  np.subtract(x, predictor, out=out[PAETH])
  return out


def choose_filters(filtered: np.ndarray) -> np.ndarray:
  """libpng's choice per row, (n, H) filter types from `filtered_rows`: the
  least sum of |int8(v)| (-128 as 128), ties to the lower filter type."""
  magnitude = np.abs(filtered.view(np.int8)).view(np.uint8)
  # A float32 matrix product, faster than sum(dtype=uint32), is exact for
  # rows under 2**17 bytes (sums under 2**24).
  if magnitude.shape[-1] < (1 << 17):
    costs = magnitude.astype(np.float32) @ np.ones(
        magnitude.shape[-1], np.float32
    )
  else:
    costs = magnitude.sum(axis=-1, dtype=np.uint64)
  return np.argmin(costs, axis=0).astype(np.uint8)


def scanlines(images: np.ndarray, filter_type: int | None = None) -> np.ndarray:
  """(n, H, 1 + W*C) uint8: each row's filter type byte, then its filtered bytes.

  filter_type: None chooses per row; one of FILTER_TYPES is used for all.
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
  """libdeflate's level for images of this size (docs/speed.md: why)."""
  return SMALL_IMAGE_LEVEL if height * width <= SMALL_IMAGE_PIXELS else LEVEL


def _png_parts(images, level, compress, filter_type) -> Iterator[tuple]:
  """Each image's PNG as the pieces to join: header, IDAT chunk, IEND."""
  images = _check(images)
  _, height, width, channels = images.shape
  compress = compress or deflate.zlib_compress
  if level is None:
    level = deflate_level(height, width)
  head = header(height, width, channels)
  for rows in scanlines(images, filter_type):
    data = compress(rows, level)
    crc = _WORD.pack(zlib.crc32(data, _IDAT_CRC))
    yield head, _WORD.pack(len(data)), b'IDAT', data, crc, IEND


def encode_pngs(
    images: np.ndarray,
    level: int | None = None,
    compress: Callable[[bytes, int], bytes] | None = None,
    filter_type: int | None = None,
) -> list[bytes]:
  """(n, H, W, C) uint8 images (C in 1..4) -> n lossless PNG byte strings.

  level: None for `deflate_level`. compress: a zlib-stream compressor
  (data, level) -> bytes, libdeflate's by default. filter_type: `scanlines`.
  """
  return [
      b''.join(parts)
      for parts in _png_parts(images, level, compress, filter_type)
  ]


def encode_pngs_joined(images: np.ndarray) -> tuple[bytes, list[int]]:
  """The PNGs of `encode_pngs`, one after the other in one byte string, and
  where each ends (one copy of the bytes, not one per image and one more)."""
  parts, ends, end = [], [], 0
  for pieces in _png_parts(images, None, None, None):
    parts += pieces
    end += sum(len(p) for p in pieces)
    ends.append(end)
  return b''.join(parts), ends


def encode_png(image: np.ndarray, level: int | None = None) -> bytes:
  """One (H, W, C) uint8 image -> lossless PNG bytes."""
  return encode_pngs(np.asarray(image)[None], level)[0]
