"""The protobuf wire bytes of a flat tf.train.Example, built from pieces.

A tf.train.Example of scalar features is `Example.features` (field 1) holding
one map entry (field 1) per feature: the key (field 1, the name) and the
value (field 2), a `Feature` holding a `BytesList` (field 1) or an
`Int64List` (field 3) whose `value` (field 1) is the bytes or the packed
varints. Both ends use the same pieces:

* `deterministic_serializer` writes examples as
  `example_head(len(entries)) + entries`;
* the export's record parser (`shard_records`) rebuilds every byte around a
  PNG from them to prove that a record has this layout.

The pieces are cached: an example's bytes are one join of a few of them.
Standard library only (the export's workers import no TensorFlow).
"""

from __future__ import annotations

import functools

_CACHE_SIZE = 1 << 16


def _varint_slow(value: int) -> bytes:
  """Protobuf's base-128 varint; negative int64 as their 64-bit complement."""
  value &= (1 << 64) - 1
  out = bytearray()
  while value > 0x7F:
    out.append((value & 0x7F) | 0x80)
    value >>= 7
  out.append(value)
  return bytes(out)


# Varints of 0 .. 2**14 - 1 (one or two bytes), looked up: most lengths and
# labels (a build serializes in its main process, which bounds its speed).
_SMALL_VARINTS = tuple(_varint_slow(i) for i in range(1 << 14))


def varint(value: int) -> bytes:
  """`value` as a protobuf varint (int64 semantics for negative values)."""
  if 0 <= value < (1 << 14):
    return _SMALL_VARINTS[value]
  return _varint_slow(value)


def field_head(number: int, length: int) -> bytes:
  """The start of a length-delimited field (wire type 2): tag, then length."""
  return _SMALL_VARINTS[number << 3 | 2] + varint(length)


def field(number: int, payload: bytes) -> bytes:
  """A length-delimited protobuf field: tag, length, payload."""
  return field_head(number, len(payload)) + payload


def example_head(entries_length: int) -> bytes:
  """The bytes of an Example before its map entries (`Example.features`)."""
  return field_head(1, entries_length)


@functools.cache
def _map_key(name: str) -> bytes:
  """The key field of a `Features.feature` map entry."""
  return field(1, name.encode())


@functools.lru_cache(maxsize=_CACHE_SIZE)
def bytes_entry_head(name: str, length: int) -> bytes:
  """A map entry `name` -> Feature.bytes_list with one value of `length`
  bytes, up to that value (which ends the entry)."""
  value_head = field_head(1, length)  # BytesList.value
  list_length = len(value_head) + length
  list_head = field_head(1, list_length)  # Feature.bytes_list
  feature_length = len(list_head) + list_length
  feature_head = field_head(2, feature_length)  # The entry's value.
  key = _map_key(name)
  entry_length = len(key) + len(feature_head) + feature_length
  return (
      field_head(1, entry_length) + key + feature_head + list_head + value_head
  )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def int_entry(name: str, value: int) -> bytes:
  """A map entry `name` -> Feature.int64_list holding `value` (packed)."""
  return field(1, _map_key(name) + field(2, field(3, field(1, varint(value)))))
