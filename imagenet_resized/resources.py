"""Data files shipped inside the package: labels and download checksums.

The repository's `labels.txt` and `checksums.tsv` are installed into the
package (its folder holds links to them) and always read from there.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources


@dataclasses.dataclass(frozen=True)
class UrlRecord:
  url: str
  size: int
  sha256: str
  filename: str


def read_text(name: str) -> str:
  return path(name).read_text('utf-8')


def path(name: str):
  """A path-like (Traversable) to a packaged data file."""
  return importlib.resources.files('imagenet_resized').joinpath(name)


@functools.cache
def wnids() -> tuple[str, ...]:
  """The 1000 WordNet IDs in the authors' label order (label = line index)."""
  ids = tuple(
      line.strip()
      for line in read_text('labels.txt').splitlines()
      if line.strip()
  )
  if len(ids) != 1000:
    raise RuntimeError(
        f'labels.txt holds {len(ids)} WordNet IDs; expected 1000'
    )
  return ids


@functools.cache
def checksums() -> tuple[UrlRecord, ...]:
  """The registered archives (TFDS checksums.tsv format)."""
  records = []
  for line in read_text('checksums.tsv').splitlines():
    if line.strip() and not line.startswith('#'):
      url, size, sha256, filename = line.split('\t')
      records.append(UrlRecord(url, int(size), sha256, filename))
  return tuple(records)
