"""One image: decoded and box-resized by the authors' method."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image

from imagenet_resized.common import SourceError
from imagenet_resized.ilsvrc import layout
from imagenet_resized.readers import one_line


@dataclasses.dataclass(frozen=True)
class Encoded:
  """One image to decode: its example key, where it is (for errors), label."""

  key: str
  where: str
  data: bytes
  label: int


def resize_image(
    data: bytes, where: str, size: int, draft: bool = False
) -> np.ndarray:
  """Encoded image -> (size, size, 3) uint8, the authors' method; `draft` lets
  the JPEG decoder scale down while decoding (faster, not pixel-identical)."""
  try:
    with Image.open(io.BytesIO(data), formats=layout.IMAGE_FORMATS) as image:
      width, height = image.size
      if width * height > layout.MAX_IMAGE_PIXELS:
        raise SourceError(
            f'{where}: a {width}x{height} image, {width * height} pixels, more'
            f' than the {layout.MAX_IMAGE_PIXELS} allowed (a decompression bomb?);'
            ' expected an image of at most 8192 x 8192 pixels'
        )
      if draft and image.format == 'JPEG':
        image.draft(None, (size, size))
      image.load()
      resized = image.convert('RGB').resize((size, size), Image.BOX)
  except SourceError:
    raise
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    reason = one_line.reason(e)
    raise SourceError(
        f'{where}: not a readable image ({type(e).__name__}: {reason});'
        ' expected a JPEG (or PNG) image'
    ) from None
  return np.asarray(resized)


def check_image_bytes(where: str, size: int) -> None:
  """Refuses an image file larger than MAX_IMAGE_BYTES, before reading it."""
  if size > layout.MAX_IMAGE_BYTES:
    raise SourceError(
        f'{where}: {size} bytes, more than the {layout.MAX_IMAGE_BYTES} allowed for'
        ' one image; expected a JPEG (or PNG) image'
    )
