"""Finding the authors' batches for one image size, in any published form.

Forms, in order of preference (one form per split):
  1. npz zips      `Imagenet{S}_train_npz.zip`, `Imagenet{S}_val_npz.zip`
                   (64x64 train: `Imagenet64_train_part{1,2}_npz.zip`);
  2. pickle zips   the same names without `_npz`;
  3. npz files     extracted `train_data_batch_K.npz`, `val_data.npz`;
  4. pickle files  extracted `train_data_batch_K`, `val_data`.
Archives and files may sit at any folder depth under the searched folder, and
members may sit inside a folder of a zip.

Each batch is described by a `Batch`, whose `key` is the prefix of its
examples' keys: the zip member path for zips (exactly as TFDS's own builder
forms it, so both builders order examples alike), the path relative to the
searched folder for extracted files (so an archive extracted in place keeps
its keys). This module knows nothing about TFDS.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import tempfile
import zipfile
from typing import Iterator, Sequence

from imagenet_resized import batch_format, npz_spool, one_line, regular_files
from imagenet_resized import resources, zip_members
from imagenet_resized.batch_format import SourceError

SIZES = (8, 16, 32, 64)
TRAIN = 'train'
VALIDATION = 'validation'
SPLITS = (TRAIN, VALIDATION)
URL_BASE = 'http://www.image-net.org/data/downsample/'
NUM_TRAIN_BATCHES = 10
VAL_BATCH = 'val_data'
# Split sizes of the published data.
PUBLISHED_SPLIT_SIZES = {TRAIN: 1_281_167, VALIDATION: 50_000}
# Rows of each published batch (the same at every size): batches 1-9 hold
# 128,116 images, batch 10 the remaining 128,123.
PUBLISHED_BATCH_ROWS = {
    **{f'train_data_batch_{k}': 128_116 for k in range(1, NUM_TRAIN_BATCHES)},
    f'train_data_batch_{NUM_TRAIN_BATCHES}': 128_123,
    VAL_BATCH: 50_000,
}

_BATCH_RE = re.compile(r'(train_data_batch_([1-9]|10)|val_data)(\.npz)?')

log = logging.getLogger(__name__)

_EXPECTED_SOURCE = (
    'expected a regular file: one of the authors\' archives or batch files'
)


def open_source(path: str) -> regular_files.RegularFile:
  """A source file opened for reading, if it is a regular file; reads stop
  at its size when opened. SourceError (one line) for a pipe, a device, a
  socket, a folder, or a path that cannot be opened."""
  return regular_files.open_regular(path, _EXPECTED_SOURCE)


def archive_names(size: int, split: str, npz: bool = True) -> list[str]:
  """The authors' archive names holding `split` at `size`."""
  suffix = '_npz.zip' if npz else '.zip'
  if split == TRAIN:
    stems = (
        ['Imagenet64_train_part1', 'Imagenet64_train_part2']
        if size == 64
        else [f'Imagenet{size}_train']
    )
  elif split == VALIDATION:
    stems = [f'Imagenet{size}_val']
  else:
    raise ValueError(f'unknown split {split!r}')
  return [stem + suffix for stem in stems]


def download_names(size: int) -> list[str]:
  """The npz zips a config downloads, train first."""
  return archive_names(size, TRAIN) + archive_names(size, VALIDATION)


def batch_split(basename: str) -> str | None:
  """'train' / 'validation' for a batch file or member name, else None."""
  m = _BATCH_RE.fullmatch(basename)
  if not m:
    return None
  return VALIDATION if m.group(1) == 'val_data' else TRAIN


def normalize_member(name: str) -> str | None:
  """A zip member name as TFDS's archive iterator reports it (or None to skip)."""
  path = os.path.normpath(name)
  if (
      path.startswith('.')
      or os.path.isabs(path)
      or path.endswith('~')
      or os.path.basename(path).startswith('.')
  ):
    return None
  return path


@dataclasses.dataclass(frozen=True)
class Batch:
  """One batch file: a member of a zip, or a file on disk."""

  path: str  # The zip, or the batch file itself.
  member: str | None  # Member name inside the zip; None for a file.
  key: str  # Prefix of the example keys.
  is_npz: bool

  @property
  def where(self) -> str:
    """Names the batch in messages: 'zip:member' or the file path."""
    # A member name comes from the file: kept on one line, cut if huge.
    return f'{self.path}:{one_line.shown(self.member, 200)}' if self.member else self.path

  @property
  def name(self) -> str:
    """The batch's name without extension: 'train_data_batch_3', 'val_data'."""
    return os.path.basename(self.key).removesuffix('.npz')

  @property
  def split(self) -> str:
    return batch_split(os.path.basename(self.key))

  @contextlib.contextmanager
  def open(self) -> Iterator:
    """A seekable binary file object for the batch's bytes."""
    if self.member is None:
      with open_source(self.path) as f:
        yield f
      return
    with contextlib.ExitStack() as stack:
      archive = stack.enter_context(open_source(self.path))
      try:
        zf = stack.enter_context(zipfile.ZipFile(archive))
        f = stack.enter_context(
            zip_members.open_member(zf, self.member, self.where)
        )
        if self.is_npz and zf.getinfo(self.member).compress_type != zipfile.ZIP_STORED:
          # An npz is a zip, read by seeking: to its directory at the end,
          # then back to each array; every seek back in a compressed member
          # inflates it again from the start (5-6 passes per batch). Inflate
          # it once into a temporary file instead (on disk, not in memory).
          # The copy is bounded by what the npz's headers declare (a
          # deflated member may inflate to anything: a zip bomb).
          spooled = stack.enter_context(tempfile.TemporaryFile())
          npz_spool.copy_npz(f, spooled, self.where, zf.getinfo(self.member).file_size)
          spooled.seek(0)
          f = spooled
      except batch_format.ZIP_ERRORS as e:
        raise SourceError(
            f'{self.where}: not readable (corrupt or truncated zip: {e});'
            ' expected one of the authors\' archives'
        ) from None
      yield batch_format.as_seekable(f)

  def chunks(self, size: int, chunk_rows: int = batch_format.DEFAULT_CHUNK_ROWS):
    """Yields `batch_format.Chunk`s of this batch, validated for `size`."""
    with self.open() as f:
      yield from batch_format.iter_chunks(f, self.where, size, self.is_npz, chunk_rows)


def batches_in_zip(path: str, split: str) -> list[Batch]:
  """The batches of `split` inside the zip at `path`, in archive order."""
  try:
    with open_source(path) as f, zipfile.ZipFile(f) as zf:
      infos = zf.infolist()
  except batch_format.ZIP_ERRORS as e:
    raise SourceError(
        f'{path}: not a readable zip (corrupt or truncated: {e}); expected one'
        ' of the authors\' archives'
    ) from None
  batches = []
  for info in infos:
    if info.is_dir():
      continue
    key = normalize_member(info.filename)
    if key is None or batch_split(os.path.basename(key)) != split:
      continue
    if info.file_size == 0:  # TFDS's builder skips empty members too.
      continue
    batches.append(
        Batch(path, info.filename, key, os.path.basename(key).endswith('.npz'))
    )
  if not batches:
    raise SourceError(
        f'{path}: holds no {split} batches; expected members named'
        f' {"train_data_batch_1..10" if split == TRAIN else "val_data"}'
        ' (with .npz in the npz form)'
    )
  return batches


@dataclasses.dataclass(frozen=True)
class SplitSource:
  """What one split is built from."""

  split: str
  form: str  # 'npz zip', 'pickle zip', 'npz files' or 'pickle files'.
  files: tuple[str, ...]  # Archives, or batch files.
  batches: tuple[Batch, ...]
  # Number of examples required (published archives), or None.
  expected_examples: int | None = None


# Class folders of an extracted ImageNet (train/n01440764/...) hold JPEGs, never
# the authors' batches; skipping them keeps the search fast when ImageNet
# itself (1.28M files) sits in the same manual folder.
_CLASS_FOLDER_RE = re.compile(r'^n\d{8}$')


def _walk(root: str) -> list[str]:
  """All files under root, in a stable order (ImageNet class folders skipped)."""
  found = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if not _CLASS_FOLDER_RE.match(d))
    found.extend(os.path.join(dirpath, f) for f in sorted(filenames))
  return found


def _registered() -> dict[str, resources.UrlRecord]:
  """The registered archives (checksums.tsv) by file name."""
  return {r.filename: r for r in resources.checksums()}


def sha256_of(path: str) -> str:
  with open_source(path) as f:
    return _sha256(f)


def _sha256(f) -> str:
  # hashlib.file_digest needs Python 3.11; this reads 8 MiB at a time.
  digest = hashlib.sha256()
  for block in iter(lambda: f.read(8 << 20), b''):
    digest.update(block)
  return digest.hexdigest()


def _is_published(path: str, name: str, verify: bool) -> bool:
  """Whether `path` is the published archive `name` (its registered size).

  An archive of the registered size claims to be the published one, so its
  SHA-256 must match too (`verify`: not needed after TFDS's own download,
  which checked it). Archives of other sizes (fakes, subsets) are not.
  """
  record = _registered().get(name)
  if record is None:
    return False
  with open_source(path) as f:
    if f.size != record.size:  # The size of the opened file (fstat).
      return False
    got = _sha256(f) if verify else record.sha256
    if got != record.sha256:
      raise SourceError(
          f'{path}: SHA-256 {got} does not match the registered {record.sha256}'
          f' of the published {name} ({record.size} bytes); expected the'
          ' unchanged archive (download it again)'
      )
  return True


def _from_zips(
    paths: Sequence[str], names: Sequence[str], split: str, form: str,
    verify: bool = True,
) -> SplitSource:
  """`paths` hold the archives registered as `names` (same order)."""
  batches = [b for p in paths for b in batches_in_zip(p, split)]
  check_numbering(split, batches, ' and '.join(paths))
  expected = None
  if form == 'npz zip' and all(
      _is_published(p, n, verify) for p, n in zip(paths, names)
  ):
    # The published archives must give the published split sizes.
    expected = PUBLISHED_SPLIT_SIZES[split]
  return SplitSource(split, form, tuple(paths), tuple(batches), expected)


def _batch_order(path: str) -> tuple[int, str]:
  """Sorts batch files by batch number (1, 2, ..., 10), val_data last."""
  m = re.search(r'_(\d+)(\.npz)?$', os.path.basename(path))
  return (int(m.group(1)) if m else NUM_TRAIN_BATCHES + 1, path)


def _npz_fits(path: str, size: int) -> bool:
  """False if the extracted npz at `path` plainly holds rows of another size.

  An npz whose header cannot be read counts as fitting, so that reading it
  later reports what is wrong with it.
  """
  with open_source(path) as f:
    shape = batch_format.read_npz_header(f)
  return not (shape is not None and len(shape) == 2 and shape[1] != 3 * size * size)


def _pick_extracted(
    root: str, by_name: dict[str, list[str]], size: int,
    npz_fitting: set[str] | None,
) -> list[str]:
  """Chooses, per batch name, the one extracted file that holds SxS rows.

  npz files are sized from their headers (`npz_fitting`: those that fit);
  pickles (`npz_fitting` None) cannot be sized without loading them, so copies
  of a pickle are told apart by folder names (e.g. `Imagenet32_train/`). When
  no copy fits the size, the first is kept, and reading it reports the size
  its rows do fit.
  """
  chosen = []
  for name, paths in by_name.items():
    if npz_fitting is not None:
      paths = [p for p in paths if p in npz_fitting] or paths[:1]
    if len(paths) > 1:
      hinted = [
          p for p in paths
          if f'imagenet{size}_' in os.path.relpath(p, root).lower()
          or f'{size}x{size}' in os.path.relpath(p, root).lower()
      ]
      if len(hinted) != 1:
        raise SourceError(
            f'several files named {name} could hold {size}x{size} batches:'
            f' {", ".join(paths)}; expected one (keep one copy, or put each'
            f' size in a folder named like Imagenet{size}_train)'
        )
      paths = hinted
    chosen.append(paths[0])
  return sorted(chosen, key=_batch_order)


def _extracted_by_name(
    files: Sequence[str], split: str, is_npz: bool
) -> dict[str, list[str]]:
  """Extracted batch files of `split` in one form, grouped by file name."""
  by_name: dict[str, list[str]] = {}
  for path in files:
    name = os.path.basename(path)
    if batch_split(name) == split and name.endswith('.npz') == is_npz:
      by_name.setdefault(name, []).append(path)
  return by_name


def find_split_source(
    root: str, files: Sequence[str], size: int, split: str
) -> SplitSource | None:
  """The preferred form of `split` among `files` (all files under `root`)."""
  by_base: dict[str, list[str]] = {}
  for path in files:
    by_base.setdefault(os.path.basename(path), []).append(path)
  for npz, form in ((True, 'npz zip'), (False, 'pickle zip')):
    names = archive_names(size, split, npz)
    if all(name in by_base for name in names):
      paths = [by_base[name][0] for name in names]
      return _from_zips(paths, names, split, form)
  npz_files = _extracted_by_name(files, split, is_npz=True)
  pickle_files = _extracted_by_name(files, split, is_npz=False)
  npz_fitting = {
      p for paths in npz_files.values() for p in paths if _npz_fits(p, size)
  }
  # npz files of this size first, then pickle files, then npz files of another
  # size (so that the build fails saying which size they are).
  if npz_files and (npz_fitting or not pickle_files):
    by_name, is_npz, form = npz_files, True, 'npz files'
  elif pickle_files:
    by_name, is_npz, form = pickle_files, False, 'pickle files'
    npz_fitting = None
  else:
    return None
  chosen = _pick_extracted(root, by_name, size, npz_fitting)
  batches = tuple(
      Batch(p, None, os.path.normpath(os.path.relpath(p, root)), is_npz)
      for p in chosen
  )
  check_numbering(split, batches, root)
  return SplitSource(split, form, tuple(chosen), batches)


def published_batch_names(split: str) -> list[str]:
  """The batch names of the published `split`, in order."""
  if split == TRAIN:
    return [f'train_data_batch_{k}' for k in range(1, NUM_TRAIN_BATCHES + 1)]
  return [VAL_BATCH]


def _train_number(name: str) -> int:
  return int(name.rsplit('_', 1)[1])


def check_numbering(split: str, batches: Sequence[Batch], looked_in: str) -> None:
  """Refuses a split whose batches repeat a name or skip a number.

  Train batches must be numbered 1..N without a gap (a missing file would
  silently make the split smaller); each batch may appear once.
  """
  by_name: dict[str, list[Batch]] = {}
  for batch in batches:
    by_name.setdefault(batch.name, []).append(batch)
  for name, copies in sorted(by_name.items()):
    if len(copies) > 1:
      raise SourceError(
          f'{looked_in}: {name} appears {len(copies)} times'
          f' ({", ".join(b.where for b in copies)}); expected each batch once'
      )
  if split != TRAIN:
    return
  numbers = sorted(_train_number(name) for name in by_name)
  missing = [k for k in range(1, numbers[-1] + 1) if k not in numbers]
  if missing:
    ext = '.npz' if batches[0].is_npz else ''
    raise SourceError(
        f'{looked_in}: no {", ".join(f"train_data_batch_{k}{ext}" for k in missing)}'
        f' (found {", ".join(f"train_data_batch_{k}{ext}" for k in numbers)}); expected'
        f' train batches numbered 1..{numbers[-1]} without a gap (the published'
        f' train split has {NUM_TRAIN_BATCHES})'
    )


def check_batch_rows(source: SplitSource, batch: Batch, rows: int) -> None:
  """Refuses a batch of the published size in a split that lacks batches.

  Called as soon as a batch has been read, so that a real split with a
  missing batch stops at its first batch, not after all the others.
  """
  if not _has_published_rows(batch.name, rows):
    return
  present = {b.name for b in source.batches}
  missing = [n for n in published_batch_names(source.split) if n not in present]
  if missing:
    raise SourceError(
        f'{batch.where}: holds {rows:,} rows, as the published {batch.name}'
        f' does, but the {source.split} split has no {", ".join(missing)};'
        f' expected the whole published split'
        f' ({PUBLISHED_SPLIT_SIZES[source.split]:,} examples)'
    )


def _has_published_rows(name: str, rows: int) -> bool:
  """Whether batch `name` holds as many rows as the published one."""
  return PUBLISHED_BATCH_ROWS.get(name) == rows


def _published_size_batches(rows_by_batch: dict[str, int]) -> list[str]:
  """The batches read that hold their published number of rows."""
  return [n for n, r in rows_by_batch.items() if _has_published_rows(n, r)]


def is_published(source: SplitSource, rows_by_batch: dict[str, int]) -> bool:
  """Whether a split read whole is the published one: from the registered
  archives, or made of batches of their published row counts."""
  return source.expected_examples is not None or bool(
      _published_size_batches(rows_by_batch)
  )


def check_split_rows(source: SplitSource, rows_by_batch: dict[str, int]) -> None:
  """Refuses a split that claims to be the published one but is not whole.

  The published archives (registered size and SHA-256), and any split with a
  batch of its published row count, must hold the published split size.
  """
  total = sum(rows_by_batch.values())
  if source.expected_examples is not None and total != source.expected_examples:
    raise SourceError(
        f'{", ".join(source.files)}: the {source.split} split has {total}'
        f' examples; the published archives hold {source.expected_examples}'
    )
  published = _published_size_batches(rows_by_batch)
  expected = PUBLISHED_SPLIT_SIZES[source.split]
  if published and total != expected:
    odd = [
        f'{n} holds {r:,} rows, the published one {PUBLISHED_BATCH_ROWS[n]:,}'
        for n, r in sorted(rows_by_batch.items())
        if n not in published
    ]
    raise SourceError(
        f'{", ".join(source.files)}: the {source.split} split holds {total:,}'
        f' examples, though {published[0]} is of the published size; expected'
        f' the published {expected:,} ({"; ".join(odd)})'
    )


def missing_sources_message(size: int, places: Sequence[str]) -> str:
  """One line: what a config needs, and where it looked."""
  npz = ', '.join(download_names(size))
  pkl = ', '.join(
      archive_names(size, TRAIN, npz=False) + archive_names(size, VALIDATION, npz=False)
  )
  return (
      f'No source archives for imagenet_resized/{size}x{size}: expected {npz}'
      f' (or the pickle zips {pkl}, or their extracted train_data_batch_K /'
      f' val_data files); looked in: {"; ".join(places)}'
  )


def find_sources(root: str, size: int) -> dict[str, SplitSource] | None:
  """Sources for both splits under `root`; None if neither is there.

  Raises SourceError if only one split is found.
  """
  if not root or not os.path.isdir(root):
    return None
  files = _walk(root)  # Once for both splits.
  found = {split: find_split_source(root, files, size, split) for split in SPLITS}
  if all(v is None for v in found.values()):
    return None
  missing = [s for s, v in found.items() if v is None]
  if missing:
    raise SourceError(
        f'{root}: found the {size}x{size} {", ".join(s for s in SPLITS if s not in missing)}'
        f' split but not {", ".join(missing)}; expected'
        f' {", ".join(archive_names(size, missing[0]))} or its extracted batches'
    )
  for source in found.values():
    log.info(
        'imagenet_resized/%dx%d %s: using %s: %s',
        size, size, source.split, source.form, ', '.join(source.files),
    )
  return found


def sources_from_downloads(
    paths: Sequence[str], size: int
) -> dict[str, SplitSource]:
  """Sources from the downloaded npz zips, given in `download_names` order."""
  named = dict(zip(download_names(size), paths))
  return {
      split: _from_zips(
          [named[n] for n in archive_names(size, split)],
          archive_names(size, split), split, 'npz zip',
          verify=False,  # TFDS's download manager has checked them.
      )
      for split in SPLITS
  }
