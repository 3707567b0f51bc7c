"""PNG decoding, a chunk of images at a time (the export's workers).

8-bit RGB non-interlaced PNGs of one size (all of `png_codec`'s) are decoded
together: each one's IDAT data inflated by libdeflate, given the size it must
have, and all their scanlines unfiltered by one call of Pillow's PNG decoder
(`_unfilter`). Any other PNG is decoded by Pillow on its own. Not left to a
PNG library: its fixed cost per image dominates at these sizes (BENCHMARKS.md).
"""

from __future__ import annotations

import io
import struct
import zlib

import deflate
import numpy as np
from PIL import Image

from imagenet_resized.formats import png_codec

_CHUNK_HEAD = struct.Struct('>I4s')


class PngError(ValueError):
  """Bytes that are not the PNG they should be."""


def decode_png(data: bytes, size: int) -> np.ndarray:
  """(size, size, 3) uint8 of an 8-bit RGB PNG, by Pillow."""
  with Image.open(io.BytesIO(data), formats=['PNG']) as image:
    if image.mode != 'RGB' or image.size != (size, size):
      raise PngError(
          f'an image of mode {image.mode} and size {image.size}; expected an'
          f' 8-bit RGB image of {size}x{size}'
      )
    return np.asarray(image)


def idat_stream(data: bytes, size: int) -> bytes | None:
  """The zlib stream of a size x size PNG laid out as `png_codec` writes it,
  or None for any other layout."""
  before = len(png_codec.before_stream(size, 0))
  stream = len(data) - before - png_codec.IEND_AFTER_STREAM
  if (
      stream < 0
      or not data.startswith(png_codec.before_stream(size, stream))
      or not data.endswith(png_codec.IEND)
  ):
    return None
  return data[before : before + stream]


def _scanlines(data: bytes, size: int) -> bytes | None:
  """The inflated scanlines of an 8-bit RGB, non-interlaced size x size PNG,
  or None for any other PNG."""
  expected = size * (1 + 3 * size)
  stream = idat_stream(data, size)
  if stream is not None:  # The usual layout: no walk through the chunks.
    return inflated(stream, expected)
  if not data.startswith(png_codec.SIGNATURE):
    return None
  pos, idat = len(png_codec.SIGNATURE), []
  header = None
  while pos + 12 <= len(data):
    length, tag = _CHUNK_HEAD.unpack_from(data, pos)
    body = data[pos + 8 : pos + 8 + length]
    if len(body) != length:
      return None
    if tag == b'IHDR':
      if length != png_codec.IHDR.size:
        return None
      header = png_codec.IHDR.unpack(body)
    elif tag == b'IDAT':
      idat.append(body)
    elif tag == b'IEND':
      break
    elif tag == b'PLTE' or not tag[0] & 0x20:  # A palette, or unknown.
      return None
    pos += 12 + length
  if header != (size, size, 8, png_codec.RGB, 0, 0, 0) or not idat:
    return None
  return inflated(b''.join(idat), expected)


def inflated(stream: bytes, expected: int) -> bytes | None:
  """A zlib stream inflated, if it holds exactly `expected` bytes."""
  try:  # libdeflate, given the size; zlib for what it refuses.
    rows = deflate.zlib_decompress(stream, expected)
  except deflate.DeflateError:
    try:
      rows = zlib.decompress(stream)
    except zlib.error:
      return None
  return rows if len(rows) == expected else None


def _unfilter(scanlines: list[bytes], size: int) -> np.ndarray:
  """(n, size, size, 3) uint8 from n images' inflated, filtered scanlines.

  One Pillow decoder call for all: the images are stacked into one tall image
  in a stored (level 0) zlib stream, each after a zero row of filter type
  None (what the PNG spec takes as the row above an image's first row).
  """
  separator = bytes(1 + 3 * size)
  stacked = deflate.zlib_compress(separator + separator.join(scanlines), 0)
  tall = Image.frombytes(
      'RGB', (size, len(scanlines) * (size + 1)), stacked, 'zip', 'RGB'
  )
  return np.asarray(tall).reshape(len(scanlines), size + 1, size, 3)[:, 1:]


def decode_images(
    size: int, count: int, streams: list[tuple[int, bytes]], pngs, first=0
) -> np.ndarray:
  """(count, size, size, 3) uint8 from (row, bytes) of zlib streams of PNGs
  laid out as `png_codec` writes them, and of other PNGs.

  PngError if a PNG is not 8-bit RGB size x size, or a stream does not
  inflate to its image; `first`: the record number of row 0, for messages.
  """
  out = np.empty((count, size, size, 3), np.uint8)
  expected = size * (1 + 3 * size)
  fast, rows = [], []
  for row, stream in streams:
    scan = inflated(stream, expected)
    if scan is None:
      raise PngError(
          f"record {first + row}: its PNG's image data does not inflate to"
          f' {expected} bytes'
      )
    fast.append(row)
    rows.append(scan)
  for row, data in pngs:
    scan = _scanlines(data, size)
    if scan is None:
      out[row] = decode_png(data, size)
    else:
      fast.append(row)
      rows.append(scan)
  if fast:
    out[fast] = _unfilter(rows, size)
  return out


def decode_pngs(pngs: list[bytes], size: int) -> np.ndarray:
  """(n, size, size, 3) uint8 of n PNGs (see `decode_images`)."""
  return decode_images(size, len(pngs), [], list(enumerate(pngs)))
