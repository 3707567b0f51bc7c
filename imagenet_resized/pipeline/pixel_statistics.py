"""Exact per-channel pixel statistics: integer sums, mean and std at the end.

A split's per-channel (R, G, B) mean and std, 0..255 scale, computed exactly:
each chunk of images gives its pixel count and, per channel, the integer sums
of its values and of their squares (`PixelSums.of_images`), which add up
(`+`) in any order, in any process, to the same integers. Only the final
division is in floating point: mean = S1 / n, and the population std (ddof=0)
sqrt(n * S2 - S1**2) / n, free of cancellation error. Pure numpy: worker
processes import it.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

CHANNELS = 3
# metadata[METADATA_KEY][split] == {'mean': [r, g, b], 'std': [r, g, b]}.
METADATA_KEY = 'statistics'
# Image rows summed at a time in float32: 256 * 255**2 < 2**24, so every
# partial sum is an integer float32 holds exactly, in any order of addition.
_BLOCK_ROWS = 256


@dataclasses.dataclass(frozen=True)
class PixelSums:
  """Pixels counted, per-channel sums of values and of squares (exact ints)."""

  pixels: int = 0
  sums: tuple[int, ...] = (0,) * CHANNELS
  squares: tuple[int, ...] = (0,) * CHANNELS

  @classmethod
  def of_images(cls, images: np.ndarray) -> PixelSums:
    """The sums of (n, H, W, 3) uint8 images."""
    images = np.asarray(images)
    if (
        images.dtype != np.uint8
        or images.ndim != 4
        or images.shape[3] != CHANNELS
    ):
      raise ValueError(
          f'images have dtype {images.dtype} and shape {images.shape};'
          ' expected uint8 of shape (n, height, width, 3)'
      )
    n, height, width, _ = images.shape
    if n == 0:
      return cls()
    # Rows of W*3 bytes, summed down their columns a block at a time by a
    # float32 product with ones (exact: _BLOCK_ROWS), then folded into
    # channels as Python ints (docs/speed.md).
    rows = images.reshape(n * height, width * CHANNELS)
    sums = np.zeros(width * CHANNELS, np.int64)
    squares = np.zeros(width * CHANNELS, np.int64)
    ones = np.ones(_BLOCK_ROWS, np.float32)
    for start in range(0, len(rows), _BLOCK_ROWS):
      block = rows[start : start + _BLOCK_ROWS].astype(np.float32)
      weights = ones[: len(block)]
      sums += (weights @ block).astype(np.int64)
      np.multiply(block, block, out=block)
      squares += (weights @ block).astype(np.int64)
    return cls(
        n * height * width,
        tuple(int(v) for v in sums.reshape(width, CHANNELS).sum(axis=0)),
        tuple(int(v) for v in squares.reshape(width, CHANNELS).sum(axis=0)),
    )

  def __add__(self, other: PixelSums) -> PixelSums:
    return PixelSums(
        self.pixels + other.pixels,
        tuple(a + b for a, b in zip(self.sums, other.sums)),
        tuple(a + b for a, b in zip(self.squares, other.squares)),
    )

  def mean(self) -> list[float]:
    """Per-channel mean on the 0..255 scale."""
    return [s / self.pixels for s in self.sums]

  def std(self) -> list[float]:
    """Per-channel population standard deviation (ddof=0), 0..255 scale."""
    n = self.pixels
    return [
        math.sqrt(n * q - s * s) / n for s, q in zip(self.sums, self.squares)
    ]

  def as_metadata(self) -> dict[str, list[float]]:
    """{'mean': [r, g, b], 'std': [r, g, b]}, as stored in info.metadata."""
    if not self.pixels:
      return {'mean': [], 'std': []}
    return {'mean': self.mean(), 'std': self.std()}

  def as_json(self) -> dict:
    """The exact integers (to carry them across processes as JSON)."""
    return {
        'pixels': self.pixels,
        'sums': list(self.sums),
        'squares': list(self.squares),
    }

  @classmethod
  def from_json(cls, data: dict) -> PixelSums:
    return cls(
        int(data['pixels']),
        tuple(int(v) for v in data['sums']),
        tuple(int(v) for v in data['squares']),
    )


def total(parts) -> PixelSums:
  """The sum of an iterable of PixelSums (a Beam CombineFn's body too)."""
  return sum(parts, PixelSums())


class Tally:
  """A running PixelSums that parts are added to as they arrive."""

  def __init__(self):
    self.sums = PixelSums()

  def add(self, part: PixelSums) -> None:
    self.sums = self.sums + part
