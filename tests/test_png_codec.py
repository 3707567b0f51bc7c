"""PNG writer: lossless, libpng's filter choices, every filter right, deterministic.

Independent references: Pillow's and TensorFlow's PNG decoders (pixels),
libpng itself through `tf.io.encode_png` (which filter each row gets), and a
per-byte transcription of the PNG specification's filter formulas below.
"""

import hashlib
import importlib.metadata
import io
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from imagenet_resized.tools import fake
from imagenet_resized.formats import png_codec

from conftest import REPO


def _fake_images(size: int, n: int = 12) -> np.ndarray:
  return fake.make_images(np.random.default_rng([7, size]), n, size)


def _noisy_images(size: int, n: int = 12, channels: int = 3) -> np.ndarray:
  """Smooth pictures plus noise: rows where every filter type can win."""
  rng = np.random.default_rng([11, size, channels])
  base = fake.make_images(rng, n, size).astype(np.int16)
  # Channels beyond the picture's three (alpha) are a copy of its green.
  base = np.concatenate([base, base[..., 1:2]], axis=-1)[..., :channels]
  noise = rng.integers(-12, 13, size=base.shape)
  return np.clip(base + noise, 0, 255).astype(np.uint8)


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
  """(type, data) of every chunk, checking each CRC."""
  assert png[:8] == b'\x89PNG\r\n\x1a\n'
  pos, chunks = 8, []
  while pos < len(png):
    (length,) = struct.unpack('>I', png[pos : pos + 4])
    tag, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
    (crc,) = struct.unpack('>I', png[pos + 8 + length : pos + 12 + length])
    assert crc == zlib.crc32(tag + data)
    chunks.append((tag, data))
    pos += 12 + length
  return chunks


def _scanlines(png: bytes, height: int) -> np.ndarray:
  """The filtered scanlines stored in a PNG: (H, 1 + row bytes) uint8."""
  idat = b''.join(data for tag, data in _chunks(png) if tag == b'IDAT')
  raw = np.frombuffer(zlib.decompress(idat), np.uint8)
  return raw.reshape(height, -1)


# ---------------------------------------------------------------------------
# The PNG specification's filters, byte by byte (section 9), as a reference.


def _paeth(a: int, b: int, c: int) -> int:
  p = a + b - c
  pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
  if pa <= pb and pa <= pc:
    return a
  return b if pb <= pc else c


def _reference_filter(image: np.ndarray, y: int, filter_type: int) -> list[int]:
  """Row y of an (H, W, C) image filtered with `filter_type`, per the spec."""
  rows = image.reshape(image.shape[0], -1).astype(int).tolist()
  bpp = image.shape[2]
  row = rows[y]
  prior = rows[y - 1] if y > 0 else [0] * len(row)
  out = []
  for i, x in enumerate(row):
    a = row[i - bpp] if i >= bpp else 0
    b = prior[i]
    c = prior[i - bpp] if i >= bpp else 0
    predicted = [0, a, b, (a + b) // 2, _paeth(a, b, c)][filter_type]
    out.append((x - predicted) % 256)
  return out


def _reference_choice(image: np.ndarray, y: int) -> int:
  """libpng's heuristic: least sum of the filtered bytes read as signed."""
  costs = [
      sum(min(v, 256 - v) for v in _reference_filter(image, y, t))
      for t in range(5)
  ]
  return costs.index(min(costs))


def _crafted_images() -> list[np.ndarray]:
  """Rows that reach every branch: wrap-around, Paeth's ties, edges."""
  rng = np.random.default_rng(3)
  flat = np.full((4, 5, 3), 200, np.uint8)  # a == b == c: Paeth takes a.
  ramp = np.arange(0, 256, 17, dtype=np.uint8)[:15].reshape(1, 5, 3).repeat(4, 0)
  extremes = np.array(
      [[[0, 255, 0], [255, 0, 255], [0, 0, 0], [255, 255, 255], [1, 254, 128]]],
      np.uint8,
  ).repeat(4, 0)
  extremes[1::2] = 255 - extremes[1::2]  # Each row the inverse of the one above.
  ties = np.array(  # Paeth ties between b and c, and between a and b.
      [[[10, 10, 10], [20, 20, 20]], [[20, 20, 20], [10, 10, 10]],
       [[30, 30, 30], [30, 30, 30]]], np.uint8,
  )
  noise = rng.integers(0, 256, size=(6, 7, 3), dtype=np.uint8)
  grey = rng.integers(0, 256, size=(5, 9, 1), dtype=np.uint8)
  grey_alpha = rng.integers(0, 256, size=(5, 4, 2), dtype=np.uint8)
  rgba = rng.integers(0, 256, size=(3, 6, 4), dtype=np.uint8)
  return [flat, ramp, extremes, ties, noise, grey, grey_alpha, rgba]


@pytest.mark.parametrize('filter_type', png_codec.FILTER_TYPES)
@pytest.mark.parametrize('index', range(len(_crafted_images())))
def test_every_filter_type_matches_the_spec_and_decodes(filter_type, index):
  image = _crafted_images()[index]
  (png,) = png_codec.encode_pngs(image[None], filter_type=filter_type)
  stored = _scanlines(png, image.shape[0])
  for y in range(image.shape[0]):
    assert stored[y, 0] == filter_type
    assert stored[y, 1:].tolist() == _reference_filter(image, y, filter_type), y
  decoded = np.asarray(Image.open(io.BytesIO(png)))
  np.testing.assert_array_equal(decoded.reshape(image.shape), image)


@pytest.mark.parametrize('index', range(len(_crafted_images())))
def test_adaptive_choice_is_libpngs_heuristic(index):
  image = _crafted_images()[index]
  (png,) = png_codec.encode_pngs(image[None])
  stored = _scanlines(png, image.shape[0])
  for y in range(image.shape[0]):
    assert stored[y, 0] == _reference_choice(image, y), y
    assert stored[y, 1:].tolist() == _reference_filter(image, y, stored[y, 0])


@pytest.mark.parametrize('size', [8, 32, 64])
def test_rows_get_the_filters_libpng_gives_them(size):
  """libpng (through TensorFlow) chooses the same filter for every row."""
  import tensorflow as tf
  images = _noisy_images(size)
  chosen = set()
  for image, png in zip(images, png_codec.encode_pngs(images)):
    ours = _scanlines(png, size)[:, 0]
    theirs = _scanlines(tf.io.encode_png(image).numpy(), size)[:, 0]
    np.testing.assert_array_equal(ours, theirs)
    chosen.update(ours.tolist())
  assert len(chosen) >= 3  # The images do exercise the choice.


@pytest.mark.parametrize('size', [8, 16, 32, 64])
def test_pngs_decode_to_the_source_pixels(size):
  images = np.concatenate([_fake_images(size), _noisy_images(size)])
  pngs = png_codec.encode_pngs(images)
  assert len(pngs) == len(images)
  for image, png in zip(images, pngs):
    decoded = Image.open(io.BytesIO(png))
    assert decoded.format == 'PNG' and decoded.mode == 'RGB'
    assert decoded.size == (size, size)
    np.testing.assert_array_equal(np.asarray(decoded), image)
    assert [tag for tag, _ in _chunks(png)] == [b'IHDR', b'IDAT', b'IEND']


def test_tensorflow_decodes_them_too():
  import tensorflow as tf
  images = np.concatenate([_fake_images(32, n=4), _noisy_images(32, n=4)])
  for image, png in zip(images, png_codec.encode_pngs(images)):
    np.testing.assert_array_equal(tf.io.decode_png(png, channels=3).numpy(), image)


def test_a_chunk_larger_than_one_filter_block():
  """Images filtered in several numpy blocks come out as if one by one."""
  images = _noisy_images(64, n=40)  # 40 * 12 KiB: more than one block.
  assert images.nbytes > png_codec._BLOCK_BYTES
  pngs = png_codec.encode_pngs(images)
  assert pngs == [png_codec.encode_png(image) for image in images]


@pytest.mark.parametrize('channels,mode', [(1, 'L'), (2, 'LA'), (4, 'RGBA')])
def test_other_channel_counts(channels, mode):
  images = _noisy_images(9, n=3, channels=channels)
  for image, png in zip(images, png_codec.encode_pngs(images)):
    decoded = Image.open(io.BytesIO(png))
    assert decoded.mode == mode
    np.testing.assert_array_equal(np.asarray(decoded).reshape(image.shape), image)


def test_encoding_is_deterministic():
  images = _noisy_images(32)
  assert png_codec.encode_pngs(images) == png_codec.encode_pngs(images.copy())
  assert png_codec.encode_png(images[3]) == png_codec.encode_pngs(images)[3]


def test_output_bytes_are_pinned():
  """The same pixels give these exact bytes on every machine.

  Shards are byte-identical across machines only if the PNG bytes are; they
  depend on libdeflate's version, which pyproject.toml pins through the
  `deflate` package. A change here means a new dependency version changed the
  output: re-pin deliberately, or keep the old version.
  """
  digest = hashlib.sha256()
  for size in (8, 32):  # Both of the levels used.
    for png in png_codec.encode_pngs(_noisy_images(size, n=8)):
      digest.update(png)
  assert digest.hexdigest() == PINNED_DIGEST


# Recorded with deflate 0.9.0 (the pinned version).
PINNED_DIGEST = '251ca47aa777e5347cea2a2dd823743450199a86b2fa40584577fd169075c526'


def test_the_deflate_package_is_pinned_to_the_installed_version():
  pyproject = (REPO / 'pyproject.toml').read_text()
  (pinned,) = re.findall(r'"deflate==([0-9.]+)"', pyproject)
  assert importlib.metadata.version('deflate') == pinned


def test_bad_input_is_refused_in_one_line():
  with pytest.raises(ValueError) as e:
    png_codec.encode_pngs(np.zeros((2, 8, 8, 3), np.float32))
  assert str(e.value) == (
      'images have dtype float32 and shape (2, 8, 8, 3); expected uint8 of'
      ' shape (n, height, width, channels) with 1 to 4 channels'
  )


@pytest.mark.parametrize('size', [8, 32, 64])
def test_chunk_png_decoding_equals_pillow(size):
  """The batched PNG decoder (the export's) against Pillow's, one image at a
  time, on our writer's PNGs (every row filter) and on Pillow's own."""
  import io
  from PIL import Image
  from imagenet_resized.formats import png_codec
  from imagenet_resized.formats import png_decoding
  rng = np.random.default_rng(size)
  smooth = np.cumsum(rng.integers(0, 9, (20, size, size, 3)), axis=2).astype(np.uint8)
  noise = rng.integers(0, 256, (20, size, size, 3), dtype=np.uint8)
  images = np.concatenate([smooth, noise])
  written = [png_codec.encode_pngs(images, filter_type=f)
             for f in (None, *png_codec.FILTER_TYPES)]
  pillow = []
  for image in images:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format='PNG')
    pillow.append(out.getvalue())
  for pngs in written + [pillow]:
    want = np.stack([np.asarray(Image.open(io.BytesIO(p))) for p in pngs])
    assert np.array_equal(png_decoding.decode_pngs(pngs, size), want)
  with pytest.raises(png_decoding.PngError, match='expected an 8-bit RGB image of'):
    png_decoding.decode_pngs([pillow[0]], 8 if size != 8 else 16)
