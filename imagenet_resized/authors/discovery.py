"""Finding a split's batches in a manual folder or in TFDS's downloads.

Forms, in order of preference: the npz zips (`Imagenet{S}_train_npz.zip`,
`Imagenet{S}_val_npz.zip`; 64x64 train in two parts), the pickle zips (no
`_npz`), then the extracted npz and pickle batch files, up to MAX_DEPTH
folders down. A batch's `key` is its zip member path (as TFDS's builder
forms it) or its path relative to the searched folder.
"""

from __future__ import annotations

from collections.abc import Sequence
import hashlib
import logging
import os
import re

from imagenet_resized import common
from imagenet_resized import resources
from imagenet_resized.authors import batch_files
from imagenet_resized.authors import completeness
from imagenet_resized.authors import publication
from imagenet_resized.common import SourceError
from imagenet_resized.readers import npz_batches

log = logging.getLogger(__name__)

# How many folders below the searched folder sources may sit.
MAX_DEPTH = 8


def _walk(root: str) -> list[str]:
  """The files at most MAX_DEPTH folders below `root`, in a stable order,
  ImageNet's class folders (train/n01440764/..., JPEGs only) skipped."""
  found = []
  top = root.rstrip(os.sep).count(os.sep)
  for dirpath, dirnames, filenames in os.walk(root):
    deeper = dirpath.count(os.sep) - top < MAX_DEPTH
    dirnames[:] = sorted(
        d for d in dirnames if deeper and not common.WNID_RE.match(d)
    )
    found.extend(os.path.join(dirpath, f) for f in sorted(filenames))
  return found


def _registered() -> dict[str, resources.UrlRecord]:
  """The registered archives (checksums.tsv) by file name."""
  return {r.filename: r for r in resources.checksums()}


def _is_published(path: str, name: str, verify: bool) -> bool:
  """Whether `path` is the published archive `name`: of its registered size,
  and then of its SHA-256 too (if `verify`: TFDS's downloads are checked)."""
  record = _registered().get(name)
  if record is None:
    return False
  with batch_files.open_source(path) as f:
    if f.size != record.size:  # The size of the opened file (fstat).
      return False
    got = record.sha256
    if verify:
      got = hashlib.file_digest(f, 'sha256').hexdigest()
    if got != record.sha256:
      raise SourceError(
          f'{path}: SHA-256 {got} does not match the registered {record.sha256}'
          f' of the published {name} ({record.size} bytes); expected the'
          ' unchanged archive (download it again)'
      )
  return True


def _from_zips(
    paths: Sequence[str],
    names: Sequence[str],
    split: str,
    form: str,
    verify: bool = True,
) -> batch_files.SplitBatches:
  """`paths` hold the archives registered as `names` (same order)."""
  batches = [b for p in paths for b in batch_files.batches_in_zip(p, split)]
  completeness.check_numbering(split, batches, ' and '.join(paths))
  expected = None
  if form == 'npz zip' and all(
      _is_published(p, n, verify) for p, n in zip(paths, names)
  ):
    expected = publication.PUBLISHED_SPLIT_SIZES[split]
  return batch_files.SplitBatches(
      split, form, tuple(paths), tuple(batches), expected
  )


def _batch_order(path: str) -> tuple[int, str]:
  """Sorts batch files by batch number (1, 2, ..., 10), val_data last."""
  m = re.search(r'_(\d+)(\.npz)?$', os.path.basename(path))
  return (int(m.group(1)) if m else publication.NUM_TRAIN_BATCHES + 1, path)


def _npz_fits(path: str, size: int) -> bool:
  """False if the extracted npz at `path` plainly holds rows of another size
  (one whose header cannot be read fits: reading it says what is wrong)."""
  with batch_files.open_source(path) as f:
    shape = npz_batches.read_npz_header(f)
  return not (
      shape is not None and len(shape) == 2 and shape[1] != 3 * size * size
  )


def _pick_extracted(
    root: str,
    by_name: dict[str, list[str]],
    size: int,
    npz_fitting: set[str] | None,
) -> list[str]:
  """Chooses, per batch name, the one extracted file that holds SxS rows:
  npz files by their headers (`npz_fitting`), pickles (`npz_fitting` None) by
  folder names (`Imagenet32_train/`). When no copy fits, the first is kept:
  reading it says which size it is."""
  chosen = []
  for name, paths in by_name.items():
    if npz_fitting is not None:
      paths = [p for p in paths if p in npz_fitting] or paths[:1]
    if len(paths) > 1:
      hinted = [
          p
          for p in paths
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
    if (
        publication.batch_split(name) == split
        and name.endswith('.npz') == is_npz
    ):
      by_name.setdefault(name, []).append(path)
  return by_name


def find_split_source(
    root: str, files: Sequence[str], size: int, split: str
) -> batch_files.SplitBatches | None:
  """The preferred form of `split` among `files` (all files under `root`)."""
  by_base: dict[str, list[str]] = {}
  for path in files:
    by_base.setdefault(os.path.basename(path), []).append(path)
  for npz, form in ((True, 'npz zip'), (False, 'pickle zip')):
    names = publication.archive_names(size, split, npz)
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
      batch_files.Batch(
          p, None, os.path.normpath(os.path.relpath(p, root)), is_npz
      )
      for p in chosen
  )
  completeness.check_numbering(split, batches, root)
  return batch_files.SplitBatches(split, form, tuple(chosen), batches)


def missing_sources_message(size: int, places: Sequence[str]) -> str:
  """One line: what a config needs, and where it looked."""
  npz = ', '.join(publication.download_names(size))
  pkl = ', '.join(
      publication.archive_names(size, common.TRAIN, npz=False)
      + publication.archive_names(size, common.VALIDATION, npz=False)
  )
  return (
      f'No source archives for imagenet_resized/{size}x{size}: expected {npz}'
      f' (or the pickle zips {pkl}, or their extracted train_data_batch_K /'
      f' val_data files); looked in: {"; ".join(places)}'
  )


def find_sources(
    root: str, size: int
) -> dict[str, batch_files.SplitBatches] | None:
  """Both splits' sources under `root`; None if neither (SourceError if one)."""
  if not root or not os.path.isdir(root):
    return None
  files = _walk(root)  # Once for both splits.
  found = common.both_splits(
      {
          split: find_split_source(root, files, size, split)
          for split in common.SPLITS
      },
      root,
      f'{size}x{size}',
      lambda split: ', '.join(publication.archive_names(size, split))
      + ' or its extracted batches',
  )
  if found is None:
    return None
  for source in found.values():
    log.info(
        'imagenet_resized/%dx%d %s: using %s: %s',
        size,
        size,
        source.split,
        source.form,
        ', '.join(source.files),
    )
  return found


def sources_from_downloads(
    paths: Sequence[str], size: int
) -> dict[str, batch_files.SplitBatches]:
  """Sources from the downloaded npz zips, given in `download_names` order."""
  named = dict(zip(publication.download_names(size), paths))
  return {
      split: _from_zips(
          [named[n] for n in publication.archive_names(size, split)],
          publication.archive_names(size, split),
          split,
          'npz zip',
          verify=False,  # TFDS's download manager has checked them.
      )
      for split in common.SPLITS
  }
