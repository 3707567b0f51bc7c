"""Byte-identical, faster serialization of examples into tf.train.Example.

TFDS's `ExampleSerializer` calls `SerializeToString()`, whose map-entry order
(upb runtime) depends on where the process's memory lies, so two builds of
the same sources would give different shard bytes: we serialize with
`deterministic=True` (entries sorted by key). Flat examples of scalar bytes
and integers, as ours, are written directly from `example_wire`'s cached
pieces: the same bytes (the tests compare them), far cheaper (docs/speed.md).
`tfds_touches.SERIALIZER` swaps the class in for a build (the split builder
reads the module attribute when a split starts; the Beam writer pickles the
instance for its workers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorflow_datasets.core import example_serializer
from tensorflow_datasets.core.utils import dtype_utils

from imagenet_resized.formats import example_wire


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


# The integer types a label comes as (exact types: isinstance against numpy's
# abstract types is slow); bool and np.bool_ are not integers here.
_INTEGERS = frozenset(
    [int] + [np.dtype(c).type for c in 'bBhHiIlLqQ' if np.dtype(c) != np.uint64]
)


class DeterministicExampleSerializer(example_serializer.ExampleSerializer):
  """TFDS's ExampleSerializer, with output independent of the process."""

  def __init__(self, example_specs):
    super().__init__(example_specs)
    kinds = {k: _scalar_kind(v) for k, v in self._flat_example_specs.items()}
    # The direct path applies when every feature is a plain scalar.
    self._scalar_kinds = kinds if all(kinds.values()) else None
    # Map entries in deterministic order: keys sorted as byte strings.
    self._sorted_kinds = sorted(kinds.items(), key=lambda kv: kv[0].encode())
    # An image and a label, as ours: one byte string, then one integer.
    self._bytes_then_int = [k for _, k in self._sorted_kinds] == [
        'bytes',
        'int',
    ]
    self._names = tuple(name for name, _ in self._sorted_kinds)
    self._entries = {}  # The integer's entry, by value.
    self._prefixes = {}  # The pieces before the bytes, by their lengths.

  def _bytes_then_int_entries(self, example: Any) -> bytes | None:
    """`_direct` for a byte string then an integer, from two dict lookups."""
    data_name, int_name = self._names
    data, value = example[data_name], example[int_name]
    if type(data) is not bytes or type(value) not in _INTEGERS:
      return None
    entry = self._entries.get(value)
    if entry is None:
      entry = self._entries[value] = example_wire.int_entry(
          int_name, int(value)
      )
    lengths = (len(data), len(entry))
    prefix = self._prefixes.get(lengths)
    if prefix is None:
      head = example_wire.bytes_entry_head(data_name, lengths[0])
      prefix = example_wire.example_head(len(head) + sum(lengths)) + head
      self._prefixes[lengths] = prefix
    return b''.join((prefix, data, entry))

  def _direct(self, example: Any) -> bytes | None:
    """The serialized proto written directly, or None to take TFDS's path."""
    if (
        not isinstance(example, dict)
        or example.keys() != self._scalar_kinds.keys()
    ):
      return None
    parts = [b'']  # Example.features's head, once its length is known.
    length = 0
    for name, kind in self._sorted_kinds:
      value = example[name]
      # Exact types first, as for _INTEGERS; bools are not integers here.
      if kind == 'bytes' and type(value) is bytes:
        head = example_wire.bytes_entry_head(name, len(value))
        parts += (head, value)
        length += len(head) + len(value)
      elif kind == 'int' and (
          type(value) is int or isinstance(value, np.integer)
      ):
        entry = example_wire.int_entry(name, int(value))
        parts.append(entry)
        length += len(entry)
      else:
        return None
    parts[0] = example_wire.example_head(length)
    return b''.join(parts)

  def serialize_example(self, example: Any) -> bytes:
    if self._bytes_then_int and type(example) is dict and len(example) == 2:
      try:
        serialized = self._bytes_then_int_entries(example)
      except KeyError:
        serialized = None
      if serialized is not None:
        return serialized
    if self._scalar_kinds is not None:
      serialized = self._direct(example)
      if serialized is not None:
        return serialized
    return self.get_tf_example(example).SerializeToString(deterministic=True)
