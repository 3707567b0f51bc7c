"""Text taken from a file, made fit for a one-line message."""

from __future__ import annotations


def shown(text: str, limit: int = 60) -> str:
  """`text` cut to `limit` characters, control characters escaped.

  Names in hostile files (zip members, tar members, dict keys) may hold
  newlines or be megabytes long; a message must stay one readable line.
  """
  text = text if len(text) <= limit else text[:limit] + '...'
  return text if text.isprintable() else repr(text)[1:-1]


def listed(names: list[str], limit: int = 10) -> str:
  """A list of names from a file, fit for one line."""
  first = [shown(n, 40) for n in names[:limit]]
  more = f' and {len(names) - limit} more' if len(names) > limit else ''
  return f'{first}{more}'
