"""Class names, and the mapping to and from imagenet2012's label order.

Our labels follow the authors' class order (label k is line k of labels.txt;
label 0 is n02119789, kit fox). TFDS's `imagenet2012` and most pretrained
ImageNet models (Keras applications, timm, torchvision) number the same 1000
classes in sorted-WordNet-ID order instead, the ILSVRC2012 index. To evaluate
such a model on this dataset, map the labels (or the model's predictions):

    label_2012 = labels.to_imagenet2012(label)
    label = labels.from_imagenet2012(prediction_2012)

Both take a Python int, a numpy array (or scalar) or a tf.Tensor and return
the same kind, and work inside `tf.data.Dataset.map`; anything else numpy can
read (a list, a JAX or PyTorch CPU array) gives a numpy array.
"""

from __future__ import annotations

import sys
from typing import TypeVar

import numpy as np

from imagenet_resized import resources
from imagenet_resized.common import NUM_CLASSES

LabelsT = TypeVar('LabelsT')


def _read_lemmas() -> tuple[tuple[str, ...], ...]:
  """The WordNet lemmas of each class, in label order, from class_names.tsv."""
  wnids = resources.wnids()
  lemmas = []
  for number, line in enumerate(
      resources.read_text('class_names.tsv').splitlines(), 1
  ):
    if not line.strip() or line.startswith('#'):
      continue
    wnid, names = line.split('\t')
    k = len(lemmas)
    if k >= len(wnids) or wnid != wnids[k]:
      expected = wnids[k] if k < len(wnids) else 'no more lines'
      raise RuntimeError(
          f'class_names.tsv line {number}: WordNet ID {wnid}; expected'
          f' {expected} (the order of labels.txt)'
      )
    lemmas.append(tuple(names.split(', ')))
  if len(lemmas) != len(wnids):
    raise RuntimeError(
        f'class_names.tsv names {len(lemmas)} classes; expected {len(wnids)}'
    )
  return tuple(lemmas)


# The 1000 WordNet IDs in label order (the ClassLabel names of the dataset).
WNIDS: tuple[str, ...] = resources.wnids()
# All WordNet lemmas of each class, in label order.
LEMMAS: tuple[tuple[str, ...], ...] = _read_lemmas()
# One readable name per class, in label order: the synset's first lemma
# (NAMES[0] == 'kit fox'). As in WordNet, 'crane' (bird, machine) and
# 'maillot' (n03710721 is also 'tank suit') occur twice: tell them by WNIDS.
NAMES: tuple[str, ...] = tuple(lemmas[0] for lemmas in LEMMAS)
# The WordNet IDs in ILSVRC2012 (imagenet2012) label order: sorted.
IMAGENET2012_WNIDS: tuple[str, ...] = tuple(sorted(WNIDS))

_INDEX_2012 = {wnid: i for i, wnid in enumerate(IMAGENET2012_WNIDS)}
# _TO_2012[our label] = imagenet2012 label; _FROM_2012 is its inverse.
_TO_2012 = np.array([_INDEX_2012[wnid] for wnid in WNIDS], np.int64)
_FROM_2012 = np.argsort(_TO_2012).astype(np.int64)
_TO_2012.flags.writeable = False
_FROM_2012.flags.writeable = False


def _result_dtype(dtype: np.dtype) -> np.dtype:
  """`dtype` if it holds 0..999, else int16 (for int8 and uint8)."""
  if np.iinfo(dtype).max >= NUM_CLASSES - 1:
    return np.dtype(dtype)
  return np.dtype(np.int16)


def _lookup(table: np.ndarray, labels: LabelsT, what: str) -> LabelsT:
  """`table[labels]`, returned as the same kind (and dtype) as `labels`."""
  # No tf.Tensor exists unless TensorFlow was imported: not imported here.
  tf = sys.modules.get('tensorflow')
  if tf is not None and tf.is_tensor(labels):
    if not labels.dtype.is_integer:
      raise TypeError(
          f'{what}: expected integer labels, got a {labels.dtype.name} tensor'
      )
    # Checked in int64, as tf.gather indexes with; tf.gather on a GPU gives 0
    # for an out-of-range index instead of failing, so the range is checked.
    index = tf.cast(labels, tf.int64)
    message = f'{what}: labels must be in 0..{NUM_CLASSES - 1}'
    with tf.control_dependencies(
        [
            tf.debugging.assert_non_negative(index, message=message),
            tf.debugging.assert_less(
                index, tf.constant(NUM_CLASSES, tf.int64), message=message
            ),
        ]
    ):
      result_dtype = _result_dtype(labels.dtype.as_numpy_dtype)
      return tf.gather(tf.constant(table.astype(result_dtype)), index)
  if isinstance(labels, (bool, np.bool_)):
    raise TypeError(f'{what}: expected integer labels, got {labels!r}')
  if isinstance(labels, int):
    if not 0 <= labels < NUM_CLASSES:
      raise ValueError(
          f'{what}: label {labels} is outside 0..{NUM_CLASSES - 1}'
      )
    return int(table[labels])
  array = np.asarray(labels)
  if not np.issubdtype(array.dtype, np.integer):
    raise TypeError(f'{what}: expected integer labels, got dtype {array.dtype}')
  out_of_range = (array < 0) | (array >= NUM_CLASSES)
  if out_of_range.any():
    raise ValueError(
        f'{what}: label {array[out_of_range].flat[0]} is outside'
        f' 0..{NUM_CLASSES - 1}'
    )
  # Indexing with a 0-d array gives a numpy scalar, with an n-d one an array.
  return table[array].astype(_result_dtype(array.dtype))


def to_imagenet2012(labels: LabelsT) -> LabelsT:
  """Our labels (authors' order) -> ILSVRC2012 labels (sorted-WNID order)."""
  return _lookup(_TO_2012, labels, 'to_imagenet2012')


def from_imagenet2012(labels: LabelsT) -> LabelsT:
  """ILSVRC2012 labels (sorted-WNID order) -> our labels (authors' order)."""
  return _lookup(_FROM_2012, labels, 'from_imagenet2012')
