"""imagenet_resized: the downsampled ImageNet of Chrabaszcz et al. (2017) for TFDS.

TFDS glue only: configs, metadata, where the sources come from, and handing
(key, example) pairs to TFDS. Reading and validating the authors' batches is
in `sources` / `batch_format`, PNG encoding in `png_codec`, Beam in `beam_io`.
"""

from __future__ import annotations

import contextlib
import logging
import os

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import shuffle as tfds_shuffle

from imagenet_resized import deterministic_serializer
from imagenet_resized import examples, ilsvrc, resources, sources, worker_pool
from imagenet_resized.batch_format import SourceError

VERSION = tfds.core.Version('0.1.0')
HOMEPAGE = 'https://patrykchrabaszcz.github.io/Imagenet32/'

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _shuffle_memory_limit(limit_bytes: int):
  """Caps the bytes TFDS's shuffler keeps in memory before spilling to disk.

  TFDS's Shuffler holds up to `shuffle.MAX_MEM_BUFFER_SIZE` (1 GB) of
  serialized examples in memory, then moves them to bucket files; it reads the
  module attribute each time. The order of the output does not depend on it.
  """
  saved = tfds_shuffle.MAX_MEM_BUFFER_SIZE
  tfds_shuffle.MAX_MEM_BUFFER_SIZE = min(saved, limit_bytes)
  try:
    yield
  finally:
    tfds_shuffle.MAX_MEM_BUFFER_SIZE = saved


class ImagenetResizedConfig(tfds.core.BuilderConfig):
  """A square image size; `name` defaults to f'{size}x{size}'.

  Sizes other than 8, 16, 32 and 64 are built from the ILSVRC2012 tarballs
  (or their extracted folders) by the authors' method. `jpeg_draft=True`
  (name f'{size}x{size}_draft') builds from those too, decoding JPEGs at
  reduced scale: faster, not pixel-identical.
  """

  def __init__(
      self,
      *,
      size: int,
      name: str | None = None,
      jpeg_draft: bool = False,
      **kwargs,
  ):
    if not isinstance(size, int) or size < 1:
      raise ValueError(f'size must be a positive int, got {size!r}')
    kwargs.setdefault('version', VERSION)
    kwargs.setdefault(
        'description',
        f'ImageNet (ILSVRC2012) box-resized to {size}x{size} by the authors.'
        if size in sources.SIZES and not jpeg_draft
        else f'ImageNet (ILSVRC2012) box-resized to {size}x{size} from the'
        ' ILSVRC2012 JPEGs by the authors\' method'
        + (' (JPEG draft decoding, not pixel-identical).' if jpeg_draft else '.'),
    )
    default_name = f'{size}x{size}' + ('_draft' if jpeg_draft else '')
    super().__init__(name=name or default_name, **kwargs)
    self.size = size
    self.jpeg_draft = jpeg_draft


def _manual_instructions() -> str:
  lines = []
  for size in sources.SIZES:
    lines.append(f'  {size}x{size}: ' + ', '.join(sources.download_names(size)))
  return (
      'Log in at https://image-net.org/download-images (Downsampled ImageNet)'
      ' and download the npz zips of the size you want:\n'
      + '\n'.join(lines)
      + '\nPut them, unchanged, in the manual folder (`tfds build --manual_dir'
      ' DIR`, `tfds.download.DownloadConfig(manual_dir=DIR)`; default'
      ' ~/tensorflow_datasets/downloads/manual/). The original pickle zips'
      ' (same names without `_npz`) and the extracted batch files'
      ' (train_data_batch_1..10[.npz], val_data[.npz]) at any folder depth'
      ' work too.'
      '\nWithout them, ImageNet itself works, at any size (e.g.'
      ' ImagenetResizedConfig(size=24)): put ILSVRC2012_img_train.tar and'
      ' ILSVRC2012_img_val.tar (as for imagenet2012), or their extracted'
      ' folders train/nXXXXXXXX/*.JPEG and val/*.JPEG, in the manual folder.'
  )


class Builder(tfds.core.GeneratorBasedBuilder):
  """ImageNet downsampled to 8x8, 16x16, 32x32 or 64x64 (authors' labels)."""

  VERSION = VERSION
  RELEASE_NOTES = {'0.1.0': 'The authors\' npz/pickle archives, any form.'}
  BUILDER_CONFIGS = [ImagenetResizedConfig(size=s) for s in sources.SIZES]
  DEFAULT_CONFIG_NAME = '8x8'
  MANUAL_DOWNLOAD_INSTRUCTIONS = _manual_instructions()
  # Serialized examples TFDS's shuffler may hold in memory (its default: 1 GB)
  # before spilling to disk; bounds the peak memory of a build (BENCHMARKS.md).
  SHUFFLE_MEMORY_BYTES = 256 << 20

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.size
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(
                shape=(size, size, 3), dtype=np.uint8, encoding_format='png'
            ),
            'label': tfds.features.ClassLabel(names=list(resources.wnids())),
        }),
        supervised_keys=('image', 'label'),
        homepage=HOMEPAGE,
        # Filled in by _split_generators: which files each split came from.
        metadata=tfds.core.MetadataDict(),
    )

  def _download_and_prepare(self, dl_manager, download_config=None):
    # Beam is used only when the user asks for it with runner or options.
    self._use_beam = bool(
        download_config
        and (download_config.beam_options or download_config.beam_runner)
    )
    # Byte-identical shards from build to build (and faster serialization).
    with deterministic_serializer.serializer_for_builds(), _shuffle_memory_limit(
        self.SHUFFLE_MEMORY_BYTES
    ):
      return super()._download_and_prepare(dl_manager, download_config)

  def _find_sources(self, dl_manager) -> dict[str, sources.SplitSource]:
    """Manual folder first (any form); else download the npz zips."""
    size = self.builder_config.size
    # The public `dl_manager.manual_dir` raises when the folder is missing or
    # empty; we want to fall back to downloading instead.
    manual_dir = dl_manager._manual_dir  # pylint: disable=protected-access
    manual_dir = os.fspath(manual_dir) if manual_dir else None
    # Authors' archives first (published sizes only); then ImageNet itself.
    draft = self.builder_config.jpeg_draft
    authors = size in sources.SIZES and not draft
    found = sources.find_sources(manual_dir, size) if manual_dir and authors else None
    if found:
      return found
    found = ilsvrc.find_sources(manual_dir) if manual_dir else None
    if found:
      return found
    if not authors:
      raise SourceError(
          f'No ILSVRC2012 images for imagenet_resized/{self.builder_config.name}'
          f' (only 8x8, 16x16, 32x32 and 64x64 exist as the authors\' archives):'
          f' expected {ilsvrc.expected_sources()} in the manual_dir; looked in:'
          f' {manual_dir or "(no manual_dir)"}'
      )
    urls = [sources.URL_BASE + name for name in sources.download_names(size)]
    try:
      paths = dl_manager.download(urls)
    except Exception as e:  # pylint: disable=broad-except
      raise SourceError(
          sources.missing_sources_message(
              size, [manual_dir or '(no manual_dir)', sources.URL_BASE]
          )
          + f' (download failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""});'
          f' put the files in {manual_dir or "the manual_dir"}'
      ) from e
    return sources.sources_from_downloads([os.fspath(p) for p in paths], size)

  def _split_generators(self, dl_manager):
    found = self._find_sources(dl_manager)
    self.info.metadata['sources'] = {
        split: {
            'form': source.form,
            'files': [os.path.basename(f) for f in source.files],
            **self._ilsvrc_method(source),
        }
        for split, source in found.items()
    }
    return {
        split: self._generate_ilsvrc_examples(found[split])
        if isinstance(found[split], ilsvrc.SplitSource)
        else self._generate_examples(source=found[split])
        for split in sources.SPLITS
    }

  def _ilsvrc_method(self, source) -> dict[str, str]:
    """{'method': how images were made} for a source of ILSVRC2012 JPEGs."""
    if not isinstance(source, ilsvrc.SplitSource):
      return {}
    return {'method': ilsvrc.method(self.builder_config.jpeg_draft)}

  def _generate_ilsvrc_examples(self, source: ilsvrc.SplitSource):
    """Examples decoded and box-resized from the ILSVRC2012 JPEGs."""
    size = self.builder_config.size
    draft = self.builder_config.jpeg_draft
    if getattr(self, '_use_beam', False):
      return ilsvrc.beam_examples(source, size, draft)
    return ilsvrc.iter_examples(
        source, size, workers=worker_pool.default_workers(), draft=draft
    )

  def _generate_examples(self, source: sources.SplitSource):
    size = self.builder_config.size
    if getattr(self, '_use_beam', False):
      from imagenet_resized import beam_io  # pylint: disable=g-import-not-at-top
      return beam_io.ExamplesFromBatches(source, size)
    return examples.iter_split_examples(
        source, size, workers=worker_pool.default_workers()
    )
