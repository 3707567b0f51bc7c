"""Images read out of the extracted ILSVRC2012 folders."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
import os

from imagenet_resized import common
from imagenet_resized import resources
from imagenet_resized.common import SourceError
from imagenet_resized.ilsvrc import class_labels
from imagenet_resized.ilsvrc import resizing
from imagenet_resized.readers import regular_files

EXPECTED_IMAGE = 'expected a regular file: a JPEG (or PNG) image'


def visible_entries(folder: str) -> list[os.DirEntry]:
  with os.scandir(folder) as it:
    return sorted(
        (e for e in it if not e.name.startswith('.')), key=lambda e: e.name
    )


def read_image_file(path: str) -> bytes:
  try:
    with regular_files.open_regular(path, EXPECTED_IMAGE) as f:
      resizing.check_image_bytes(path, f.size)
      return f.read(f.size)
  except OSError as e:
    raise SourceError(
        f'{path}: cannot read ({e.strerror or e}); expected an image file'
    ) from None


def train_class_folders(folder: str) -> list[tuple[str, str]]:
  """(wnid, path) of the class folders of an extracted train folder."""
  return [
      (entry.name, entry.path)
      for entry in visible_entries(folder)
      if entry.is_dir() and common.WNID_RE.match(entry.name)
  ]


def iter_class_folder(
    wnid: str, folder: str, label: int
) -> Iterator[resizing.Encoded]:
  for entry in visible_entries(folder):
    # Anything but a folder is read as an image: a pipe or a device is
    # refused by the opener, not silently left out of the split.
    if not entry.is_dir():
      yield resizing.Encoded(
          f'train/{wnid}/{entry.name}',
          entry.path,
          read_image_file(entry.path),
          label,
      )


def val_files(folder: str) -> list[tuple[str, str | None]]:
  """(path, wnid of its class folder or None) of the validation images."""
  files = []
  for entry in visible_entries(folder):
    if not entry.is_dir():  # A pipe or a device is refused when read.
      files.append((entry.path, None))
    elif common.WNID_RE.match(entry.name):
      files.extend(
          (e.path, entry.name)
          for e in visible_entries(entry.path)
          if not e.is_dir()
      )
  return files


def iter_val_files(
    files: Iterable[tuple[str, str | None]],
) -> Iterator[resizing.Encoded]:
  labels = class_labels.label_of_wnid()
  truth = class_labels.validation_wnids()
  for path, folder_wnid in files:
    base = os.path.basename(path)
    label = class_labels.validation_label(base, path, truth, labels)
    if folder_wnid is not None and resources.wnids()[label] != folder_wnid:
      raise SourceError(
          f'{path}: sits in class folder {folder_wnid} but the ILSVRC2012'
          f' ground truth says {resources.wnids()[label]}; expected the'
          ' validation images sorted by their true class'
      )
    yield resizing.Encoded(f'val/{base}', path, read_image_file(path), label)
