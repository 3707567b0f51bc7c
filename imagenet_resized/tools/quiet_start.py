"""Keeps TensorFlow's start-up logging out of the command line's output.

Importing TensorFlow prints a dozen lines to stderr from C++ before any
Python code can stop it. When this package runs its own command line
(`sys.orig_argv`) without `--verbose`, TensorFlow is imported here first with
file descriptor 2 pointed at /dev/null. A library user's process is left
alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import contextlib
import os
import sys

COMMAND = 'imagenet-resized'
PACKAGE = 'imagenet_resized'
VERBOSE_FLAGS = ('-v', '--verbose')


def started_as_command_line(argv: Sequence[str]) -> bool:
  """Whether `argv` (as `sys.orig_argv`) runs this package's command line."""
  if '-m' in argv[1:]:
    i = argv.index('-m', 1)
    return list(argv[i + 1 : i + 2]) == [PACKAGE]
  return len(argv) > 1 and os.path.basename(argv[1]) == COMMAND


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
  """Points file descriptor 2 (C and C++ code's stderr too) at /dev/null."""
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  try:
    os.dup2(devnull, 2)
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


def quiet_tensorflow_for_command_line(
    argv: Sequence[str] | None = None,
) -> None:
  """Imports TensorFlow silently if this process runs our command line."""
  argv = sys.orig_argv if argv is None else argv
  if not started_as_command_line(argv) or any(a in VERBOSE_FLAGS for a in argv):
    return
  # Later C++ messages (CUDA initialisation errors, buffer sizes): none.
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  if 'tensorflow' not in sys.modules:
    with stderr_silenced():
      import tensorflow  # noqa: F401  (imported for its side effect: its logs, silenced)
