"""imagenet_resized: the downsampled ImageNet of Chrabaszcz et al. (2017) for TFDS.

TFDS glue only: the builder's info, where each split's source comes from,
and handing (key, example) pairs to TFDS. The configs are in `configs`, the
rest in the wings (docs/architecture.md).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import tensorflow_datasets as tfds

from imagenet_resized import common
from imagenet_resized import configs
from imagenet_resized import resources
from imagenet_resized.authors import batch_files
from imagenet_resized.authors import discovery
from imagenet_resized.authors import download_probe
from imagenet_resized.authors import imagenet16_120
from imagenet_resized.authors import publication
from imagenet_resized.authors import row_selection
from imagenet_resized.common import NUM_CLASSES
from imagenet_resized.common import SourceError
from imagenet_resized.ilsvrc import finding
from imagenet_resized.ilsvrc import layout
from imagenet_resized.ilsvrc import split_examples
from imagenet_resized.pipeline import examples
from imagenet_resized.pipeline import pixel_statistics
from imagenet_resized.pipeline import stop_signals
from imagenet_resized.pipeline import worker_pool
from imagenet_resized.readers import one_line
from imagenet_resized.tfds_glue import build_lock
from imagenet_resized.tfds_glue import build_metadata
from imagenet_resized.tfds_glue import download_touches
from imagenet_resized.tfds_glue import tfds_touches

HOMEPAGE = 'https://patrykchrabaszcz.github.io/Imagenet32/'
LOGIN_PAGE = 'https://image-net.org/download-images'


def _manual_instructions() -> str:
  lines = [
      f'  {size}x{size}: ' + ', '.join(publication.download_names(size))
      for size in common.SIZES
  ]
  return (
      f'The download site asks for a login: log in at {LOGIN_PAGE}'
      ' (Downsampled ImageNet) and download the npz zips of the size you'
      ' want:\n'
      + '\n'.join(lines)
      + '\nPut them, unchanged, in the manual folder (`tfds build --manual_dir'
      ' DIR`, `tfds.download.DownloadConfig(manual_dir=DIR)`; default'
      ' ~/tensorflow_datasets/downloads/manual/). The original pickle zips'
      ' (same names without `_npz`) and the extracted batch files'
      ' (train_data_batch_1..10[.npz], val_data[.npz]) at any folder depth'
      ' work too.'
      '\nThe configs named SxS_ilsvrc2012 (e.g. 32x32_ilsvrc2012, or any size'
      " with ImagenetResizedConfig(size=S, source='ilsvrc2012')) compute the"
      ' images from ImageNet itself instead: put ILSVRC2012_img_train.tar and'
      ' ILSVRC2012_img_val.tar (as for imagenet2012), or their extracted'
      ' folders train/nXXXXXXXX/*.JPEG and val/*.JPEG, in the manual folder.'
  )


def _ilsvrc_hint(size: int) -> str:
  return (
      f'to compute the images from the ILSVRC2012 JPEGs instead, build'
      f' imagenet_resized/{configs.config_name(size, configs.ILSVRC2012)}'
      f' (ImagenetResizedConfig(size={size}, source={configs.ILSVRC2012!r}))'
  )


class Builder(tfds.core.GeneratorBasedBuilder):
  """ImageNet downsampled to 8x8, 16x16, 32x32 or 64x64 (authors' labels)."""

  VERSION = configs.VERSION
  RELEASE_NOTES = {
      '0.1.0': "The authors' npz/pickle archives, any form; ILSVRC2012 builds"
      ' under names of their own.',
  }
  BUILDER_CONFIGS = list(configs.REGISTERED)
  DEFAULT_CONFIG_NAME = '8x8'
  MANUAL_DOWNLOAD_INSTRUCTIONS = _manual_instructions()
  # Serialized examples TFDS's shuffler may hold in memory before spilling to
  # disk: bounds the peak memory of a build.
  SHUFFLE_MEMORY_BYTES = 192 << 20
  # Set when a build starts: whether it runs on Beam, and in sources' order.
  _use_beam = False
  _ordered = False

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.size
    num_classes = self.builder_config.num_classes or NUM_CLASSES
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(
            {
                'image': tfds.features.Image(
                    shape=(size, size, 3), dtype=np.uint8, encoding_format='png'
                ),
                # The authors' label order; a class subset keeps its first classes.
                'label': tfds.features.ClassLabel(
                    names=list(resources.wnids()[:num_classes])
                ),
            }
        ),
        supervised_keys=('image', 'label'),
        homepage=HOMEPAGE,
        # Filled in by the build: each split's source files and statistics.
        metadata=build_metadata.BuildMetadata(),
    )

  def download_and_prepare(
      self, *, download_dir=None, download_config=None, **kwargs
  ):
    """TFDS's download_and_prepare, one build of this dataset at a time
    (`build_lock`: a build waits for another into the same local data_dir and
    reuses its result; killed builds' leftovers are removed), stopped by
    SIGINT, SIGTERM and SIGHUP with one line (`stop_signals`)."""
    mode = getattr(download_config, 'download_mode', None)
    with stop_signals.stopped_by_signals(f'the build of {self.info.full_name}'):
      return build_lock.prepare_once(
          str(self.data_path),
          self.info.full_name,
          prepare=functools.partial(
              super().download_and_prepare,
              download_dir=download_dir,
              download_config=download_config,
              **kwargs,
          ),
          # Made before the build it waited for: it has not read the splits.
          reread=lambda: self.info.read_from_directory(self.data_dir),
          overwrite=bool(getattr(mode, 'overwrite_dataset', False)),
      )

  def unprepared(self, data_dir: str | None = None) -> str:
    """One line: the dataset is not prepared, and how to prepare it
    (`data_dir`: as the user named it, for the command)."""
    name = self.builder_config.name
    return (
        f'imagenet_resized/{name} is not prepared in {self.data_dir}: build'
        f' it first (tfds build imagenet_resized --imports imagenet_resized'
        f' --config {name} --manual_dir DIR'
        + (f' --data_dir {data_dir}' if data_dir else '')
        + ')'
    )

  def _download_and_prepare(self, dl_manager, download_config=None):
    self._use_beam = bool(
        download_config
        and (download_config.beam_options or download_config.beam_runner)
    )
    # With max_examples_per_split, TFDS keeps the first examples given: those
    # of the sources' order, as with TFDS's own builder, not of timing.
    self._ordered = (
        getattr(download_config, 'max_examples_per_split', None) is not None
    )
    # A touch of TFDS's internals that cannot be used is skipped (one line).
    touches = self._touches = tfds_touches.check(dl_manager, self)
    with touches.applied(self):
      return super()._download_and_prepare(dl_manager, download_config)

  def _find_sources(self, dl_manager) -> dict[str, common.SplitSource]:
    """{split: source}, from the config's one kind of source."""
    manual_dir = download_touches.manual_dir_of(
        dl_manager, getattr(self, '_touches', None)
    )
    if self.builder_config.source == configs.ILSVRC2012:
      return self._find_ilsvrc(manual_dir)
    found = discovery.find_sources(manual_dir, self.builder_config.size)
    return found or self._download(dl_manager, manual_dir)

  def _find_ilsvrc(
      self, manual_dir: str | None
  ) -> dict[str, finding.SplitImages]:
    found = finding.find_sources(manual_dir)
    if not found:
      raise SourceError(
          f'No ILSVRC2012 images for imagenet_resized/{self.builder_config.name}:'
          f' expected {finding.expected_sources()} in the manual_dir; looked in:'
          f' {manual_dir or "(no manual_dir)"}'
      )
    return found

  def _download(
      self, dl_manager, manual_dir: str | None
  ) -> dict[str, batch_files.SplitBatches]:
    """The npz zips through TFDS's downloader, if the site can give them."""
    size = self.builder_config.size
    place = manual_dir or 'the manual_dir'

    def cannot(why: str) -> SourceError:
      return SourceError(
          discovery.missing_sources_message(
              size, [manual_dir or '(no manual_dir)', publication.URL_BASE]
          )
          + f' ({why}); the site asks for a login: download them at'
          f' {LOGIN_PAGE} (Downsampled ImageNet) and put them, unchanged, in'
          f' {place}; or {_ilsvrc_hint(size)}'
      )

    urls = [
        publication.URL_BASE + name for name in publication.download_names(size)
    ]
    # Fail in seconds, not after minutes of TFDS's retries: probe the site,
    # unless TFDS has the file cached or the download is not TFDS's own (its
    # test harness serves EXAMPLE_DIR through it: then only it is asked).
    touches = getattr(self, '_touches', None) or tfds_touches.check()
    if download_touches.downloads_through_tfds(dl_manager) and touches.uses(
        tfds_touches.DOWNLOAD_CACHE
    ):
      for url in urls:
        if not download_touches.is_download_cached(dl_manager, url):
          why = download_probe.why_not_downloadable(url)
          if why:
            raise cannot(f'download failed: {why}')
    try:
      paths = dl_manager.download(urls)
    except Exception as e:
      raise cannot(
          f'download failed: {type(e).__name__}: {one_line.first_line(e)}'
      ) from e
    return discovery.sources_from_downloads([str(p) for p in paths], size)

  def _split_generators(self, dl_manager):
    found: dict[str, common.SplitSource] = self._find_sources(dl_manager)
    self.info.metadata['sources'] = {
        split: {
            'form': source.form,
            'files': [os.path.basename(f) for f in source.files],
            **self._method(),
        }
        for split, source in found.items()
    }
    generate = (
        self._generate_ilsvrc_examples
        if self.builder_config.source == configs.ILSVRC2012
        else self._generate_examples
    )
    generators = {
        split: generate(found[split], split=split) for split in common.SPLITS
    }
    if self.builder_config.has_x_splits:
      generators.update(self._x_split_generators(found[common.VALIDATION]))
    return generators

  def _x_split_generators(self, validation: batch_files.SplitBatches) -> dict:
    """NAS-Bench-201's x_valid and x_test: positions among the validation
    rows of classes 1..120, which must be 6,000 (checked before building)."""
    config = self.builder_config
    imagenet16_120.check_validation_rows(
        examples.count_rows_of_classes(
            validation, config.size, config.num_classes
        ),
        ', '.join(b.where for b in validation.batches),
    )
    return {
        split: self._generate_examples(
            validation,
            row_selection.ClassPositions(config.num_classes, positions),
            split=split,
        )
        for split, positions in imagenet16_120.x_split_positions().items()
    }

  def _method(self) -> dict[str, str]:
    """{'method': how images were made} where they are computed here."""
    if self.builder_config.source != configs.ILSVRC2012:
      return {}
    return {'method': layout.method(self.builder_config.jpeg_draft)}

  def _beam_statistics(self, split: str | None):
    """Where a Beam split's PCollection of pixel sums goes (None: nowhere)."""
    if split is None:
      return None
    return lambda sums: self.info.metadata.add_beam_statistics(
        split, sums, self.data_dir
    )

  def _tallied(self, split: str | None, make_examples):
    """The examples `make_examples(tally)` gives; once they have all been
    read, the split's pixel statistics go into info.metadata."""
    tally = pixel_statistics.Tally()
    yield from make_examples(tally)
    if split is not None:
      self.info.metadata.set_statistics(split, tally.sums)

  def _generate_ilsvrc_examples(
      self, source: finding.SplitImages, split: str | None = None
  ):
    """Examples decoded and box-resized from the ILSVRC2012 JPEGs."""
    size = self.builder_config.size
    draft = self.builder_config.jpeg_draft
    if self._use_beam:
      return split_examples.beam_examples(
          source, size, draft, statistics=self._beam_statistics(split)
      )
    return self._tallied(
        split,
        lambda tally: split_examples.iter_examples(
            source,
            size,
            workers=worker_pool.default_workers(),
            draft=draft,
            tally=tally,
            ordered=self._ordered,
        ),
    )

  def _generate_examples(
      self,
      source: batch_files.SplitBatches,
      selection=None,
      split: str | None = None,
  ):
    size = self.builder_config.size
    num_classes = self.builder_config.num_classes
    check_kept = None
    if selection is None and num_classes is None:
      selection = row_selection.EveryRow()
    elif selection is None:
      selection = row_selection.FirstClasses(num_classes)
      if self.builder_config.has_x_splits:
        # The published archives give ImageNet16-120's published sizes.
        check_kept = functools.partial(
            imagenet16_120.check_published_counts,
            source.split,
            where=', '.join(source.files),
        )
    if self._use_beam:
      from imagenet_resized.tfds_glue import beam_io

      return beam_io.examples_from_batches(
          source,
          size,
          selection,
          check_kept,
          statistics=self._beam_statistics(split),
      )
    return self._tallied(
        split,
        lambda tally: examples.iter_split_examples(
            source,
            size,
            workers=worker_pool.default_workers(),
            selection=selection,
            check_kept=check_kept,
            tally=tally,
            ordered=self._ordered,
        ),
    )


# Where TFDS would find its own imagenet_resized by this name first (4.9.4 to
# 4.9.6), the name finds this builder (tfds_touches.NAME_LOOKUP).
tfds_touches.name_resolves_to(Builder)
