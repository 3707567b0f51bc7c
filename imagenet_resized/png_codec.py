"""Lossless PNG encoding of image chunks.

`tfds.features.Image` passes `bytes` through unchanged but PNG-encodes numpy
arrays one at a time through a TF graph, which is the largest cost of a build.
We encode a chunk of images per call (the builder runs the calls in the
worker processes of `worker_pool`).

The PNG writer is written out here rather than called from Pillow (or OpenCV,
imagecodecs) on purpose. For images this small the libraries' per-image fixed
costs (an image object, an encoder, a buffer, and an adaptive filter search
row by row) cost more than compressing the pixels: measured on 32x32 fake
images, Pillow took ~150 us per image, OpenCV/imagecodecs at the same zlib
level ~130 us, and this writer ~45 us, with files of about the same size. It
writes the simplest valid PNG: 8-bit truecolour, no interlace, filter type 0
(None) on every row, one IDAT chunk compressed by the standard library's zlib,
which is deterministic for a given level and zlib version. The filter bytes
are laid out for the whole chunk of images at once with numpy. Any PNG decoder
reads the result (tests decode it with Pillow and with TensorFlow).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

# zlib's own default: files about the size Pillow or libpng write.
ZLIB_LEVEL = 6

_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# PNG colour type by the number of channels: grey, grey+alpha, RGB, RGBA.
_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


def _chunk(tag: bytes, data: bytes) -> bytes:
  """A PNG chunk: length, type, data, CRC-32 of type and data."""
  crc = zlib.crc32(data, zlib.crc32(tag))
  return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', crc)


_IEND = _chunk(b'IEND', b'')


def encode_pngs(images: np.ndarray, level: int = ZLIB_LEVEL) -> list[bytes]:
  """(n, H, W, C) uint8 images (C in 1..4) -> n lossless PNG byte strings."""
  images = np.asarray(images)
  if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] not in _COLOR_TYPES:
    raise ValueError(
        f'images have dtype {images.dtype} and shape {images.shape}; expected'
        ' uint8 of shape (n, height, width, channels) with 1 to 4 channels'
    )
  n, height, width, channels = images.shape
  header = _SIGNATURE + _chunk(
      b'IHDR',
      # Width, height, bit depth 8, colour type, deflate, filters, no interlace.
      struct.pack('>IIBBBBB', width, height, 8, _COLOR_TYPES[channels], 0, 0, 0),
  )
  # Every scanline is its filter-type byte (0: None) followed by its pixels.
  scanlines = np.zeros((n, height, 1 + width * channels), np.uint8)
  scanlines[:, :, 1:] = images.reshape(n, height, width * channels)
  return [
      b''.join((header, _chunk(b'IDAT', zlib.compress(rows, level)), _IEND))
      for rows in scanlines
  ]


def encode_png(image: np.ndarray, level: int = ZLIB_LEVEL) -> bytes:
  """One (H, W, C) uint8 image -> lossless PNG bytes."""
  return encode_pngs(np.asarray(image)[None], level)[0]
