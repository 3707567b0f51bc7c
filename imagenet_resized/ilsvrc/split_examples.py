"""A split's examples: over the worker pool, or as Beam work units."""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import posixpath

from imagenet_resized.common import TRAIN
from imagenet_resized.ilsvrc import class_labels
from imagenet_resized.ilsvrc import finding
from imagenet_resized.ilsvrc import folder_images
from imagenet_resized.ilsvrc import layout
from imagenet_resized.ilsvrc import resizing
from imagenet_resized.ilsvrc import tar_images
from imagenet_resized.pipeline import pixel_statistics
from imagenet_resized.pipeline import worker_pool
from imagenet_resized.readers import one_line
from imagenet_resized.writing import png_codec

# ---------------------------------------------------------------------------
# Examples, in this process or in forked workers.


def iter_examples(
    source: finding.SplitSource,
    size: int,
    workers: int = 0,
    draft: bool = False,
    tally: pixel_statistics.Tally | None = None,
) -> Iterator[tuple[str, dict]]:
  """(key, {'image': PNG bytes, 'label': int}) of a split, decoded in workers;
  the pixel sums of the images added to `tally` (if given)."""
  chunks = (
      (chunk, size, draft)
      for chunk in resizing.chunked(source.images(), layout.DECODE_CHUNK_IMAGES)
  )
  for encoded, sums in worker_pool.parallel_map(
      resizing.encode_chunk, chunks, workers
  ):
    if tally is not None:
      tally.add(sums)
    for key, png, label in encoded:
      yield key, {'image': png, 'label': label}


# ---------------------------------------------------------------------------
# Apache Beam: work units spread across workers.


# Parts of a split that one Beam worker reads on its own: four kinds, each a
# small type with `images()`.


@dataclasses.dataclass(frozen=True)
class ClassTarUnit:
  """The class tar `name` at byte `offset` (`length` bytes) of the train
  tarball `path`."""

  path: str
  name: str
  offset: int
  length: int

  def images(self) -> Iterator[resizing.Encoded]:
    wnid = layout.CLASS_TAR_RE.fullmatch(
        tar_images.member_path(self.name)
    ).group(1)
    label = class_labels.train_label(
        wnid,
        f'{self.path}:{one_line.shown(self.name)}',
        class_labels.label_of_wnid(),
    )
    with tar_images.open_tar(self.path) as f:
      f.seek(self.offset)
      yield from tar_images.iter_class_tar(
          tar_images.MemberSlice(f, self.length),
          self.path,
          self.name,
          wnid,
          label,
      )


@dataclasses.dataclass(frozen=True)
class ClassFolderUnit:
  """The extracted class folder `path` of the class `wnid`."""

  path: str
  wnid: str

  def images(self) -> Iterator[resizing.Encoded]:
    label = class_labels.train_label(
        self.wnid, self.path, class_labels.label_of_wnid()
    )
    yield from folder_images.iter_class_folder(self.wnid, self.path, label)


@dataclasses.dataclass(frozen=True)
class ValTarUnit:
  """Members (name, offset, length) of the validation tarball `path`."""

  path: str
  members: tuple[tuple[str, int, int], ...]

  def images(self) -> Iterator[resizing.Encoded]:
    labels, truth = (
        class_labels.label_of_wnid(),
        class_labels.validation_wnids(),
    )
    with tar_images.open_tar(self.path) as f:
      for name, offset, length in self.members:
        where = f'{self.path}:{one_line.shown(name)}'
        base = posixpath.basename(name)
        label = class_labels.validation_label(base, where, truth, labels)
        f.seek(offset)
        data = f.read(length)
        if len(data) != length:
          raise tar_images.tar_error(
              self.path, EOFError(f'{name} is cut short')
          )
        yield resizing.Encoded(f'val/{base}', where, data, label)


@dataclasses.dataclass(frozen=True)
class ValFilesUnit:
  """Extracted validation images: (path, class-folder WNID or None)."""

  files: tuple[tuple[str, str | None], ...]

  def images(self) -> Iterator[resizing.Encoded]:
    yield from folder_images.iter_val_files(self.files)


WorkUnit = ClassTarUnit | ClassFolderUnit | ValTarUnit | ValFilesUnit


def work_units(source: finding.SplitSource) -> list[WorkUnit]:
  """The split cut into units: one per class for train, slices of validation."""
  if source.form == layout.FORM_TARBALL and source.split == TRAIN:
    return [
        ClassTarUnit(source.path, m.name, m.offset_data, m.size)
        for name, m in tar_images.tar_members(source.path)
        if tar_images.class_tar_wnid(
            source.path, name, m
        )  # Refuses other members.
    ]
  if source.form == layout.FORM_TARBALL:
    members = []
    for _, m in tar_images.tar_members(source.path):
      resizing.check_image_bytes(
          f'{source.path}:{one_line.shown(m.name)}', m.size
      )
      members.append((m.name, m.offset_data, m.size))
    return [
        ValTarUnit(
            source.path, tuple(members[i : i + layout.BEAM_VAL_IMAGES_PER_UNIT])
        )
        for i in range(0, len(members), layout.BEAM_VAL_IMAGES_PER_UNIT)
    ]
  if source.split == TRAIN:
    return [
        ClassFolderUnit(path, wnid)
        for wnid, path in folder_images.train_class_folders(source.path)
    ]
  files = folder_images.val_files(source.path)
  return [
      ValFilesUnit(tuple(files[i : i + layout.BEAM_VAL_IMAGES_PER_UNIT]))
      for i in range(0, len(files), layout.BEAM_VAL_IMAGES_PER_UNIT)
  ]


def unit_examples(
    unit: WorkUnit, size: int, draft: bool = False
) -> Iterator[tuple[str, dict]]:
  """(key, example) of one work unit, decoded here."""
  for item in unit.images():
    key, png, label = resizing.image_example(item, size, draft)
    yield key, {'image': png, 'label': label}


_SUMS = 'pixel_sums'


def _unit_examples_and_sums(unit: WorkUnit, size: int, draft: bool = False):
  """Beam: the examples of a unit, then its pixel sums on the `_SUMS` output."""
  import apache_beam as beam

  sums = pixel_statistics.PixelSums()
  for item in unit.images():
    image = resizing.resize_image(item.data, item.where, size, draft)
    sums = sums + pixel_statistics.PixelSums.of_images(image[None])
    yield item.key, {'image': png_codec.encode_png(image), 'label': item.label}
  yield beam.pvalue.TaggedOutput(_SUMS, sums)


def beam_examples(
    source: finding.SplitSource, size: int, draft: bool = False, statistics=None
):
  """A Beam PTransform (PBegin -> (key, example)) spreading the units.

  `statistics`, if given, receives a PCollection holding the split's one
  `pixel_statistics.PixelSums`.
  """
  import apache_beam as beam

  units = work_units(source)

  @beam.ptransform_fn
  def examples_from_ilsvrc(pbegin):
    outputs = (
        pbegin
        | 'Units' >> beam.Create(units)
        | 'Spread' >> beam.Reshuffle()
        | 'Decode'
        >> beam.FlatMap(
            _unit_examples_and_sums, size=size, draft=draft
        ).with_outputs(_SUMS, main='examples')
    )
    if statistics is not None:
      statistics(
          outputs[_SUMS]
          | 'SumPixels' >> beam.CombineGlobally(pixel_statistics.total)
      )
    return outputs['examples']

  return examples_from_ilsvrc()
