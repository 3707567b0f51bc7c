"""Building the downsampled images from ImageNet itself (the ILSVRC2012 JPEGs).

The authors made their batches from the ILSVRC2012 training and validation
images: each image opened with Pillow, `convert('RGB')`, `resize((S, S),
Image.BOX)` (no crop, aspect ratio squashed). This module applies the same
method, at any size S, to the files TFDS's `imagenet2012` asks for:

  tarballs  `ILSVRC2012_img_train.tar` (a tar of 1000 class tars
            `nXXXXXXXX.tar` of JPEGs) and `ILSVRC2012_img_val.tar` (flat
            `ILSVRC2012_val_%08d.JPEG`);
  folders   their extracted form: `train/nXXXXXXXX/*.JPEG`, and
            `val/*.JPEG` or `val/nXXXXXXXX/*.JPEG` (`ILSVRC2012_img_train` /
            `ILSVRC2012_img_val` / `validation` name the folders too).

Tars are read with `tarfile` in stream mode, nested class tars included:
nothing is extracted and nothing is written to disk. Training labels come
from the class (tar or folder) WordNet ID; validation labels from the
ILSVRC2012 ground truth that tensorflow-datasets ships
(`datasets/imagenet2012/validation_labels.txt`, line k = WNID of image k+1).
Labels are indices in the authors' `labels.txt`.

Example keys are the image paths in the extracted layout
(`train/n01440764/n01440764_10026.JPEG`, `val/ILSVRC2012_val_00000001.JPEG`),
whichever form the images come from, so tarballs and folders give the same
dataset. Pure Python + Pillow (+ Apache Beam, imported lazily): no TFDS here.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import io
import logging
import os
import posixpath
import re
import tarfile
from typing import Iterable, Iterator, Sequence

import numpy as np
import PIL
from PIL import Image

from imagenet_resized import one_line, pixel_statistics, png_codec
from imagenet_resized import regular_files, resources
from imagenet_resized import worker_pool
from imagenet_resized.batch_format import SourceError
from imagenet_resized.sources import SPLITS, TRAIN, VALIDATION

TRAIN_TAR = 'ILSVRC2012_img_train.tar'
VAL_TAR = 'ILSVRC2012_img_val.tar'
TARBALLS = {TRAIN: TRAIN_TAR, VALIDATION: VAL_TAR}
# Folder names of the extracted splits.
FOLDER_NAMES = {
    TRAIN: ('train', 'ILSVRC2012_img_train'),
    VALIDATION: ('val', 'validation', 'ILSVRC2012_img_val'),
}
FORM_TARBALL = 'ILSVRC2012 tarballs'
FORM_FOLDERS = 'ILSVRC2012 folders'
METHOD = (
    "computed from the ILSVRC2012 JPEGs by the authors' documented method:"
    " Pillow, convert('RGB'), resize((S, S), Image.BOX); not compared with the"
    " authors' files, whose exact JPEGs and Pillow version are unknown"
)
METHOD_DRAFT = (
    "computed from the ILSVRC2012 JPEGs decoded at reduced scale (JPEG draft"
    " mode, not pixel-identical to the full decode), then the authors'"
    " documented method: Pillow, convert('RGB'), resize((S, S), Image.BOX)"
)
NUM_VALIDATION_IMAGES = 50_000
# The ground truth as tensorflow-datasets ships it, relative to its package.
VALIDATION_LABELS = 'datasets/imagenet2012/validation_labels.txt'

# Key prefixes: the split folders of the extracted layout.
_KEY_DIRS = {TRAIN: 'train', VALIDATION: 'val'}
_WNID_RE = re.compile(r'^n\d{8}$')
_CLASS_TAR_RE = re.compile(r'^(n\d{8})\.tar$')
_VAL_NAME_RE = re.compile(r'^ILSVRC2012_val_(\d{8})\.JPEG$')
# How deep under the searched folder the tarballs / split folders may sit
# (Kaggle's layout puts them at ILSVRC/Data/CLS-LOC/train).
_MAX_SEARCH_DEPTH = 5
# Images per work item handed to a decoding worker: enough to amortise the
# inter-process hop, few enough (about 110 kB each) to keep memory flat.
DECODE_CHUNK_IMAGES = 64
# Validation images per Beam work unit.
BEAM_VAL_IMAGES_PER_UNIT = 1000
# Image formats accepted under a .JPEG name (ImageNet holds one PNG).
_IMAGE_FORMATS = ('JPEG', 'PNG')
# Bounds on one image, checked before it is read or decoded. ILSVRC2012's
# JPEGs average 110 kB and a few megapixels; these are far above any of them
# and keep a hostile file from costing more than a few hundred MB to decode.
MAX_IMAGE_BYTES = 64 << 20
# Checked from the image header, before decoding, whatever Pillow's own
# process-wide Image.MAX_IMAGE_PIXELS is (which is left as the user set it):
# 8192 x 8192, 192 MiB decoded as RGB.
MAX_IMAGE_PIXELS = 8192 * 8192
_IMAGE_SUFFIXES = ('.jpeg', '.jpg', '.png')

log = logging.getLogger(__name__)

_EXPECTED_TAR = 'expected a regular file: the ILSVRC2012 tarball as downloaded'
_EXPECTED_IMAGE = 'expected a regular file: a JPEG (or PNG) image'


def _open_tar(path: str) -> regular_files.RegularFile:
  """A tarball opened if it is a regular file (SourceError otherwise); reads
  stop at its size when opened."""
  return regular_files.open_regular(path, _EXPECTED_TAR)


# ---------------------------------------------------------------------------
# Labels.


@functools.cache
def _label_of_wnid() -> dict[str, int]:
  return {wnid: i for i, wnid in enumerate(resources.wnids())}


def validation_labels_path() -> str:
  """Where tensorflow-datasets' ILSVRC2012 validation ground truth is.

  Found without importing tensorflow_datasets (which imports TensorFlow).
  """
  spec = importlib.util.find_spec('tensorflow_datasets')
  if spec is None or not spec.submodule_search_locations:
    raise SourceError(
        f'tensorflow_datasets is not installed; expected its {VALIDATION_LABELS}'
        ' (the ILSVRC2012 validation ground truth)'
    )
  return os.path.join(list(spec.submodule_search_locations)[0], VALIDATION_LABELS)


@functools.cache  # Read once per process, not once per Beam work unit.
def validation_wnids(path: str | None = None) -> tuple[str, ...]:
  """WNID of validation image k+1 at index k (50,000 entries)."""
  path = path or validation_labels_path()
  try:
    expected = 'expected the ground truth file tensorflow-datasets ships'
    with regular_files.open_regular(path, expected) as raw:
      f = io.TextIOWrapper(raw, encoding='utf-8')
      wnids = tuple(line.strip() for line in f if line.strip())
  except (OSError, UnicodeDecodeError) as e:
    raise SourceError(
        f'{path}: cannot read the ILSVRC2012 validation ground truth'
        f' ({e.strerror or e}); expected the file tensorflow-datasets ships'
    ) from None
  if len(wnids) != NUM_VALIDATION_IMAGES or not all(map(_WNID_RE.match, wnids)):
    raise SourceError(
        f'{path}: holds {len(wnids)} lines; expected {NUM_VALIDATION_IMAGES}'
        ' WordNet IDs, line k the class of ILSVRC2012_val_{k+1:08d}.JPEG'
    )
  return wnids


def train_label(wnid: str, where: str, labels: dict[str, int]) -> int:
  if wnid not in labels:
    raise SourceError(
        f'{where}: {wnid} is not one of the 1000 ILSVRC2012 classes of'
        ' labels.txt; expected a class tar or folder named by one of them'
    )
  return labels[wnid]


def validation_label(
    name: str, where: str, truth: Sequence[str], labels: dict[str, int]
) -> int:
  """Label of the validation image named `name` (its basename)."""
  m = _VAL_NAME_RE.match(name)
  number = int(m.group(1)) if m else 0
  if not 1 <= number <= len(truth):
    raise SourceError(
        f'{where}: not a validation image name; expected'
        f' ILSVRC2012_val_NNNNNNNN.JPEG with NNNNNNNN in 1..{len(truth)}'
    )
  return labels[truth[number - 1]]


# ---------------------------------------------------------------------------
# Decoding and resizing.


@dataclasses.dataclass(frozen=True)
class Encoded:
  """One image to decode: its example key, where it is (for errors), label."""

  key: str
  where: str
  data: bytes
  label: int


def resize_image(data: bytes, where: str, size: int, draft: bool = False) -> np.ndarray:
  """Encoded image -> (size, size, 3) uint8, the authors' method.

  `draft` lets the JPEG decoder scale by 1/2, 1/4 or 1/8 while decoding
  (staying at least `size` on each side) before the box resize: several
  times faster, close to but not pixel-identical with the full decode.
  Raises SourceError naming `where` for anything that is not a readable
  JPEG or PNG.
  """
  try:
    with Image.open(io.BytesIO(data), formats=_IMAGE_FORMATS) as image:
      width, height = image.size
      if width * height > MAX_IMAGE_PIXELS:
        raise SourceError(
            f'{where}: a {width}x{height} image, {width * height} pixels, more'
            f' than the {MAX_IMAGE_PIXELS} allowed (a decompression bomb?);'
            ' expected an image of at most 8192 x 8192 pixels'
        )
      if draft and image.format == 'JPEG':
        image.draft(None, (size, size))
      image.load()
      resized = image.convert('RGB').resize((size, size), Image.BOX)
  except SourceError:
    raise
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    reason = one_line.shown(str(e).splitlines()[0] if str(e) else '', 120)
    raise SourceError(
        f'{where}: not a readable image ({type(e).__name__}: {reason});'
        ' expected a JPEG (or PNG) image'
    ) from None
  return np.asarray(resized)


def _example(item: Encoded, size: int, draft: bool) -> tuple[str, bytes, int]:
  """(key, PNG bytes, label) of one image: decoded, box-resized, encoded."""
  image = resize_image(item.data, item.where, size, draft)
  return item.key, png_codec.encode_png(image), item.label


def _encode_chunk(
    args: tuple[Sequence[Encoded], int, bool],
) -> tuple[list[tuple[str, bytes, int]], pixel_statistics.PixelSums]:
  """Worker: decode, box-resize and PNG-encode a chunk of images; and the
  exact pixel sums of the resized images."""
  chunk, size, draft = args
  images = [resize_image(item.data, item.where, size, draft) for item in chunk]
  sums = pixel_statistics.PixelSums.of_images(np.stack(images)) if images else (
      pixel_statistics.PixelSums()
  )
  encoded = [
      (item.key, png_codec.encode_png(image), item.label)
      for item, image in zip(chunk, images)
  ]
  return encoded, sums


def _chunked(items: Iterable[Encoded], n: int) -> Iterator[list[Encoded]]:
  chunk = []
  for item in items:
    chunk.append(item)
    if len(chunk) >= n:
      yield chunk
      chunk = []
  if chunk:
    yield chunk


# ---------------------------------------------------------------------------
# Reading images out of tars and folders.


def _tar_error(path: str, e: Exception) -> SourceError:
  reason = str(e).splitlines()[0] if str(e) else type(e).__name__
  return SourceError(
      f'{path}: not a readable tar (corrupt or truncated: {reason}); expected'
      ' the ILSVRC2012 tarball as downloaded'
  )


def check_image_bytes(where: str, size: int) -> None:
  """Refuses an image file larger than MAX_IMAGE_BYTES, before reading it."""
  if size > MAX_IMAGE_BYTES:
    raise SourceError(
        f'{where}: {size} bytes, more than the {MAX_IMAGE_BYTES} allowed for'
        ' one image; expected a JPEG (or PNG) image'
    )


# What a tar member that is not a regular file is, for messages.
_SPECIAL_MEMBERS = (
    (tarfile.TarInfo.issym, 'a symbolic link'),
    (tarfile.TarInfo.islnk, 'a hard link'),
    (tarfile.TarInfo.ischr, 'a character device'),
    (tarfile.TarInfo.isblk, 'a block device'),
    (tarfile.TarInfo.isfifo, 'a FIFO'),
    (tarfile.TarInfo.issparse, 'a sparse file'),
)


def _special_kind(member: tarfile.TarInfo) -> str | None:
  """What a member is if not a plain regular file (sparse counts as special)."""
  for test, kind in _SPECIAL_MEMBERS:
    if test(member):
      return kind
  return None if member.isreg() else f'a member of type {member.type!r}'


def _member_path(name: str) -> str | None:
  """A tar member's normalised relative path, or None to skip it."""
  path = posixpath.normpath(name.replace('\\', '/'))
  if path.startswith(('/', '..')) or path == '.':
    return None
  if posixpath.basename(path).startswith('.'):  # ._ resource forks and such.
    return None
  return path


def _iter_tar_files(
    tar: tarfile.TarFile, where_tar: str
) -> Iterator[tuple[str, tarfile.TarInfo]]:
  """(normalised path, member) of the regular files of a tar.

  Folders and hidden members are skipped; links, devices, FIFOs and sparse
  files are refused (a sparse member's holes read as gigabytes of zeros).
  """
  for member in tar:
    if member.isdir():
      continue
    path = _member_path(member.name)
    if path is None:
      continue
    kind = _special_kind(member)
    if kind is not None:
      raise SourceError(
          f'{where_tar}:{one_line.shown(member.name)}: {kind}; expected'
          ' regular files only (JPEG images, or class tars of them)'
      )
    yield path, member


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> bytes:
  """An image member's bytes, its declared size bounded first."""
  check_image_bytes(where, member.size)
  return tar.extractfile(member).read()


def _iter_class_tar(
    fileobj, train_tar: str, class_member: str, wnid: str, label: int
) -> Iterator[Encoded]:
  """The images of one class tar, read from `fileobj` in stream mode."""
  where_tar = f'{train_tar}:{class_member}'
  try:
    with tarfile.open(fileobj=fileobj, mode='r|') as inner:
      for path, member in _iter_tar_files(inner, where_tar):
        where = f'{where_tar}/{one_line.shown(member.name)}'
        data = _read_member(inner, member, where)
        yield Encoded(f'train/{wnid}/{path}', where, data, label)
  except (tarfile.TarError, EOFError, OSError) as e:
    raise _tar_error(where_tar, e) from None


def _class_tar_wnid(path: str, name: str, member: tarfile.TarInfo) -> str:
  """The WNID a member of the train tarball names; it must be a class tar."""
  m = _CLASS_TAR_RE.fullmatch(name)
  if not m:
    raise SourceError(
        f'{path}:{one_line.shown(member.name)}: unexpected member;'
        ' expected only the class tars nXXXXXXXX.tar'
    )
  return m.group(1)


def _iter_train_tar(path: str) -> Iterator[Encoded]:
  labels = _label_of_wnid()
  try:
    with _open_tar(path) as f, tarfile.open(fileobj=f, mode='r|') as outer:
      for name, member in _iter_tar_files(outer, path):
        wnid = _class_tar_wnid(path, name, member)
        label = train_label(wnid, f'{path}:{one_line.shown(member.name)}', labels)
        yield from _iter_class_tar(
            outer.extractfile(member), path, member.name, wnid, label
        )
  except (tarfile.TarError, EOFError, OSError) as e:
    raise _tar_error(path, e) from None


def _iter_val_tar(path: str) -> Iterator[Encoded]:
  labels = _label_of_wnid()
  truth = validation_wnids()
  try:
    with _open_tar(path) as f, tarfile.open(fileobj=f, mode='r|') as tar:
      for name, member in _iter_tar_files(tar, path):
        where = f'{path}:{one_line.shown(member.name)}'
        base = posixpath.basename(name)
        label = validation_label(base, where, truth, labels)
        data = _read_member(tar, member, where)
        yield Encoded(f'val/{base}', where, data, label)
  except (tarfile.TarError, EOFError, OSError) as e:
    raise _tar_error(path, e) from None


def _visible_entries(folder: str) -> list[os.DirEntry]:
  with os.scandir(folder) as it:
    return sorted((e for e in it if not e.name.startswith('.')), key=lambda e: e.name)


def _read(path: str) -> bytes:
  try:
    with regular_files.open_regular(path, _EXPECTED_IMAGE) as f:
      check_image_bytes(path, f.size)
      return f.read(f.size)
  except OSError as e:
    raise SourceError(
        f'{path}: cannot read ({e.strerror or e}); expected an image file'
    ) from None


def _train_class_folders(folder: str) -> list[tuple[str, str]]:
  """(wnid, path) of the class folders of an extracted train folder."""
  return [
      (entry.name, entry.path)
      for entry in _visible_entries(folder)
      if entry.is_dir() and _WNID_RE.match(entry.name)
  ]


def _iter_class_folder(wnid: str, folder: str, label: int) -> Iterator[Encoded]:
  for entry in _visible_entries(folder):
    # Anything but a folder is read as an image: a pipe or a device is
    # refused by the opener, not silently left out of the split.
    if not entry.is_dir():
      yield Encoded(f'train/{wnid}/{entry.name}', entry.path, _read(entry.path), label)


def _iter_train_folder(folder: str) -> Iterator[Encoded]:
  labels = _label_of_wnid()
  for wnid, path in _train_class_folders(folder):
    yield from _iter_class_folder(wnid, path, train_label(wnid, path, labels))


def _val_files(folder: str) -> list[tuple[str, str | None]]:
  """(path, wnid of its class folder or None) of the validation images."""
  files = []
  for entry in _visible_entries(folder):
    if not entry.is_dir():  # A pipe or a device is refused when read.
      files.append((entry.path, None))
    elif _WNID_RE.match(entry.name):
      files.extend(
          (e.path, entry.name) for e in _visible_entries(entry.path)
          if not e.is_dir()
      )
  return files


def _iter_val_files(files: Iterable[tuple[str, str | None]]) -> Iterator[Encoded]:
  labels = _label_of_wnid()
  truth = validation_wnids()
  for path, folder_wnid in files:
    base = os.path.basename(path)
    label = validation_label(base, path, truth, labels)
    if folder_wnid is not None and resources.wnids()[label] != folder_wnid:
      raise SourceError(
          f'{path}: sits in class folder {folder_wnid} but the ILSVRC2012'
          f' ground truth says {resources.wnids()[label]}; expected the'
          ' validation images sorted by their true class'
      )
    yield Encoded(f'val/{base}', path, _read(path), label)


# ---------------------------------------------------------------------------
# Finding the source.


@dataclasses.dataclass(frozen=True)
class SplitSource:
  """One split of ImageNet: a tarball or an extracted folder."""

  split: str
  form: str  # FORM_TARBALL or FORM_FOLDERS.
  files: tuple[str, ...]  # The tarball, or the folder.

  @property
  def path(self) -> str:
    return self.files[0]

  def images(self) -> Iterator[Encoded]:
    """The split's encoded images, in tar (or sorted folder) order."""
    if self.form == FORM_TARBALL:
      return _iter_train_tar(self.path) if self.split == TRAIN else _iter_val_tar(self.path)
    if self.split == TRAIN:
      return _iter_train_folder(self.path)
    return _iter_val_files(_val_files(self.path))


def method(draft: bool = False) -> str:
  """How the images were made, for the dataset metadata (Pillow's version too)."""
  return f'{METHOD_DRAFT if draft else METHOD} (made with Pillow {PIL.__version__})'


def _holds_images(folder: str) -> bool:
  """Whether a class folder holds images (Kaggle's layout also has class
  folders of XML annotations, under Annotations/CLS-LOC/train)."""
  return any(
      e.is_file() and e.name.lower().endswith(_IMAGE_SUFFIXES)
      for e in _visible_entries(folder)
  )


def _is_train_folder(path: str) -> bool:
  classes = _train_class_folders(path)
  return bool(classes) and _holds_images(classes[0][1])


def _is_val_folder(path: str) -> bool:
  for entry in _visible_entries(path):
    if entry.is_file() and _VAL_NAME_RE.match(entry.name):
      return True
    if entry.is_dir() and _WNID_RE.match(entry.name) and _holds_images(entry.path):
      return True
  return False


def find_split_source(root: str, split: str) -> SplitSource | None:
  """The split's tarball (preferred) or extracted folder under `root`."""
  tarballs, folders = [], []
  root_depth = root.rstrip(os.sep).count(os.sep)
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    if TARBALLS[split] in filenames:
      tarballs.append(os.path.join(dirpath, TARBALLS[split]))
    keep = []
    for name in dirnames:
      path = os.path.join(dirpath, name)
      if name.startswith('.') or _WNID_RE.match(name):
        continue  # Class folders hold images only: no need to list them.
      if name in FOLDER_NAMES[split]:
        is_split = _is_train_folder(path) if split == TRAIN else _is_val_folder(path)
        if is_split:
          folders.append(path)
          continue
      keep.append(name)
    if dirpath.count(os.sep) - root_depth >= _MAX_SEARCH_DEPTH:
      keep = []
    dirnames[:] = keep
  for form, paths in ((FORM_TARBALL, tarballs), (FORM_FOLDERS, folders)):
    if len(paths) > 1:
      raise SourceError(
          f'{root}: several ILSVRC2012 {split} {form}: {", ".join(paths)};'
          ' expected one (remove or move the others)'
      )
    if paths:
      return SplitSource(split, form, (paths[0],))
  return None


def expected_sources() -> str:
  """One phrase naming what `find_sources` looks for."""
  return (
      f'{TRAIN_TAR} and {VAL_TAR} (or their extracted folders train/nXXXXXXXX/*.JPEG'
      ' and val/*.JPEG)'
  )


def find_sources(root: str | None) -> dict[str, SplitSource] | None:
  """ImageNet's two splits under `root`; None if neither is there.

  Raises SourceError if only one split is found.
  """
  if not root or not os.path.isdir(root):
    return None
  found = {split: find_split_source(root, split) for split in SPLITS}
  if all(v is None for v in found.values()):
    return None
  missing = [s for s, v in found.items() if v is None]
  if missing:
    present = [s for s in SPLITS if s not in missing]
    raise SourceError(
        f'{root}: found the ILSVRC2012 {present[0]} split but not {missing[0]};'
        f' expected {TARBALLS[missing[0]]} or its extracted folder'
        f' ({FOLDER_NAMES[missing[0]][0]}/)'
    )
  for source in found.values():
    log.info('imagenet_resized %s: using %s: %s', source.split, source.form, source.path)
  return found


# ---------------------------------------------------------------------------
# Examples, in this process or in forked workers.


def iter_examples(
    source: SplitSource, size: int, workers: int = 0, draft: bool = False,
    tally: pixel_statistics.Tally | None = None,
) -> Iterator[tuple[str, dict]]:
  """(key, {'image': PNG bytes, 'label': int}) of a split, decoded in workers;
  the pixel sums of the images added to `tally` (if given)."""
  chunks = ((chunk, size, draft) for chunk in _chunked(source.images(), DECODE_CHUNK_IMAGES))
  for encoded, sums in worker_pool.parallel_map(_encode_chunk, chunks, workers):
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

  def images(self) -> Iterator[Encoded]:
    wnid = _CLASS_TAR_RE.fullmatch(_member_path(self.name)).group(1)
    label = train_label(
        wnid, f'{self.path}:{one_line.shown(self.name)}', _label_of_wnid()
    )
    with _open_tar(self.path) as f:
      f.seek(self.offset)
      yield from _iter_class_tar(_Slice(f, self.length), self.path, self.name, wnid, label)


@dataclasses.dataclass(frozen=True)
class ClassFolderUnit:
  """The extracted class folder `path` of the class `wnid`."""

  path: str
  wnid: str

  def images(self) -> Iterator[Encoded]:
    label = train_label(self.wnid, self.path, _label_of_wnid())
    yield from _iter_class_folder(self.wnid, self.path, label)


@dataclasses.dataclass(frozen=True)
class ValTarUnit:
  """Members (name, offset, length) of the validation tarball `path`."""

  path: str
  members: tuple[tuple[str, int, int], ...]

  def images(self) -> Iterator[Encoded]:
    labels, truth = _label_of_wnid(), validation_wnids()
    with _open_tar(self.path) as f:
      for name, offset, length in self.members:
        where = f'{self.path}:{one_line.shown(name)}'
        base = posixpath.basename(name)
        label = validation_label(base, where, truth, labels)
        f.seek(offset)
        data = f.read(length)
        if len(data) != length:
          raise _tar_error(self.path, EOFError(f'{name} is cut short'))
        yield Encoded(f'val/{base}', where, data, label)


@dataclasses.dataclass(frozen=True)
class ValFilesUnit:
  """Extracted validation images: (path, class-folder WNID or None)."""

  files: tuple[tuple[str, str | None], ...]

  def images(self) -> Iterator[Encoded]:
    yield from _iter_val_files(self.files)


WorkUnit = ClassTarUnit | ClassFolderUnit | ValTarUnit | ValFilesUnit


class _Slice(io.RawIOBase):
  """`length` bytes of a file from its current position, read-only.

  tarfile needs a file object for a class tar inside the train tarball;
  this bounds reads to that member without copying it into memory.
  """

  def __init__(self, f, length: int):
    super().__init__()
    self._f = f
    self._left = length

  def readable(self) -> bool:
    return True

  def readinto(self, buffer) -> int:
    n = min(len(buffer), self._left)
    if n <= 0:
      return 0
    data = self._f.read(n)
    buffer[: len(data)] = data
    self._left -= len(data)
    return len(data)


class _PiecewiseReads:
  """A file whose read(n) reads 1 MiB at a time, up to n or the end.

  tarfile reads a header's declared size in one call (pax and GNU long-name
  headers), and a buffered file allocates that size before reading: a tar of
  a few blocks may declare terabytes. Read in pieces, it costs what is there.
  """

  def __init__(self, f):
    self._f = f

  def read(self, n: int = -1) -> bytes:
    if n is None or n < 0:
      return self._f.read()
    parts = []
    while n > 0:
      piece = self._f.read(min(n, 1 << 20))
      if not piece:
        break
      parts.append(piece)
      n -= len(piece)
    return b''.join(parts)

  def __getattr__(self, name):
    return getattr(self._f, name)


def _tar_members(path: str) -> list[tuple[str, tarfile.TarInfo]]:
  """The file members of an uncompressed tar, reading headers only."""
  try:
    with _open_tar(path) as f, tarfile.open(
        fileobj=_PiecewiseReads(f), mode='r:'
    ) as tar:
      return list(_iter_tar_files(tar, path))
  except (tarfile.TarError, EOFError, OSError) as e:
    raise _tar_error(path, e) from None


def work_units(source: SplitSource) -> list[WorkUnit]:
  """The split cut into units: one per class for train, slices of validation."""
  if source.form == FORM_TARBALL and source.split == TRAIN:
    return [
        ClassTarUnit(source.path, m.name, m.offset_data, m.size)
        for name, m in _tar_members(source.path)
        if _class_tar_wnid(source.path, name, m)  # Refuses other members.
    ]
  if source.form == FORM_TARBALL:
    members = []
    for _, m in _tar_members(source.path):
      check_image_bytes(f'{source.path}:{one_line.shown(m.name)}', m.size)
      members.append((m.name, m.offset_data, m.size))
    return [
        ValTarUnit(source.path, tuple(members[i : i + BEAM_VAL_IMAGES_PER_UNIT]))
        for i in range(0, len(members), BEAM_VAL_IMAGES_PER_UNIT)
    ]
  if source.split == TRAIN:
    return [
        ClassFolderUnit(path, wnid) for wnid, path in _train_class_folders(source.path)
    ]
  files = _val_files(source.path)
  return [
      ValFilesUnit(tuple(files[i : i + BEAM_VAL_IMAGES_PER_UNIT]))
      for i in range(0, len(files), BEAM_VAL_IMAGES_PER_UNIT)
  ]


def unit_examples(
    unit: WorkUnit, size: int, draft: bool = False
) -> Iterator[tuple[str, dict]]:
  """(key, example) of one work unit, decoded here."""
  for item in unit.images():
    key, png, label = _example(item, size, draft)
    yield key, {'image': png, 'label': label}


_SUMS = 'pixel_sums'


def _unit_examples_and_sums(unit: WorkUnit, size: int, draft: bool = False):
  """Beam: the examples of a unit, then its pixel sums on the `_SUMS` output."""
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  sums = pixel_statistics.PixelSums()
  for item in unit.images():
    image = resize_image(item.data, item.where, size, draft)
    sums = sums + pixel_statistics.PixelSums.of_images(image[None])
    yield item.key, {'image': png_codec.encode_png(image), 'label': item.label}
  yield beam.pvalue.TaggedOutput(_SUMS, sums)


def beam_examples(
    source: SplitSource, size: int, draft: bool = False, statistics=None
):
  """A Beam PTransform (PBegin -> (key, example)) spreading the units.

  `statistics`, if given, receives a PCollection holding the split's one
  `pixel_statistics.PixelSums`.
  """
  import apache_beam as beam  # pylint: disable=g-import-not-at-top

  units = work_units(source)

  @beam.ptransform_fn
  def examples_from_ilsvrc(pbegin):
    outputs = (
        pbegin
        | 'Units' >> beam.Create(units)
        | 'Spread' >> beam.Reshuffle()
        | 'Decode' >> beam.FlatMap(
            _unit_examples_and_sums, size=size, draft=draft
        ).with_outputs(_SUMS, main='examples')
    )
    if statistics is not None:
      statistics(
          outputs[_SUMS]
          | 'SumPixels' >> beam.CombineGlobally(pixel_statistics.total)
      )
    return outputs['examples']

  return examples_from_ilsvrc()  # pylint: disable=no-value-for-parameter
