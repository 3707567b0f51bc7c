"""A split's examples, made unit by unit over the worker pool or on Beam.

A work unit (`work_units`) is a class of the train split (a class tar or
folder) or a slice of the validation images; `unit_rows` makes its examples.
"""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import posixpath

import numpy as np

from imagenet_resized.common import TRAIN
from imagenet_resized.ilsvrc import class_labels
from imagenet_resized.ilsvrc import finding
from imagenet_resized.ilsvrc import folder_images
from imagenet_resized.ilsvrc import layout
from imagenet_resized.ilsvrc import resizing
from imagenet_resized.ilsvrc import tar_images
from imagenet_resized.pipeline import examples
from imagenet_resized.pipeline import pixel_statistics
from imagenet_resized.pipeline import worker_pool
from imagenet_resized.readers import one_line


@dataclasses.dataclass(frozen=True)
class ClassTarUnit:
  """The class tar `name` at `offset` (`length` bytes) of the tarball `path`."""

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
    labels = class_labels.label_of_wnid()
    truth = class_labels.validation_wnids()
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


def _slices(items: list, n: int) -> list[tuple]:
  return [tuple(items[i : i + n]) for i in range(0, len(items), n)]


def work_units(source: finding.SplitImages) -> list[WorkUnit]:
  """The split cut into units: one per class for train, slices of validation."""
  if source.form == layout.FORM_TARBALL and source.split == TRAIN:
    return [
        ClassTarUnit(source.path, m.name, m.offset_data, m.size)
        for name, m in tar_images.tar_members(source.path)
        # Refuses members that are not class tars.
        if tar_images.class_tar_wnid(source.path, name, m)
    ]
  if source.form == layout.FORM_TARBALL:
    members = []
    for _, m in tar_images.tar_members(source.path):
      resizing.check_image_bytes(
          f'{source.path}:{one_line.shown(m.name)}', m.size
      )
      members.append((m.name, m.offset_data, m.size))
    return [
        ValTarUnit(source.path, part)
        for part in _slices(members, layout.VAL_IMAGES_PER_UNIT)
    ]
  if source.split == TRAIN:
    return [
        ClassFolderUnit(path, wnid)
        for wnid, path in folder_images.train_class_folders(source.path)
    ]
  files = folder_images.val_files(source.path)
  return [
      ValFilesUnit(part) for part in _slices(files, layout.VAL_IMAGES_PER_UNIT)
  ]


@dataclasses.dataclass(frozen=True)
class UnitTask:
  """One work unit to make, at `size`, with JPEG draft decoding or not."""

  unit: WorkUnit
  size: int
  draft: bool = False


def unit_rows(task: UnitTask) -> Iterator[examples.EncodedRows]:
  """A unit's examples and pixel sums, DECODE_CHUNK_IMAGES images at a time."""
  items = []
  for item in task.unit.images():
    items.append(item)
    if len(items) == layout.DECODE_CHUNK_IMAGES:
      yield _encoded(items, task)
      items = []
  if items:
    yield _encoded(items, task)


def _encoded(items: list[resizing.Encoded], task: UnitTask):
  images = np.stack(
      [
          resizing.resize_image(i.data, i.where, task.size, task.draft)
          for i in items
      ]
  )
  return examples.EncodedRows.of(
      '', [i.key for i in items], images, [i.label for i in items]
  )


def iter_examples(
    source: finding.SplitImages,
    size: int,
    workers: int = 0,
    draft: bool = False,
    tally: pixel_statistics.Tally | None = None,
    ordered: bool = False,
) -> Iterator[tuple[str, dict]]:
  """(key, {'image': PNG bytes, 'label': int}) of a split, made by `workers`
  worker processes (in the units' order if `ordered`); their pixel sums
  added to `tally` (if given)."""
  tasks = [UnitTask(unit, size, draft) for unit in work_units(source)]
  stream = worker_pool.parallel_streams(unit_rows, tasks, workers, ordered)
  return examples.examples_of((rows for _, rows in stream), tally)


_SUMS = 'pixel_sums'


def _beam_unit(task: UnitTask):
  """Beam: the examples of a unit, then its pixel sums on the `_SUMS` output."""
  import apache_beam as beam

  sums = pixel_statistics.Tally()
  yield from examples.examples_of(unit_rows(task), sums)
  yield beam.pvalue.TaggedOutput(_SUMS, sums.sums)


def beam_examples(
    source: finding.SplitImages,
    size: int,
    draft: bool = False,
    statistics=None,
):
  """A Beam PTransform (PBegin -> (key, example)) spreading the units;
  `statistics`, if given, receives a PCollection of the split's PixelSums."""
  import apache_beam as beam

  tasks = [UnitTask(unit, size, draft) for unit in work_units(source)]

  @beam.ptransform_fn
  def examples_from_ilsvrc(pbegin):
    outputs = (
        pbegin
        | 'Units' >> beam.Create(tasks)
        | 'Spread' >> beam.Reshuffle()
        | 'Decode'
        >> beam.FlatMap(_beam_unit).with_outputs(_SUMS, main='examples')
    )
    if statistics is not None:
      statistics(
          outputs[_SUMS]
          | 'SumPixels' >> beam.CombineGlobally(pixel_statistics.total)
      )
    return outputs['examples']

  return examples_from_ilsvrc()
