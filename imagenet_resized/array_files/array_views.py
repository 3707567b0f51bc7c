"""The arrays of a split (`arrays.load`) as the input libraries expect them.

* `RandomAccess`: grain's RandomAccessDataSource protocol (`__len__`,
  `__getitem__`), one example {'image': (S, S, 3) uint8, 'label': int64} per
  index, read from the memory map.
* `tf_random_batches`: a tf.data.Dataset of random batches (images float32
  in [0, 1], or uint8 with `scaled=False`; labels int64), read from the
  memory map inside `tf.py_function`: the graph holds a step counter, never
  the split (as `from_tensor_slices` would, in a graph constant).

PyTorch needs nothing of ours: docs/arrays.md has a Dataset recipe.
"""

from __future__ import annotations

import numpy as np


class RandomAccess:
  """grain's RandomAccessDataSource over the arrays of a split."""

  def __init__(self, arrays):
    self._images = arrays.images
    self._labels = arrays.labels

  def __len__(self) -> int:
    return len(self._labels)

  def __getitem__(self, index) -> dict[str, np.ndarray]:
    index = int(index)
    return {
        'image': np.asarray(self._images[index]),
        'label': self._labels[index],
    }

  def __repr__(self) -> str:
    return f'RandomAccess({len(self)} examples, images {self._images.shape})'


def random_batch(
    arrays, rng: np.random.Generator, batch_size: int, scaled: bool = True
):
  """(images, labels int64) of `batch_size` examples drawn uniformly with
  replacement (indices sorted: the memory map read in file order); images
  float32 in [0, 1], or (scaled=False) uint8 as stored."""
  index = np.sort(rng.integers(0, len(arrays.labels), batch_size))
  if not scaled:
    return arrays.images[index], arrays.labels[index]
  images = np.multiply(
      arrays.images[index], np.float32(1 / 255), dtype=np.float32
  )
  return images, arrays.labels[index]


def tf_random_batches(
    arrays,
    batch_size: int = 256,
    seed: int = 0,
    steps: int | None = None,
    scaled: bool = True,
):
  """A tf.data.Dataset of `steps` (None: endless) batches of `random_batch`."""
  import tensorflow as tf

  size = arrays.images.shape[1:]
  image_dtype = tf.float32 if scaled else tf.uint8

  def fetch(step):
    rng = np.random.default_rng([seed, int(step)])
    return random_batch(arrays, rng, batch_size, scaled)

  def as_tensors(step):
    images, labels = tf.py_function(fetch, [step], (image_dtype, tf.int64))
    images.set_shape((batch_size, *size))
    labels.set_shape((batch_size,))
    return images, labels

  steps_ds = tf.data.Dataset.range(steps if steps is not None else 2**62)
  return steps_ds.map(as_tensors, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
      tf.data.AUTOTUNE
  )
