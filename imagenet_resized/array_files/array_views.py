"""The arrays of a split (`arrays.load`) as the input libraries expect them.

* `RandomAccess`: grain's RandomAccessDataSource protocol (`__len__`,
  `__getitem__`), one example {'image': (S, S, 3) uint8, 'label': int64} per
  index, read from the memory map; for grain.DataLoader / MapDataset, or any
  sampler that indexes.
* `tf_random_batches`: a tf.data.Dataset of random batches (images scaled
  to float32 in [0, 1], or the stored uint8 with `scaled=False` for
  pipelines that normalise on the accelerator; labels int64), drawn by a
  NumPy generator and read
  from the memory map inside `tf.py_function`: the graph holds the indices'
  step counter only, never the split (no `from_tensor_slices` of the
  arrays, which would copy them into a graph constant).

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
  replacement; images float32 in [0, 1], or (scaled=False) uint8 as stored.
  Indices sorted, which reads the memory map in file order (the batch's
  examples are still a random sample)."""
  index = np.sort(rng.integers(0, len(arrays.labels), batch_size))
  if not scaled:
    return arrays.images[index], arrays.labels[index]
  # One pass: converted and scaled by the same ufunc call.
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
  """A tf.data.Dataset of `steps` random batches (endless if None); images
  float32 in [0, 1], or uint8 as stored if not `scaled`."""
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

  steps_ds = (
      tf.data.Dataset.range(steps)
      if steps is not None
      else (tf.data.Dataset.range(2**62))
  )
  return steps_ds.map(as_tensors, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
      tf.data.AUTOTUNE
  )
