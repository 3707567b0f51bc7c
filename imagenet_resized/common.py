"""The names every wing shares: the error a bad source raises, sizes, splits.

A leaf: it imports nothing of the package, and every module may import it.
"""

from __future__ import annotations

# The image sizes the authors published.
SIZES = (8, 16, 32, 64)
TRAIN = 'train'
VALIDATION = 'validation'
# The splits the authors published, in the order they are built.
SPLITS = (TRAIN, VALIDATION)
# Classes of ILSVRC2012, in the authors' label order (labels.txt).
NUM_CLASSES = 1000


class SourceError(ValueError):
  """A source file that is missing, malformed or not what was expected.

  Its message is one line naming the file (and member), what was wrong and
  what was expected.
  """
