"""Reading a pickle as inert data: its opcodes are walked, nothing is called.

An allowlist for `pickle.load` is no sandbox: the allowed functions trust
their arguments (a crafted numpy dtype state corrupts memory). Here opcodes
become plain values (None, bools, ints, str, bytes, tuples, lists, dicts) and
inert records: `Global` (never imported), `Call` (REDUCE, never performed,
with its BUILD state) and the lazy strings of `pickle_strings`; the caller
checks what they mean. Only the two calls Python's pickler writes for `bytes`
are evaluated: `_codecs.encode(text, 'latin1')` and `bytes()`.

Every count and size is bounded before it is allocated; the file is read once,
front to back, up to STOP. Why not `pickletools.genops`: docs/safety.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import dataclasses
import pickletools
import struct
from typing import BinaryIO

from imagenet_resized.readers import pickle_strings as ps
from imagenet_resized.readers.one_line import shown

# Opcode byte -> name, from the standard library's table.
_OPCODE_NAMES = {
    op.code.encode('latin-1')[0]: op.name for op in pickletools.opcodes
}
# Longest newline-terminated argument other than a string (an int, a global).
MAX_LINE = 256
MAX_MEMO = 4096
# Strings of at most SHORT_STRING bytes (keys, global names, dtype codes) are
# always read while parsing, SHORT_STRING_BYTES of them in all.
SHORT_STRING = 256
SHORT_STRING_BYTES = 1 << 20
# Codec names Python's pickler writes in `_codecs.encode(text, codec)`.
_LATIN1 = ('latin1', 'latin-1')


class Malformed(ValueError):
  """The bytes are not a well-formed pickle (truncated, bad opcode, ...)."""


class Forbidden(ValueError):
  """A well-formed pickle asks for something a batch never needs."""


@dataclasses.dataclass(frozen=True)
class Global:
  module: str
  name: str

  def __str__(self) -> str:
    return f'{self.module}.{self.name}'


_NO_STATE = object()


@dataclasses.dataclass(eq=False)
class Call:
  """`func(*args)` as REDUCE asks for it; `state` as BUILD gives it, if any."""

  func: Global
  args: tuple
  state: object = _NO_STATE

  @property
  def has_state(self) -> bool:
    return self.state is not _NO_STATE


# The evaluated globals (Python's pickler writes them for `bytes`).
_CODECS_ENCODE = Global('_codecs', 'encode')
_BYTES = Global('builtins', 'bytes')
EVALUATED_GLOBALS = {
    ('_codecs', 'encode'): _CODECS_ENCODE,
    ('__builtin__', 'bytes'): _BYTES,
    ('builtins', 'bytes'): _BYTES,
}


def describe(value) -> str:
  """What a parsed value is, in a few words, for messages."""
  if isinstance(value, Call):
    return f'call to {value.func}'
  if isinstance(value, (ps.RawBytes, ps.EscapedBytes, ps.Latin1Bytes)):
    return f'bytes of length {value.size}'
  if isinstance(value, (ps.Utf8Text, ps.EscapedText)):
    return f'str of length {value.size}'
  return type(value).__name__


class _Input:
  """A seekable binary file read front to back through a buffer."""

  def __init__(self, f: BinaryIO):
    self._f = f
    self._buf = b''
    self._pos = 0
    self._base = f.tell()  # File offset of _buf[0].

  @property
  def offset(self) -> int:
    return self._base + self._pos

  def _fill(self, n: int) -> bool:
    """Tries to have n unread bytes buffered."""
    have = len(self._buf) - self._pos
    if have >= n:
      return True
    self._base += self._pos
    parts = [self._buf[self._pos :]]
    self._buf, self._pos = b'', 0
    while have < n:
      block = self._f.read(max(n - have, 1 << 16))
      if not block:
        break
      parts.append(block)
      have += len(block)
    self._buf = b''.join(parts)
    return have >= n

  def read(self, n: int) -> bytes:
    if not self._fill(n):
      raise Malformed('pickle data was truncated')
    out = self._buf[self._pos : self._pos + n]
    self._pos += n
    return out

  def byte(self) -> int:
    if self._pos >= len(self._buf) and not self._fill(1):
      raise Malformed('pickle data was truncated')
    b = self._buf[self._pos]
    self._pos += 1
    return b

  def skip(self, n: int) -> None:
    """Skips n bytes without keeping them (seeks past what is not buffered)."""
    have = len(self._buf) - self._pos
    if n <= have:
      self._pos += n
      return
    target = self.offset + n
    self._f.seek(target - (self._base + len(self._buf)), 1)
    if self._f.tell() != target:  # Past the end: a seek does not say.
      raise Malformed('pickle data was truncated')
    self._buf, self._pos, self._base = b'', 0, target

  def blocks(self, n: int):
    """The next n bytes, in blocks, not kept."""
    while n:
      if not self._fill(min(n, ps.BLOCK_BYTES)):
        raise Malformed('pickle data was truncated')
      take = min(n, len(self._buf) - self._pos, ps.BLOCK_BYTES)
      yield self._buf[self._pos : self._pos + take]
      self._pos += take
      n -= take

  def short_line(self, limit: int) -> bytes:
    """The next line of at most `limit` bytes (newline consumed)."""
    end = self._buf.find(b'\n', self._pos, self._pos + limit + 1)
    if end < 0:
      self._fill(limit + 1)
      end = self._buf.find(b'\n', self._pos, self._pos + limit + 1)
      if end < 0:
        if len(self._buf) - self._pos > limit:
          raise Malformed(f'an argument line longer than {limit} bytes')
        raise Malformed('pickle data was truncated')
    line = self._buf[self._pos : end]
    self._pos = end + 1
    return line

  def line_blocks(self):
    """The pieces of the next line up to its newline (then consumed)."""
    while True:
      if not self._fill(1):
        raise Malformed('pickle data was truncated')
      end = self._buf.find(b'\n', self._pos, self._pos + ps.BLOCK_BYTES)
      if end >= 0:
        piece = self._buf[self._pos : end]
        self._pos = end + 1
        yield piece
        return
      take = min(len(self._buf) - self._pos, ps.BLOCK_BYTES)
      piece = self._buf[self._pos : self._pos + take]
      self._pos += take
      yield piece


class _Parser:
  """A stack machine over pickle opcodes that builds inert values only."""

  def __init__(
      self,
      f: BinaryIO,
      allowed_globals: Mapping[tuple[str, str], Global],
      max_values: int,
      eager_bytes: int,
      max_string: int,
  ):
    self._in = _Input(f)
    self._max_string = max_string
    self._globals = {**allowed_globals, **EVALUATED_GLOBALS}
    self._values_left = max_values
    self._max_values = max_values
    self._eager_left = eager_bytes
    self._short_left = SHORT_STRING_BYTES
    self._stack: list = []
    self._marks: list[int] = []
    self._memo: dict[int, object] = {}
    self._dispatch: dict[int, Callable[[], None]] = {}
    for code, name in _OPCODE_NAMES.items():
      method = getattr(self, f'_op_{name}', None)
      if method is not None:
        self._dispatch[code] = method

  def _push(self, value) -> None:
    self._values_left -= 1
    if self._values_left < 0:
      raise Forbidden(
          f'the pickle holds more than {self._max_values} values, more than a'
          ' batch of the largest size allowed needs'
      )
    self._stack.append(value)

  def _top(self):
    if len(self._stack) <= (self._marks[-1] if self._marks else 0):
      raise Malformed('unpickling stack underflow')
    return self._stack[-1]

  def _pop(self):
    self._top()
    return self._stack.pop()

  def _pop_mark(self) -> list:
    if not self._marks:
      raise Malformed('could not find MARK')
    start = self._marks.pop()
    items = self._stack[start:]
    del self._stack[start:]
    return items

  def parse(self):
    # Every opcode of a batch pickle pushes a value or handles one it pushed
    # (memoizes, appends, marks): a few per value. Counting them bounds the
    # time a file of opcodes that push nothing (PROTO, PUT, ...) can take.
    ops_left = 4 * self._max_values + 1024
    while True:
      ops_left -= 1
      if ops_left < 0:
        raise Forbidden(
            f'the pickle has more than {4 * self._max_values + 1024} opcodes,'
            ' more than a batch of the largest size allowed needs'
        )
      code = self._in.byte()
      if code == 0x2E:  # STOP
        if len(self._stack) != 1 or self._marks:
          raise Malformed('STOP with a stack that does not hold one value')
        return self._stack[0]
      op = self._dispatch.get(code)
      if op is None:
        name = _OPCODE_NAMES.get(code)
        if name is None:
          raise Malformed(f'invalid load key, {bytes([code])!r}')
        raise Forbidden(f'the pickle uses opcode {name}, which is not allowed')
      op()

  def _op_PROTO(self):
    proto = self._in.byte()
    if proto > 5:
      raise Malformed(f'unsupported pickle protocol: {proto}')

  def _op_FRAME(self):
    self._in.read(8)  # Frames only group opcodes; no need to follow them.

  def _op_NONE(self):
    self._push(None)

  def _op_NEWTRUE(self):
    self._push(True)

  def _op_NEWFALSE(self):
    self._push(False)

  def _op_INT(self):
    text = self._in_line()
    if text == b'00':
      self._push(False)
    elif text == b'01':
      self._push(True)
    else:
      self._push(self._int(text))

  def _op_LONG(self):
    text = self._in_line()
    self._push(self._int(text[:-1] if text.endswith(b'L') else text))

  @staticmethod
  def _int(text: bytes) -> int:
    try:
      return int(text, 0)
    except ValueError:
      raise Malformed(
          f'invalid literal for an integer: {text[:20]!r}'
      ) from None

  def _op_BININT(self):
    self._push(struct.unpack('<i', self._in.read(4))[0])

  def _op_BININT1(self):
    self._push(self._in.byte())

  def _op_BININT2(self):
    self._push(struct.unpack('<H', self._in.read(2))[0])

  def _op_LONG1(self):
    n = self._in.byte()
    self._push(int.from_bytes(self._in.read(n), 'little', signed=True))

  def _in_line(self) -> bytes:
    return self._in.short_line(MAX_LINE)

  def _length(self, fmt: str) -> int:
    n = struct.unpack(fmt, self._in.read(struct.calcsize(fmt)))[0]
    if n < 0:
      raise Malformed('negative byte count')
    return n

  def _eager(self, n: int) -> bool:
    """Whether a string of n encoded bytes is read now; charges its budget
    (short strings have their own: a large one cannot leave them in the file).
    """
    if n <= SHORT_STRING:
      self._short_left -= n
      if self._short_left < 0:
        raise Forbidden(
            f'the pickle holds more than {SHORT_STRING_BYTES} bytes of short'
            ' strings (names, keys)'
        )
      return True
    if n > self._eager_left:
      return False
    self._eager_left -= n
    return True

  def _bytes(self, n: int) -> None:
    self._check_length(n)
    if self._eager(n):
      self._push(self._in.read(n))
    else:
      self._push(ps.RawBytes(self._in.offset, n))
      self._in.skip(n)

  def _op_SHORT_BINSTRING(self):
    self._bytes(self._in.byte())

  def _op_BINSTRING(self):
    self._bytes(self._length('<i'))

  _op_SHORT_BINBYTES = _op_SHORT_BINSTRING

  def _op_BINBYTES(self):
    self._bytes(self._length('<I'))

  def _op_BINBYTES8(self):
    self._bytes(self._length('<Q'))

  _op_BYTEARRAY8 = _op_BINBYTES8

  def _check_length(self, n: int) -> None:
    if n > self._max_string:
      raise Forbidden(
          f'the pickle declares a string of {n} bytes, more than the'
          f' {self._max_string} allowed'
      )

  def _utf8(self, n: int) -> None:
    self._check_length(n)
    offset = self._in.offset
    if self._eager(n):
      self._push(ps.utf8_decoder().decode(self._in.read(n), True))
      return
    size, latin1 = ps.measure(ps.utf8_decoder(), self._in.blocks(n))
    self._push(ps.Utf8Text(offset, n, size, latin1))

  def _op_SHORT_BINUNICODE(self):
    self._utf8(self._in.byte())

  def _op_BINUNICODE(self):
    self._utf8(self._length('<I'))

  def _op_BINUNICODE8(self):
    self._utf8(self._length('<Q'))

  def _op_UNICODE(self):
    offset = self._in.offset
    value, length, size, latin1 = self._decode_line(
        ps.escaped_text_decoder(), self._in.line_blocks(), ''
    )
    if value is None:
      value = ps.EscapedText(offset, length, size, latin1)
    self._push(value)

  def _op_STRING(self):
    offset = self._in.offset + 1
    quote = []
    value, length, size, _ = self._decode_line(
        ps.escaped_bytes_decoder(),
        _between_quotes(self._in.line_blocks(), quote),
        b'',
    )
    self._push(
        value if value is not None else ps.EscapedBytes(offset, length, size)
    )

  def _decode_line(self, decoder, blocks, empty):
    """(value or None, encoded length, decoded size, latin-1) of a line string:
    the value is kept only while it fits the eager budget."""
    kept, length, size, latin1 = [], 0, 0, True
    for block, final in ps.blocks_with_final(blocks):
      length += len(block)
      out = decoder.decode(block, final)
      size += len(out)
      latin1 = latin1 and ps.is_latin1(out)
      if kept is not None and length <= max(self._eager_left, SHORT_STRING):
        kept.append(out)
      else:
        kept = None
    if kept is None or not self._eager(length):
      return None, length, size, latin1
    return empty.join(kept), length, size, latin1

  def _op_MARK(self):
    if len(self._marks) >= self._max_values:
      raise Forbidden('the pickle opens more marks than it may hold values')
    self._marks.append(len(self._stack))

  def _op_EMPTY_TUPLE(self):
    self._push(())

  def _op_TUPLE(self):
    self._push(tuple(self._pop_mark()))

  def _op_TUPLE1(self):
    self._push((self._pop(),))

  def _op_TUPLE2(self):
    b, a = self._pop(), self._pop()
    self._push((a, b))

  def _op_TUPLE3(self):
    c, b, a = self._pop(), self._pop(), self._pop()
    self._push((a, b, c))

  def _op_EMPTY_LIST(self):
    self._push([])

  def _op_LIST(self):
    self._push(self._pop_mark())

  def _list_top(self) -> list:
    target = self._top()
    if not isinstance(target, list):
      raise Malformed(f'APPEND to a {describe(target)}')
    return target

  def _op_APPEND(self):
    value = self._pop()
    self._list_top().append(value)

  def _op_APPENDS(self):
    items = self._pop_mark()
    self._list_top().extend(items)

  def _op_EMPTY_DICT(self):
    self._push({})

  def _op_DICT(self):
    self._push(self._set_items({}, self._pop_mark(), 'DICT'))

  def _op_SETITEM(self):
    value, key = self._pop(), self._pop()
    self._set_items(None, [key, value], 'SETITEM')

  def _op_SETITEMS(self):
    self._set_items(None, self._pop_mark(), 'SETITEMS')

  def _set_items(self, d: dict | None, items: list, op: str) -> dict:
    """Sets items (key, value, ...) in `d`, or else in the dict on the stack."""
    if len(items) % 2:
      raise Malformed(f'odd number of items for {op}')
    if d is None:
      d = self._top()
      if not isinstance(d, dict):
        raise Malformed(f'SETITEM on a {describe(d)}')
    for i in range(0, len(items), 2):
      key = items[i]
      if not isinstance(key, (str, bytes)):
        raise Forbidden(f'the pickle has a dict key that is a {describe(key)}')
      d[key] = items[i + 1]
    return d

  def _put(self, index: int) -> None:
    if index not in self._memo and len(self._memo) >= MAX_MEMO:
      raise Forbidden(f'the pickle memoizes more than {MAX_MEMO} values')
    self._memo[index] = self._top()

  def _get(self, index: int) -> None:
    if index not in self._memo:
      raise Malformed(f'memo key {index} was never stored')
    self._push(self._memo[index])

  def _op_PUT(self):
    self._put(self._int(self._in_line()))

  def _op_BINPUT(self):
    self._put(self._in.byte())

  def _op_LONG_BINPUT(self):
    self._put(self._length('<I'))

  def _op_MEMOIZE(self):
    self._put(len(self._memo))

  def _op_GET(self):
    self._get(self._int(self._in_line()))

  def _op_BINGET(self):
    self._get(self._in.byte())

  def _op_LONG_BINGET(self):
    self._get(self._length('<I'))

  def _global(self, module: str, name: str) -> None:
    target = self._globals.get((module, name))
    if target is None:
      raise Forbidden(
          f'the pickle asks for `{shown(module)}.{shown(name)}`, which is not'
          ' allowed'
      )
    self._push(target)

  def _op_GLOBAL(self):
    module = self._in_line().decode('utf-8', 'replace')
    name = self._in_line().decode('utf-8', 'replace')
    self._global(module, name)

  def _op_STACK_GLOBAL(self):
    name, module = self._pop(), self._pop()
    if not isinstance(module, str) or not isinstance(name, str):
      raise Malformed('STACK_GLOBAL requires str')
    self._global(module, name)

  def _op_REDUCE(self):
    args, func = self._pop(), self._pop()
    if not isinstance(func, Global) or not isinstance(args, tuple):
      raise Malformed(f'REDUCE of a {describe(func)} with a {describe(args)}')
    if func == _CODECS_ENCODE:
      self._push(_latin1_encode(args))
    elif func == _BYTES:
      if args:
        raise Forbidden('the pickle calls bytes() with arguments')
      self._push(b'')
    else:
      self._push(Call(func, args))

  def _op_BUILD(self):
    state = self._pop()
    target = self._top()
    if not isinstance(target, Call) or target.has_state:
      raise Malformed(f'BUILD of a {describe(target)}')
    target.state = state


def _between_quotes(lines, quote: list):
  """The pieces of a protocol 0 STRING line without its enclosing quotes."""
  held = b''
  first = True
  for piece in lines:
    if first and piece:
      if piece[:1] not in (b"'", b'"'):
        raise Malformed('the STRING opcode argument must be quoted')
      quote.append(piece[:1])
      piece = piece[1:]
      first = False
    data = held + piece
    if data:
      held = data[-1:]
      if data[:-1]:
        yield data[:-1]
  if first or held != quote[0]:
    raise Malformed('the STRING opcode argument must be quoted')


def _latin1_encode(args: tuple):
  """`_codecs.encode(text, 'latin1')`, evaluated here (latin-1 only)."""
  if len(args) != 2 or not isinstance(args[1], str):
    raise Forbidden(
        'the pickle calls _codecs.encode with other arguments than (text, codec)'
    )
  text, codec = args
  if codec not in _LATIN1:
    raise Forbidden(
        f"the pickle rebuilds bytes with codec '{shown(codec)}', which is not"
        ' allowed (Python pickles bytes as latin1)'
    )
  if isinstance(text, str):
    try:
      return text.encode('latin-1')
    except UnicodeEncodeError:
      pass
  elif isinstance(text, (ps.Utf8Text, ps.EscapedText)):
    if text.latin1:
      return ps.Latin1Bytes(text)
  else:
    raise Forbidden(f'the pickle calls _codecs.encode on a {describe(text)}')
  raise Forbidden('the pickle encodes text that is not latin-1 as latin1')


def parse(
    f: BinaryIO,
    allowed_globals: Mapping[tuple[str, str], Global],
    max_values: int,
    eager_bytes: int,
    max_string: int,
):
  """The value a pickle holds, as inert data, read from `f`'s position.

  `allowed_globals` maps (module, name) as the pickle spells it to the Global
  to record (e.g. numpy 1.x and 2.x module names to one). Raises Malformed or
  Forbidden.
  """
  try:
    return _Parser(
        f, allowed_globals, max_values, eager_bytes, max_string
    ).parse()
  except ps.DecodeError as e:
    raise Malformed(str(e)) from None
