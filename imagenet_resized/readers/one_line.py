"""Text taken from a file, made fit for a one-line message."""

from __future__ import annotations


def shown(text: str, limit: int | None = 60) -> str:
  """`text` cut to `limit` characters (None: whole), control characters
  escaped: a name in a hostile file may hold newlines or be megabytes long."""
  text = text if limit is None or len(text) <= limit else text[:limit] + '...'
  return text if text.isprintable() else repr(text)[1:-1]


def first_line(e: BaseException) -> str:
  """The first line of an exception's text ('' when it has none)."""
  return (str(e).splitlines() or [''])[0]


def reason(e: BaseException) -> str:
  """An exception's first line, fit for a one-line message."""
  return shown(first_line(e), 120)


def listed(names: list[str], limit: int = 10) -> str:
  """A list of names from a file, fit for one line."""
  first = [shown(n, 40) for n in names[:limit]]
  more = f' and {len(names) - limit} more' if len(names) > limit else ''
  return f'{first}{more}'


def quantity(n: int) -> str:
  """An integer a file declared, in digits up to 64 bits, else by magnitude
  (Python refuses to print an int of more than 4300 digits)."""
  return str(n) if n.bit_length() <= 64 else f'over 2**{n.bit_length() - 1}'


def shape(dims: tuple[int, ...]) -> str:
  """A declared shape as numpy prints it, `(4, 192)`, each size via quantity."""
  inner = ', '.join(quantity(n) for n in dims[:8])
  if len(dims) > 8:
    inner += f', ... ({len(dims)} dimensions)'
  return f'({inner},)' if len(dims) == 1 else f'({inner})'
