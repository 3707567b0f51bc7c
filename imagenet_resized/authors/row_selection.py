"""Which rows of the authors' batches a dataset takes.

`for_batch()` gives, per batch, a function from the 0-based labels of
consecutive rows (a chunk) to a boolean mask of the rows kept. Kept rows keep
their row index in their example key.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses

import numpy as np

Keep = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class EveryRow:
  """The whole dataset."""

  def for_batch(self) -> Keep:
    return lambda labels: np.ones(len(labels), bool)


@dataclasses.dataclass(frozen=True)
class FirstClasses:
  """The rows whose 0-based label is below `num_classes`."""

  num_classes: int

  def for_batch(self) -> Keep:
    return lambda labels: labels < self.num_classes


@dataclasses.dataclass(frozen=True)
class ClassPositions:
  """Of the rows of the first `num_classes` classes, taken in the batch's row
  order, those at `positions` (0-based) in that list."""

  num_classes: int
  positions: frozenset[int]

  def for_batch(self) -> Keep:
    wanted = np.array(sorted(self.positions), np.int64)
    seen = 0  # Rows of the classes in earlier chunks of this batch.

    def keep(labels: np.ndarray) -> np.ndarray:
      nonlocal seen
      in_classes = labels < self.num_classes
      position = seen + np.cumsum(in_classes) - 1
      seen += int(in_classes.sum())
      return in_classes & np.isin(position, wanted)

    return keep
