"""Labels of ILSVRC2012 images, in the authors' label order.

Train images by their class's WordNet ID; validation images by the ground
truth that tensorflow-datasets ships.
"""

from __future__ import annotations

from collections.abc import Sequence
import functools
import importlib.util
import io
import os

from imagenet_resized import common
from imagenet_resized import resources
from imagenet_resized.common import SourceError
from imagenet_resized.ilsvrc import layout
from imagenet_resized.readers import regular_files


@functools.cache
def label_of_wnid() -> dict[str, int]:
  return {wnid: i for i, wnid in enumerate(resources.wnids())}


def validation_labels_path() -> str:
  """Where tensorflow-datasets' ILSVRC2012 validation ground truth is (found
  without importing tensorflow_datasets, which imports TensorFlow)."""
  spec = importlib.util.find_spec('tensorflow_datasets')
  if spec is None or not spec.submodule_search_locations:
    raise SourceError(
        f'tensorflow_datasets is not installed; expected its {layout.VALIDATION_LABELS}'
        ' (the ILSVRC2012 validation ground truth)'
    )
  return os.path.join(
      list(spec.submodule_search_locations)[0], layout.VALIDATION_LABELS
  )


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
  if len(wnids) != layout.NUM_VALIDATION_IMAGES or not all(
      map(common.WNID_RE.match, wnids)
  ):
    raise SourceError(
        f'{path}: holds {len(wnids)} lines; expected {layout.NUM_VALIDATION_IMAGES}'
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
  m = layout.VAL_NAME_RE.match(name)
  number = int(m.group(1)) if m else 0
  if not 1 <= number <= len(truth):
    raise SourceError(
        f'{where}: not a validation image name; expected'
        f' ILSVRC2012_val_NNNNNNNN.JPEG with NNNNNNNN in 1..{len(truth)}'
    )
  return labels[truth[number - 1]]
