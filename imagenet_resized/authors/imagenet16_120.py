"""ImageNet16-120, the neural-architecture-search benchmark (NAS-Bench-201).

The authors' 16x16 rows of the classes labelled 1..120; NAS-Bench-201 splits
the 6,000 validation ones by position (in `val_data`'s row order) into
`x_valid` and `x_test`, shipped in `nas_bench_201_splits.tsv` (checked).
"""

from __future__ import annotations

import functools

from imagenet_resized import resources
from imagenet_resized.common import SourceError

SIZE = 16
NUM_CLASSES = 120
X_VALID = 'x_valid'
X_TEST = 'x_test'
X_SPLITS = (X_VALID, X_TEST)
# Rows of classes 1..120 in the published splits.
PUBLISHED_SPLIT_SIZES = {'train': 151_700, 'validation': 6_000}
NUM_POSITIONS = PUBLISHED_SPLIT_SIZES['validation']
_FILE = 'nas_bench_201_splits.tsv'


@functools.cache
def x_split_positions() -> dict[str, frozenset[int]]:
  """{'x_valid': positions, 'x_test': positions} among the 6,000 images."""
  found: dict[str, list[int]] = {}
  for number, line in enumerate(resources.read_text(_FILE).splitlines(), 1):
    if not line.strip() or line.startswith('#'):
      continue
    name, _, numbers = line.partition('\t')
    if name not in X_SPLITS or name in found:
      raise RuntimeError(
          f'{_FILE} line {number}: split {name!r}; expected x_valid and x_test once each'
      )
    found[name] = [int(n) for n in numbers.split()]
  positions = {name: frozenset(found.get(name, ())) for name in X_SPLITS}
  every = positions[X_VALID] | positions[X_TEST]
  if (
      any(len(found.get(n, ())) != NUM_POSITIONS // 2 for n in X_SPLITS)
      or any(len(positions[n]) != NUM_POSITIONS // 2 for n in X_SPLITS)
      or every != frozenset(range(NUM_POSITIONS))
  ):
    raise RuntimeError(
        f'{_FILE}: x_valid and x_test must be disjoint halves of 0..{NUM_POSITIONS - 1},'
        f' {NUM_POSITIONS // 2} positions each'
    )
  return positions


def check_published_counts(split: str, count: int, where: str) -> None:
  """The published archives give 151,700 and 6,000 examples of classes 1..120."""
  expected = PUBLISHED_SPLIT_SIZES[split]
  if count != expected:
    raise SourceError(
        f'{where}: the published {split} split holds {count:,} examples of'
        f' classes 1..{NUM_CLASSES}; expected {expected:,}'
    )


def check_validation_rows(count: int, where: str) -> None:
  """x_valid and x_test index exactly 6,000 validation rows of classes 1..120."""
  if count != NUM_POSITIONS:
    raise SourceError(
        f'{where}: holds {count:,} validation rows of classes 1..{NUM_CLASSES};'
        f" expected {NUM_POSITIONS:,}, the images NAS-Bench-201's x_valid and"
        f' x_test positions index (build {SIZE}x{SIZE} for the whole data)'
    )
