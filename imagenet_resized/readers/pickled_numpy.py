"""numpy arrays as a pickle describes them, checked without numpy's help.

numpy pickles an array as `_reconstruct(ndarray, (0,), b'b')` with the BUILD
state (1, shape, dtype, is_fortran, raw bytes), or at protocol 5 as
`_frombuffer(raw bytes, dtype, shape, order)`; a dtype as
`dtype(code, False, True)` with the state (3, endian, None, None, None, -1,
-1, 0). The inert records (`inert_pickle`) must have exactly these shapes;
the dtype comes from this module's table: nothing from the file reaches numpy.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from imagenet_resized.readers import inert_pickle
from imagenet_resized.readers import one_line
from imagenet_resized.readers import pickle_strings as ps
from imagenet_resized.readers.one_line import shown

RECONSTRUCT = inert_pickle.Global('numpy._core.multiarray', '_reconstruct')
FROMBUFFER = inert_pickle.Global('numpy._core.numeric', '_frombuffer')
NDARRAY = inert_pickle.Global('numpy', 'ndarray')
DTYPE = inert_pickle.Global('numpy', 'dtype')

# The globals numpy's pickles name, under numpy 1.x and 2.x module names.
GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): RECONSTRUCT,
    ('numpy._core.multiarray', '_reconstruct'): RECONSTRUCT,
    ('numpy.core.numeric', '_frombuffer'): FROMBUFFER,
    ('numpy._core.numeric', '_frombuffer'): FROMBUFFER,
    ('numpy', 'ndarray'): NDARRAY,
    ('numpy', 'dtype'): DTYPE,
}

# The dtype codes an array of numbers is pickled with, and what they are.
_NUMBER_TYPES = {
    f'{kind}{size}': np.dtype(f'{kind}{size}')
    for kind, sizes in (
        ('u', (1, 2, 4, 8)),
        ('i', (1, 2, 4, 8)),
        ('f', (2, 4, 8)),
    )
    for size in sizes
} | {'b1': np.dtype(np.bool_)}
_BYTE_ORDERS = {'<': '<', '>': '>', '=': '=', '|': '='}
_PLAIN_DTYPE_TAIL = (None, None, None, -1, -1, 0)  # After version and endian.

Raw = bytes | ps.LazyBytes
# numpy 1.x's limit (2.x allows 64); also keeps the product of sizes cheap.
MAX_DIMENSIONS = 32


class NotAnArray(ValueError):
  """A value is not a numpy array of plain numbers as numpy pickles one."""


@dataclasses.dataclass(frozen=True)
class PickledArray:
  shape: tuple[int, ...]
  dtype: np.dtype  # Built from this module's table, never from the file.
  fortran: bool
  raw: Raw  # Exactly prod(shape) * itemsize bytes (checked).

  @property
  def size(self) -> int:
    return math.prod(self.shape)


def is_array(value) -> bool:
  """Whether `value` is one of the calls numpy pickles an array as."""
  return isinstance(value, inert_pickle.Call) and value.func in (
      RECONSTRUCT,
      FROMBUFFER,
  )


def _text(value) -> str | None:
  """A short str or latin-1 bytes (Python 2 `str`) as str, else None."""
  if isinstance(value, bytes):
    return value.decode('latin-1')
  return value if isinstance(value, str) else None


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _flag(value) -> bool | None:
  """True/False, also as the ints 1/0 Python 2's numpy wrote; else None."""
  return bool(value) if value in (0, 1) and isinstance(value, int) else None


def _dtype(value, what: str, expected: str) -> np.dtype:
  if not (
      isinstance(value, inert_pickle.Call)
      and value.func == DTYPE
      and len(value.args) == 3
      and _flag(value.args[1]) is False
      and _flag(value.args[2]) is True
  ):
    raise NotAnArray(
        f'{what} has a dtype that is a {inert_pickle.describe(value)}, not'
        f' numpy.dtype(code, False, True); expected {expected}'
    )
  code = _text(value.args[0])
  dtype = _NUMBER_TYPES.get(code)
  if dtype is None:
    raise NotAnArray(
        f"{what} has dtype code '{shown(str(code))}', which is"
        f' not a plain number type; expected {expected}'
    )
  state = value.state if value.has_state else None
  order = (
      _text(state[1]) if isinstance(state, tuple) and len(state) == 8 else None
  )
  if (
      order not in _BYTE_ORDERS
      or state[0] != 3
      or not _is_int(state[0])
      or tuple(state[2:]) != _PLAIN_DTYPE_TAIL
      or any(isinstance(v, bool) for v in state[5:])
  ):
    raise NotAnArray(
        f"{what} has a dtype state other than a plain number's (fields,"
        f' names, flags or sizes: a structured or object dtype); expected'
        f' {expected}'
    )
  return (
      dtype.newbyteorder(_BYTE_ORDERS[order]) if dtype.itemsize > 1 else dtype
  )


def _shape(value, what: str, expected: str) -> tuple[int, ...]:
  if not (
      isinstance(value, tuple) and all(_is_int(n) and n >= 0 for n in value)
  ):
    raise NotAnArray(
        f'{what} has a shape that is not a tuple of sizes; expected {expected}'
    )
  if len(value) > MAX_DIMENSIONS:
    raise NotAnArray(
        f'{what} has {len(value)} dimensions, more than numpy allows'
        f' ({MAX_DIMENSIONS}); expected {expected}'
    )
  return value


def _raw(value, what: str, expected: str) -> Raw:
  if isinstance(value, list):
    raise NotAnArray(f'{what} holds Python objects; expected {expected}')
  if isinstance(value, (bytes, ps.RawBytes, ps.EscapedBytes, ps.Latin1Bytes)):
    return value
  raise NotAnArray(
      f'{what} holds its values as a {inert_pickle.describe(value)}, not'
      f' bytes; expected {expected}'
  )


def read_array(value, what: str, expected: str) -> PickledArray:
  """The PickledArray `value` describes, else NotAnArray (one line)."""
  if not is_array(value):
    raise NotAnArray(
        f'{what} is a {inert_pickle.describe(value)}, not an array as numpy'
        f' pickles one; expected {expected}'
    )
  if value.func == RECONSTRUCT:
    args, state = value.args, value.state if value.has_state else None
    if args != (NDARRAY, (0,), b'b') or not (
        isinstance(state, tuple)
        and len(state) == 5
        and state[0] == 1
        and _is_int(state[0])
    ):
      raise NotAnArray(
          f'{what} is rebuilt with other arguments or state than numpy'
          f' writes for an ndarray; expected {expected}'
      )
    _, shape, dtype, fortran, raw = state
  else:
    if len(value.args) != 4 or value.has_state:
      raise NotAnArray(
          f'{what} is rebuilt with other arguments than numpy writes for an'
          f' ndarray; expected {expected}'
      )
    raw, dtype, shape, order = value.args
    fortran = {'C': False, 'F': True}.get(_text(order))
  shape = _shape(shape, what, expected)
  dtype = _dtype(dtype, what, expected)
  fortran = _flag(fortran)
  if fortran is None:
    raise NotAnArray(f'{what} has an unknown memory order; expected {expected}')
  raw = _raw(raw, what, expected)
  declared = math.prod(shape) * dtype.itemsize
  held = len(raw) if isinstance(raw, bytes) else raw.size
  if declared != held:
    raise NotAnArray(
        f'{what} declares shape {one_line.shape(shape)} of {dtype}'
        f' ({one_line.quantity(declared)} bytes) but holds {held} bytes;'
        ' expected exactly the bytes its shape declares'
    )
  return PickledArray(shape, dtype, fortran, raw)
