"""Byte-identical, faster serialization of examples into tf.train.Example.

TFDS's `ExampleSerializer` calls `SerializeToString()`, which writes the
entries of the proto's feature map in hash-table order. With the upb protobuf
runtime that order depends on where the process's memory lies, so two builds
of the same sources, in two processes, write the same examples with their
features swapped and give different shard bytes. We serialize with
`deterministic=True` (map entries sorted by key) instead.

For flat examples of scalar byte-string and integer features, such as ours
(`image`: PNG bytes, `label`: int), the proto is built directly with the
protobuf API, which costs a third of TFDS's generic conversion through numpy
(measured ~13 us against ~43 us per example); that conversion runs in the
builder's main process and bounds the build's speed. Other examples take
TFDS's own path, serialized deterministically.

The builder puts the class in place of TFDS's for the duration of a build
(`tfds_internals.example_serializer_swapped`): TFDS's split builder creates
its serializer from the module attribute when a split starts (the Beam writer
pickles the instance, so Beam workers use it too).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorflow_datasets.proto import tf_example_pb2

from imagenet_resized import tfds_internals
from imagenet_resized.tfds_internals import dtype_utils


def _scalar_kind(tensor_info) -> str | None:
  """'bytes' / 'int' for a scalar string / integer feature, else None."""
  if tuple(tensor_info.shape) != () or getattr(tensor_info, 'optional', False):
    return None
  np_dtype = np.dtype(tensor_info.np_dtype)
  if dtype_utils.is_string(np_dtype):
    return 'bytes'
  # uint64 is bit-cast by TFDS and bool converted: leave those to TFDS.
  if dtype_utils.is_integer(np_dtype) and np_dtype not in (np.uint64, np.bool_):
    return 'int'
  return None


class DeterministicExampleSerializer(tfds_internals.ExampleSerializer):
  """TFDS's ExampleSerializer, with output independent of the process."""

  def __init__(self, example_specs):
    super().__init__(example_specs)
    kinds = {k: _scalar_kind(v) for k, v in self._flat_example_specs.items()}
    # The direct path applies when every feature is a plain scalar.
    self._scalar_kinds = kinds if all(kinds.values()) else None

  def _direct(self, example: Any) -> bytes | None:
    """The serialized proto built directly, or None to take TFDS's path."""
    if not isinstance(example, dict) or example.keys() != self._scalar_kinds.keys():
      return None
    proto = tf_example_pb2.Example()
    feature_map = proto.features.feature
    for name, kind in self._scalar_kinds.items():
      value = example[name]
      if kind == 'bytes' and isinstance(value, bytes):
        feature_map[name].bytes_list.value.append(value)
      elif kind == 'int' and isinstance(value, (int, np.integer)) and not isinstance(
          value, (bool, np.bool_)
      ):
        feature_map[name].int64_list.value.append(int(value))
      else:
        return None
    return proto.SerializeToString(deterministic=True)

  def serialize_example(self, example: Any) -> bytes:
    if self._scalar_kinds is not None:
      serialized = self._direct(example)
      if serialized is not None:
        return serialized
    return self.get_tf_example(example).SerializeToString(deterministic=True)
