"""A touch of TFDS's internals: what all of them share (`tfds_touches`).

Each touch is one small object: its `name` (what of TFDS it touches),
`problem()` (why a build cannot use it, None when it can) and `applied()`
(its replacement, in place for the length of a build).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import inspect

import tensorflow_datasets as tfds

# The releases whose replacements' bytes the tests compared (test_versions.py).
VERIFIED_TFDS_VERSIONS = ('4.9.4', '4.9.7', '4.9.9', '4.9.10')


def params(fn) -> list[str] | None:
  """The parameter names of `fn`, or None if it has no readable signature."""
  try:
    return list(inspect.signature(fn).parameters)
  except (TypeError, ValueError):
    return None


@contextlib.contextmanager
def replaced(owner, name: str, value) -> Iterator[None]:
  """Within the block, `owner`'s own attribute `name` is `value`."""
  original = vars(owner)[name]
  setattr(owner, name, value)
  try:
    yield
  finally:
    setattr(owner, name, original)


class Touch:
  """One touch of TFDS's internals."""

  name = ''  # What of TFDS it touches.
  # Whether it writes bytes TFDS would write: then only on VERIFIED_*.
  writes_tfds_bytes = False

  def problem(self, dl_manager, builder) -> str | None:
    """Why a build (`builder`, None outside one) cannot use this, or None."""
    if (
        self.writes_tfds_bytes
        and tfds.__version__ not in VERIFIED_TFDS_VERSIONS
    ):
      return (
          'its bytes have not been compared with this release'
          f" ({', '.join(VERIFIED_TFDS_VERSIONS)} were)"
      )
    return self.structure_problem(dl_manager, builder)

  def structure_problem(self, dl_manager, builder) -> str | None:
    del dl_manager, builder
    return None

  def applied(self, builder) -> contextlib.AbstractContextManager:
    """Within the block, TFDS runs with this touch (a no-op if on demand)."""
    del builder
    return contextlib.nullcontext()
