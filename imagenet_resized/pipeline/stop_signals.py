"""How a build or an export ends when told to stop: SIGINT, SIGTERM, SIGHUP.

Within `stopped_by_signals(what)`, each of them (Ctrl-C, a scheduler, a
closed terminal):

1. unwinds the work where it stands (`Stopped`, raised in the main thread),
   so that every clean-up runs: TFDS's `incomplete.*` folder, an export's
   temporary files, the worker processes (which ignore these signals);
2. writes one line to stderr: what was stopped, and that nothing was kept;
3. then ends the process by the signal, without a traceback; in an
   interactive session (IPython, Jupyter, `python -i`) SIGINT raises
   KeyboardInterrupt instead, so that the session lives on.

Only signals left at their default are taken (a program's own handlers, and
a SIGHUP ignored by `nohup`, stay), and only in the main thread. During the
clean-up the same signals are ignored: a second Ctrl-C does not cut it short.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import os
import signal
import sys
import threading

from imagenet_resized.pipeline import worker_pool

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_DEFAULTS = (signal.SIG_DFL, signal.default_int_handler)


class Stopped(BaseException):
  """The work was told to stop by a signal (a BaseException, as
  KeyboardInterrupt is: `except Exception` clauses let it through)."""

  def __init__(self, signum: int):
    super().__init__(signal.Signals(signum).name)
    self.signum = signum


def _raise_stopped(signum: int, frame) -> None:
  del frame
  for sig in SIGNALS:  # Whatever comes while the work unwinds: ignored.
    if signal.getsignal(sig) is _raise_stopped:
      signal.signal(sig, signal.SIG_IGN)
  raise Stopped(signum)


def _interactive() -> bool:
  return (
      bool(sys.flags.interactive)
      or hasattr(sys, 'ps1')
      or ('IPython' in sys.modules)
  )


@contextlib.contextmanager
def stopped_by_signals(what: str) -> Iterator[None]:
  """Within the block, SIGINT, SIGTERM and SIGHUP stop `what` ('the build of
  imagenet_resized/32x32/0.1.0', named in the line; module docstring)."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  taken = {}
  for sig in SIGNALS:
    if signal.getsignal(sig) in _DEFAULTS:
      taken[sig] = signal.signal(sig, _raise_stopped)
  try:
    yield
  except Stopped as stop:
    worker_pool.stop_all()
    name = signal.Signals(stop.signum).name
    sys.stdout.flush()
    print(
        f'imagenet_resized: stopped {what} ({name}); nothing of it was kept',
        file=sys.stderr,
        flush=True,
    )
    for sig, handler in taken.items():
      signal.signal(sig, handler)
    if stop.signum == signal.SIGINT and _interactive():
      raise KeyboardInterrupt from None
    signal.signal(stop.signum, signal.SIG_DFL)
    os.kill(os.getpid(), stop.signum)
    os._exit(128 + stop.signum)  # Only if the signal did not end us.
  finally:
    for sig, handler in taken.items():
      signal.signal(sig, handler)
