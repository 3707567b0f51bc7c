"""PNG writer and worker pool: lossless, deterministic, ordered, bounded."""

import io

import numpy as np
import pytest
from PIL import Image

from imagenet_resized import fake, png_codec


def _fake_images(size: int, n: int = 12) -> np.ndarray:
  return fake.make_images(np.random.default_rng([7, size]), n, size)


@pytest.mark.parametrize('size', [8, 16, 32, 64])
def test_pngs_decode_to_the_source_pixels(size):
  images = _fake_images(size)
  pngs = png_codec.encode_pngs(images)
  assert len(pngs) == len(images)
  for image, png in zip(images, pngs):
    decoded = Image.open(io.BytesIO(png))
    assert decoded.format == 'PNG' and decoded.mode == 'RGB'
    np.testing.assert_array_equal(np.asarray(decoded), image)


def test_tensorflow_decodes_them_too():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  images = _fake_images(32, n=4)
  for image, png in zip(images, png_codec.encode_pngs(images)):
    np.testing.assert_array_equal(tf.io.decode_png(png, channels=3).numpy(), image)


@pytest.mark.parametrize('channels,mode', [(1, 'L'), (2, 'LA'), (4, 'RGBA')])
def test_other_channel_counts(channels, mode):
  rng = np.random.default_rng(channels)
  images = rng.integers(0, 256, size=(3, 5, 7, channels), dtype=np.uint8)
  for image, png in zip(images, png_codec.encode_pngs(images)):
    decoded = Image.open(io.BytesIO(png))
    assert decoded.mode == mode
    np.testing.assert_array_equal(
        np.asarray(decoded).reshape(image.shape), image
    )


def test_encoding_is_deterministic():
  images = _fake_images(32)
  assert png_codec.encode_pngs(images) == png_codec.encode_pngs(images.copy())
  assert png_codec.encode_png(images[3]) == png_codec.encode_pngs(images)[3]


def test_bad_input_is_refused_in_one_line():
  with pytest.raises(ValueError) as e:
    png_codec.encode_pngs(np.zeros((2, 8, 8, 3), np.float32))
  assert str(e.value) == (
      'images have dtype float32 and shape (2, 8, 8, 3); expected uint8 of'
      ' shape (n, height, width, channels) with 1 to 4 channels'
  )
