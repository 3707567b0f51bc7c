"""A captioned grid of small pictures, upscaled so that they can be seen.

Each picture is enlarged by a whole factor (nearest neighbour: sharp pixels)
to at least `TILE_PX` a side, captioned in a `CAPTION_PX` band under it;
cells are `PAD_PX` of white apart, and from the edge.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

TILE_PX = 128
CAPTION_PX = 16
PAD_PX = 4
_BACKGROUND = (255, 255, 255)
_TEXT = (0, 0, 0)
_ELLIPSIS = '...'


def scale_for(size: int) -> int:
  """The whole upscaling factor for a `size`-pixel picture."""
  return max(1, math.ceil(TILE_PX / size))


def grid_shape(count: int) -> tuple[int, int]:
  """(rows, columns) of a grid of `count` pictures: as square as possible."""
  columns = max(1, math.ceil(math.sqrt(count)))
  return max(1, math.ceil(count / columns)), columns


def cell_origin(index: int, count: int, size: int) -> tuple[int, int]:
  """(x, y) of the top-left pixel of picture `index` in the grid."""
  _, columns = grid_shape(count)
  tile = size * scale_for(size)
  row, column = divmod(index, columns)
  return (
      PAD_PX + column * (tile + PAD_PX),
      PAD_PX + row * (tile + CAPTION_PX + PAD_PX),
  )


def _fit(text: str, font, width: int) -> str:
  """`text`, shortened with an ellipsis to fit in `width` pixels."""
  if font.getlength(text) <= width:
    return text
  while text and font.getlength(text + _ELLIPSIS) > width:
    text = text[:-1]
  return text.rstrip() + _ELLIPSIS


def draw_grid(
    images: Sequence[np.ndarray], captions: Sequence[str]
) -> Image.Image:
  """An RGB image of `images` (same-size HWC uint8) with `captions` under them."""
  if not images:
    raise ValueError('no pictures to draw')
  if len(images) != len(captions):
    raise ValueError(f'{len(images)} pictures but {len(captions)} captions')
  size = images[0].shape[0]
  tile = size * scale_for(size)
  rows, columns = grid_shape(len(images))
  grid = Image.new(
      'RGB',
      (
          PAD_PX + columns * (tile + PAD_PX),
          PAD_PX + rows * (tile + CAPTION_PX + PAD_PX),
      ),
      _BACKGROUND,
  )
  draw = ImageDraw.Draw(grid)
  font = ImageFont.load_default()
  for index, (image, caption) in enumerate(zip(images, captions)):
    x, y = cell_origin(index, len(images), size)
    picture = Image.fromarray(np.asarray(image, np.uint8)).convert('RGB')
    grid.paste(picture.resize((tile, tile), Image.Resampling.NEAREST), (x, y))
    # Centred by its bounding box (anchors need FreeType, which Pillow may
    # lack; its built-in bitmap font is then the default).
    text = _fit(caption, font, tile)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(
        (
            x + (tile - (right - left)) // 2 - left,
            y + tile + (CAPTION_PX - (bottom - top)) // 2 - top,
        ),
        text,
        fill=_TEXT,
        font=font,
    )
  return grid
