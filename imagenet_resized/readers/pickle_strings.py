"""A pickle's large strings, located in the file and read only when wanted.

`inert_pickle` notes where a large string (the pixels) is and what it decodes
to; it is read later, in blocks, with the codecs `pickle` uses. RawBytes:
BINSTRING, BINBYTES, BINBYTES8, BYTEARRAY8; EscapedBytes: STRING; Utf8Text:
BINUNICODE, BINUNICODE8; EscapedText: UNICODE; Latin1Bytes:
`_codecs.encode(text, 'latin1')` (Python 3's `bytes` at protocols 0 to 2).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
import dataclasses
from typing import BinaryIO
import warnings

BLOCK_BYTES = 1 << 20


class DecodeError(ValueError):
  """A string's bytes are not what its opcode says they are."""


@dataclasses.dataclass(frozen=True)
class RawBytes:
  offset: int  # In the file.
  length: int  # Bytes in the file, which are the string's bytes.

  @property
  def size(self) -> int:
    return self.length


@dataclasses.dataclass(frozen=True)
class EscapedBytes:
  offset: int  # Of the first byte after the opening quote.
  length: int  # Encoded bytes between the quotes.
  size: int  # Bytes once decoded.


@dataclasses.dataclass(frozen=True)
class Utf8Text:
  offset: int
  length: int  # Encoded bytes.
  size: int  # Characters.
  latin1: bool  # Whether every character is below U+0100.


@dataclasses.dataclass(frozen=True)
class EscapedText:
  offset: int
  length: int  # Encoded bytes, the newline excluded.
  size: int  # Characters.
  latin1: bool


Text = Utf8Text | EscapedText


@dataclasses.dataclass(frozen=True)
class Latin1Bytes:
  text: Text  # Every character below U+0100 (checked when this is made).

  @property
  def size(self) -> int:
    return self.text.size


LazyBytes = RawBytes | EscapedBytes | Latin1Bytes


class _EscapeDecoder:
  """Incremental `codecs.escape_decode` (pickle's decoder for STRING): a
  trailing escape that may be incomplete (`\\x4`) waits for the next block."""

  def __init__(self):
    self._carry = b''

  def decode(self, data: bytes, final: bool = False) -> bytes:
    data = self._carry + data
    cut = len(data) if final else _complete_escapes(data)
    self._carry = data[cut:]
    try:
      with warnings.catch_warnings():  # Unknown escapes kept, as by pickle.
        warnings.simplefilter('ignore', DeprecationWarning)
        return codecs.escape_decode(data[:cut])[0]
    except ValueError as e:
      raise DecodeError(f'bad escape in a STRING argument ({e})') from None


def _complete_escapes(data: bytes) -> int:
  """Length of the longest prefix of `data` that splits no escape: a backslash
  and up to 3 more bytes, unless the backslash ends a `\\\\` pair."""
  i = data.rfind(b'\\', max(0, len(data) - 4))
  if i < 0:
    return len(data)
  run = i + 1 - len(data[: i + 1].rstrip(b'\\'))
  if run % 2 == 0:  # `\\` pairs only: the last one is complete.
    return len(data)
  return i if i + 4 > len(data) else len(data)


class _TextDecoder:
  """Incremental decoding of UTF-8 or raw-unicode-escape text."""

  def __init__(self, encoding: str):
    errors = 'surrogatepass' if encoding == 'utf-8' else 'strict'
    self._decoder = codecs.getincrementaldecoder(encoding)(errors)

  def decode(self, data: bytes, final: bool = False) -> str:
    try:
      return self._decoder.decode(data, final)
    except UnicodeDecodeError as e:
      raise DecodeError(f'bad {e.encoding} text in a string argument') from None


def utf8_decoder() -> _TextDecoder:
  return _TextDecoder('utf-8')


def escaped_text_decoder() -> _TextDecoder:
  return _TextDecoder('raw-unicode-escape')


def escaped_bytes_decoder() -> _EscapeDecoder:
  return _EscapeDecoder()


_DECODERS = {
    EscapedBytes: escaped_bytes_decoder,
    Utf8Text: utf8_decoder,
    EscapedText: escaped_text_decoder,
}


def measure(decoder, blocks: Iterable[bytes]) -> tuple[int, bool]:
  """(decoded length, all characters latin-1) of a string's encoded blocks."""
  size, latin1 = 0, True
  for block, final in blocks_with_final(blocks):
    out = decoder.decode(block, final)
    size += len(out)
    latin1 = latin1 and is_latin1(out)
  return size, latin1


def is_latin1(out: bytes | str) -> bool:
  """Whether decoded output is bytes, or text whose characters are latin-1."""
  if isinstance(out, bytes) or out.isascii():
    return True
  try:
    out.encode('latin-1')  # Much faster than max(out).
  except UnicodeEncodeError:
    return False
  return True


def blocks_with_final(blocks: Iterable[bytes]) -> Iterator[tuple[bytes, bool]]:
  """(block, whether it is the last) of `blocks`; one empty final block if none."""
  it = iter(blocks)
  previous = next(it, None)
  if previous is None:
    yield b'', True
    return
  for block in it:
    yield previous, False
    previous = block
  yield previous, True


def _file_blocks(f: BinaryIO, offset: int, length: int) -> Iterator[bytes]:
  """`length` bytes of `f` from `offset`, in blocks; DecodeError if cut short."""
  f.seek(offset)
  left = length
  while left:
    block = f.read(min(left, BLOCK_BYTES))
    if not block:
      raise DecodeError(
          f'the file ends {left} bytes into a string it declares'
          f' ({length} bytes at offset {offset})'
      )
    left -= len(block)
    yield block


def iter_bytes(f: BinaryIO, string: LazyBytes) -> Iterator[bytes]:
  """The bytes of `string`, decoded, in blocks (of no fixed size)."""
  if isinstance(string, RawBytes):
    yield from _file_blocks(f, string.offset, string.length)
    return
  text = string.text if isinstance(string, Latin1Bytes) else string
  decoder = _DECODERS[type(text)]()
  for block, final in blocks_with_final(
      _file_blocks(f, text.offset, text.length)
  ):
    out = decoder.decode(block, final)
    if isinstance(out, str):
      try:
        out = out.encode('latin-1')
      except UnicodeEncodeError:  # Checked when parsing: the file changed.
        raise DecodeError('a string changed since it was checked') from None
    yield out


class StringReader:
  """Reads a lazy string front to back in pieces of the sizes asked for."""

  def __init__(self, f: BinaryIO, string: LazyBytes):
    self._f = f
    self._string = string
    self._started = False
    self._blocks = None  # Decoded blocks, for strings stored encoded.
    self._pending = b''

  def read(self, n: int) -> bytes:
    """Exactly `n` bytes (fewer only at the end of the file)."""
    if isinstance(self._string, RawBytes):  # Straight from the file.
      if not self._started:
        self._f.seek(self._string.offset)
        self._started = True
      return self._f.read(n)
    if self._blocks is None:
      self._blocks = iter_bytes(self._f, self._string)
    parts, have = [self._pending], len(self._pending)
    while have < n:
      block = next(self._blocks, None)
      if block is None:
        break
      parts.append(block)
      have += len(block)
    data = b''.join(parts)
    self._pending = data[n:]
    return data[:n]
