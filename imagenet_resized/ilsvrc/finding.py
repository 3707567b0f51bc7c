"""Finding ILSVRC2012's two splits in a manual folder: tarballs or folders.

The tarballs TFDS's `imagenet2012` asks for (`layout.TARBALLS`) or their
extracted folders (`train/nXXXXXXXX/*.JPEG`, `val/*.JPEG` or
`val/nXXXXXXXX/*.JPEG`; other names in `layout.FOLDER_NAMES`), at most
`layout.MAX_SEARCH_DEPTH` folders below the manual folder.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from imagenet_resized import common
from imagenet_resized.common import SourceError
from imagenet_resized.common import SPLITS
from imagenet_resized.common import TRAIN
from imagenet_resized.ilsvrc import folder_images
from imagenet_resized.ilsvrc import layout

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SplitImages:
  """One split of ImageNet: a tarball or an extracted folder."""

  split: str
  form: str  # FORM_TARBALL or FORM_FOLDERS.
  files: tuple[str, ...]  # The tarball, or the folder.

  @property
  def path(self) -> str:
    return self.files[0]


def _holds_images(folder: str) -> bool:
  """Whether a class folder holds images (Kaggle's layout also has class
  folders of XML annotations, under Annotations/CLS-LOC/train)."""
  return any(
      e.is_file() and e.name.lower().endswith(layout.IMAGE_SUFFIXES)
      for e in folder_images.visible_entries(folder)
  )


def _is_train_folder(path: str) -> bool:
  classes = folder_images.train_class_folders(path)
  return bool(classes) and _holds_images(classes[0][1])


def _is_val_folder(path: str) -> bool:
  for entry in folder_images.visible_entries(path):
    if entry.is_file() and layout.VAL_NAME_RE.match(entry.name):
      return True
    if (
        entry.is_dir()
        and common.WNID_RE.match(entry.name)
        and _holds_images(entry.path)
    ):
      return True
  return False


def find_split_source(root: str, split: str) -> SplitImages | None:
  """The split's tarball (preferred) or extracted folder under `root`."""
  tarballs, folders = [], []
  root_depth = root.rstrip(os.sep).count(os.sep)
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    if layout.TARBALLS[split] in filenames:
      tarballs.append(os.path.join(dirpath, layout.TARBALLS[split]))
    keep = []
    for name in dirnames:
      path = os.path.join(dirpath, name)
      if name.startswith('.') or common.WNID_RE.match(name):
        continue  # Class folders hold images only: no need to list them.
      if name in layout.FOLDER_NAMES[split]:
        is_split = (
            _is_train_folder(path) if split == TRAIN else _is_val_folder(path)
        )
        if is_split:
          folders.append(path)
          continue
      keep.append(name)
    if dirpath.count(os.sep) - root_depth >= layout.MAX_SEARCH_DEPTH:
      keep = []
    dirnames[:] = keep
  for form, paths in (
      (layout.FORM_TARBALL, tarballs),
      (layout.FORM_FOLDERS, folders),
  ):
    if len(paths) > 1:
      raise SourceError(
          f'{root}: several ILSVRC2012 {split} {form}: {", ".join(paths)};'
          ' expected one (remove or move the others)'
      )
    if paths:
      return SplitImages(split, form, (paths[0],))
  return None


def expected_sources() -> str:
  """One phrase naming what `find_sources` looks for."""
  return (
      f'{layout.TRAIN_TAR} and {layout.VAL_TAR} (or their extracted folders train/nXXXXXXXX/*.JPEG'
      ' and val/*.JPEG)'
  )


def find_sources(root: str | None) -> dict[str, SplitImages] | None:
  """ImageNet's splits under `root`; None if neither (SourceError if one)."""
  if not root or not os.path.isdir(root):
    return None
  found = common.both_splits(
      {split: find_split_source(root, split) for split in SPLITS},
      root,
      'ILSVRC2012',
      lambda split: f'{layout.TARBALLS[split]} or its extracted folder'
      f' ({layout.FOLDER_NAMES[split][0]}/)',
  )
  if found is None:
    return None
  for source in found.values():
    log.info(
        'imagenet_resized %s: using %s: %s',
        source.split,
        source.form,
        source.path,
    )
  return found
