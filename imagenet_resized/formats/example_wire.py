"""The protobuf wire bytes of a flat tf.train.Example: built, and parsed.

A tf.train.Example of scalar features is `Example.features` (field 1) holding
one map entry (field 1) per feature: the key (field 1, the name) and the
value (field 2), a `Feature` holding a `BytesList` (field 1) or an
`Int64List` (field 3) whose `value` (field 1) is the bytes or the packed
varints. `deterministic_serializer` writes examples as
`example_head(len(entries)) + entries` from these cached pieces, and the
export (`shard_records`) rebuilds a record's bytes from them to prove its
layout. `parse_example` reads any `image` and `label` Example.
"""

from __future__ import annotations

from collections.abc import Iterator
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


# Varints of 0 .. 2**14 - 1 (most lengths and labels), looked up.
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
  """A map entry `name` -> Feature.bytes_list of one `length`-byte value, up
  to that value (which ends the entry)."""
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


class WireError(ValueError):
  """Bytes that are not a tf.train.Example of an image and a label."""


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
  if pos < len(data) and data[pos] < 0x80:  # One byte: most of them.
    return data[pos], pos + 1
  value = shift = 0
  while True:
    if pos >= len(data) or shift > 63:
      raise WireError('a varint runs past its message')
    byte = data[pos]
    pos += 1
    value |= (byte & 0x7F) << shift
    if byte < 0x80:
      return value, pos
    shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, object]]:
  """(field number, wire type, value: int, bytes or None) of a message."""
  pos = 0
  while pos < len(data):
    tag, pos = _read_varint(data, pos)
    number, wire = tag >> 3, tag & 7
    if wire == 0:
      value, pos = _read_varint(data, pos)
    elif wire == 2:
      length, pos = _read_varint(data, pos)
      if pos + length > len(data):
        raise WireError('a field runs past its message')
      value, pos = data[pos : pos + length], pos + length
    elif wire == 1:
      value, pos = None, pos + 8
    elif wire == 5:
      value, pos = None, pos + 4
    else:
      raise WireError(f'wire type {wire} is not in a tf.train.Example')
    yield number, wire, value


def _feature_values(feature: bytes) -> tuple[str, list]:
  """('bytes', [...]) or ('int64', [...]) of a tf.train.Feature."""
  for number, _, value in _fields(feature):
    if number == 1:  # BytesList
      return 'bytes', [v for n, w, v in _fields(value) if n == 1 and w == 2]
    if number == 3:  # Int64List: packed or not.
      values = []
      for n, w, v in _fields(value):
        if n != 1:
          continue
        if w == 0:
          values.append(v)
        else:
          pos = 0
          while pos < len(v):
            item, pos = _read_varint(v, pos)
            values.append(item)
      return 'int64', [x - (1 << 64) if x >= 1 << 63 else x for x in values]
  return 'other', []


def parse_example(record: bytes) -> tuple[bytes, int]:
  """(image bytes, label) of a serialized Example of one `image` byte string
  and one int64 `label`; WireError (one line) otherwise."""
  features = {}
  for number, wire, value in _fields(record):
    if number != 1 or wire != 2:
      continue
    for n, w, entry in _fields(value):
      if n != 1 or w != 2:
        continue
      key = feature = b''
      for en, ew, ev in _fields(entry):
        if en == 1 and ew == 2:
          key = ev
        elif en == 2 and ew == 2:
          feature = ev
      features[key] = _feature_values(feature)
  image, label = features.get(b'image'), features.get(b'label')
  if not image or image[0] != 'bytes' or len(image[1]) != 1:
    raise WireError('no `image` feature holding one byte string')
  if not label or label[0] != 'int64' or len(label[1]) != 1:
    raise WireError('no `label` feature holding one int64')
  return image[1][0], label[1][0]
