"""What every wing shares: the error a bad source raises, sizes, splits.

A leaf: it imports nothing of the package, and every module may import it.
"""

from __future__ import annotations

from collections.abc import Callable
import os
import re
from typing import Protocol, TypeVar

# The image sizes the authors published.
SIZES = (8, 16, 32, 64)
TRAIN = 'train'
VALIDATION = 'validation'
# The splits the authors published, in the order they are built.
SPLITS = (TRAIN, VALIDATION)
# Classes of ILSVRC2012, in the authors' label order (labels.txt).
NUM_CLASSES = 1000
# A WordNet ID, which names an ILSVRC2012 class (and its folder or tar).
WNID_RE = re.compile(r'^n\d{8}$')


def is_local(path) -> bool:
  """Whether `path` is on this machine's file system (not gs://, s3://, ...)."""
  return '://' not in os.fspath(path)


class SourceError(ValueError):
  """A source file that is missing, malformed or not what was expected, in one
  line naming the file (and member), what was wrong and what was expected."""


class SplitSource(Protocol):
  """What one split is built from: all the builder needs of the authors'
  batches (`authors.batch_files.SplitBatches`) or the ILSVRC2012 JPEGs
  (`ilsvrc.finding.SplitImages`)."""

  split: str
  form: str  # How the files are laid out ('npz zip', 'ILSVRC2012 tarballs').
  files: tuple[str, ...]  # The archives, batch files, tarball or folder.


S = TypeVar('S', bound=SplitSource)


def both_splits(
    found: dict[str, S | None],
    root: str,
    what: str,
    expected_for: Callable[[str], str],
) -> dict[str, S] | None:
  """`found` when it holds every split, None when it holds none; otherwise a
  SourceError naming `root`, `what` ('32x32', 'ILSVRC2012'), the splits found
  and `expected_for(missing split)`."""
  missing = [split for split in SPLITS if found.get(split) is None]
  if len(missing) == len(SPLITS):
    return None
  if missing:
    present = ', '.join(split for split in SPLITS if split not in missing)
    raise SourceError(
        f'{root}: found the {what} {present} split but not'
        f' {", ".join(missing)}; expected {expected_for(missing[0])}'
    )
  return found
