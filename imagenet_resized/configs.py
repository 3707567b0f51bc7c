"""The dataset's configs: one name, one dataset.

`ImagenetResizedConfig` checks that its arguments name one dataset and gives
it its one name (`config_name`); `from_name` turns a name back into its
config. Class subsets of the authors' data are `SxS_K`, the first K classes
(`16x16_120` is ImageNet16-120).
"""

from __future__ import annotations

import re

import tensorflow_datasets as tfds

from imagenet_resized import common
from imagenet_resized.authors import imagenet16_120
from imagenet_resized.common import NUM_CLASSES

VERSION = tfds.core.Version('0.1.0')

# Where a config's images come from.
AUTHORS = 'authors'  # The authors' published batches (npz or pickle).
ILSVRC2012 = 'ilsvrc2012'  # Computed here from the ILSVRC2012 JPEGs.
SOURCE_NAMES = (AUTHORS, ILSVRC2012)


class ConfigError(ValueError):
  """A config that would not name one well-defined dataset."""


def config_name(
    size: int,
    source: str = AUTHORS,
    jpeg_draft: bool = False,
    num_classes: int | None = None,
) -> str:
  """A config's one name: '32x32', '16x16_120', '32x32_ilsvrc2012_draft'."""
  name = f'{size}x{size}'
  if num_classes is not None:
    name += f'_{num_classes}'
  if source == ILSVRC2012:
    name += '_ilsvrc2012'
  return name + ('_draft' if jpeg_draft else '')


def _description(
    size: int, source: str, jpeg_draft: bool, num_classes: int | None
) -> str:
  if num_classes is not None:
    text = (
        f"The authors' {size}x{size} batches restricted to their first"
        f' {num_classes} classes (1-based labels 1..{num_classes}, here'
        f' 0..{num_classes - 1}), examples keyed as in {size}x{size}.'
    )
    if (size, num_classes) == (imagenet16_120.SIZE, imagenet16_120.NUM_CLASSES):
      text += (
          ' ImageNet16-120 of NAS-Bench-201 (Dong and Yang, 2020), with its'
          ' x_valid and x_test halves of the validation split.'
      )
    return text
  if source == AUTHORS:
    return (
        f"ImageNet (ILSVRC2012) box-resized to {size}x{size}: the authors'"
        ' published batches.'
    )
  return (
      f'ImageNet (ILSVRC2012) box-resized to {size}x{size}, computed from the'
      " ILSVRC2012 JPEGs by the authors' documented method (Pillow,"
      " convert('RGB'), resize BOX); not compared with the authors' files,"
      ' whose exact JPEGs and Pillow version are unknown, so pixels may differ;'
      " keys and order differ from the authors' archives."
      + (
          ' JPEG draft decoding: faster, not pixel-identical to the full'
          ' decode.'
          if jpeg_draft
          else ''
      )
  )


def _checked_name(size, source, jpeg_draft, num_classes, name) -> str:
  """The config's one name; ConfigError if the arguments name no dataset."""
  if isinstance(size, bool) or not isinstance(size, int) or size < 1:
    raise ConfigError(f'size={size!r}: expected a positive int')
  if source not in SOURCE_NAMES:
    raise ConfigError(
        f"source={source!r}: expected {AUTHORS!r} (the authors' archives) or"
        f' {ILSVRC2012!r} (computed from the ILSVRC2012 JPEGs)'
    )
  if source == AUTHORS and size not in common.SIZES:
    raise ConfigError(
        f'size={size}: the authors published 8x8, 16x16, 32x32 and 64x64'
        f' only; to compute {size}x{size} from the ILSVRC2012 JPEGs, ask for'
        f' ImagenetResizedConfig(size={size}, source={ILSVRC2012!r})'
    )
  if jpeg_draft and source != ILSVRC2012:
    raise ConfigError(
        'jpeg_draft=True: only JPEGs can be draft-decoded; expected'
        f' source={ILSVRC2012!r} with it'
    )
  if num_classes is not None:
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, int)
        or not 1 <= num_classes < NUM_CLASSES
    ):
      raise ConfigError(
          f'num_classes={num_classes!r}: expected 1..{NUM_CLASSES - 1}, the'
          f" first classes of the authors' labels (all {NUM_CLASSES} is"
          f' ImagenetResizedConfig(size={size}))'
      )
    if source != AUTHORS:
      raise ConfigError(
          f'num_classes={num_classes}: class subsets are drawn from the'
          f" authors' batches; expected source={AUTHORS!r}"
      )
  canonical = config_name(size, source, jpeg_draft, num_classes)
  if name is not None and name != canonical:
    raise ConfigError(
        f'name={name!r}: this config is {canonical!r}; expected no name (each'
        ' dataset has one name, so that a name always means the same examples)'
    )
  return canonical


# The registered configs by name (see ImagenetResizedConfig.__new__).
_REGISTERED: dict[str, ImagenetResizedConfig] = {}


class ImagenetResizedConfig(tfds.core.BuilderConfig):
  """One dataset: an image size and where its images come from.

  `ImagenetResizedConfig(size=S)` (S in 8, 16, 32, 64; name 'SxS') is the
  authors' published data. `source='ilsvrc2012'` computes the images from the
  ILSVRC2012 JPEGs by the authors' method, at any size (name
  'SxS_ilsvrc2012'); `jpeg_draft=True` decodes the JPEGs at reduced scale,
  faster but not pixel-identical (name 'SxS_ilsvrc2012_draft').
  """

  def __new__(cls, *args, **kwargs):
    # TFDS compares a registered name's config by identity, so asking for a
    # registered dataset by its arguments gives the registered object (without
    # arguments, as when unpickled, a new object).
    if 'size' in kwargs and not args:
      name = _checked_name(
          kwargs['size'],
          kwargs.get('source', AUTHORS),
          kwargs.get('jpeg_draft', False),
          kwargs.get('num_classes'),
          kwargs.get('name'),
      )
      extra = set(kwargs) - {
          'size',
          'source',
          'jpeg_draft',
          'num_classes',
          'name',
      }
      if name in _REGISTERED and not extra:
        return _REGISTERED[name]
    return super().__new__(cls)

  def __init__(
      self,
      *,
      size: int,
      source: str = AUTHORS,
      jpeg_draft: bool = False,
      num_classes: int | None = None,
      name: str | None = None,
      **kwargs,
  ):
    if _REGISTERED.get(getattr(self, 'name', None)) is self:
      return  # The registered config, given back by __new__.
    canonical = _checked_name(size, source, jpeg_draft, num_classes, name)
    kwargs.setdefault('version', VERSION)
    kwargs.setdefault(
        'description', _description(size, source, jpeg_draft, num_classes)
    )
    super().__init__(name=canonical, **kwargs)
    self.size = size
    self.source = source
    self.jpeg_draft = jpeg_draft
    self.num_classes = num_classes

  @property
  def has_x_splits(self) -> bool:
    """Whether this is ImageNet16-120, with NAS-Bench-201's x_valid and x_test."""
    return (self.size, self.num_classes) == (
        imagenet16_120.SIZE,
        imagenet16_120.NUM_CLASSES,
    )

  @classmethod
  def registered(cls, **kwargs) -> ImagenetResizedConfig:
    """A config that TFDS finds by name (`tfds.builder('imagenet_resized/NAME')`)."""
    config = cls(**kwargs)
    _REGISTERED[config.name] = config
    return config


REGISTERED = tuple(
    [
        ImagenetResizedConfig.registered(size=s, source=source)
        for source in SOURCE_NAMES
        for s in common.SIZES
    ]
    + [
        ImagenetResizedConfig.registered(
            size=imagenet16_120.SIZE, num_classes=imagenet16_120.NUM_CLASSES
        )
    ]
)
_SUBSET_NAME = re.compile(r'(\d+)x\1_(\d+)')


def from_name(name: str) -> ImagenetResizedConfig:
  """The config named `name`: a registered one ('32x32', '16x16_120',
  '32x32_ilsvrc2012') or a class subset ('32x32_100'); ConfigError (one
  line) for any other name."""
  if name in _REGISTERED:
    return _REGISTERED[name]
  match = _SUBSET_NAME.fullmatch(name)
  if not match:
    raise ConfigError(
        f'config {name!r}: not a config of imagenet_resized; expected one of'
        f' {", ".join(sorted(_REGISTERED))}, or SxS_K (a class subset)'
    )
  return ImagenetResizedConfig(size=int(match[1]), num_classes=int(match[2]))
