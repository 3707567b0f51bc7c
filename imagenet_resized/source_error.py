"""The one error the readers of source files raise (standard library only).

Defined apart from `batch_format` (which needs numpy) so that the small
stdlib-only modules that open files and zip members raise it too;
`batch_format.SourceError` is this class.
"""

from __future__ import annotations


class SourceError(ValueError):
  """A source file is missing, malformed or not what the config expects."""
