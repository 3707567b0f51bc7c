"""One build of a dataset at a time in one data_dir; nothing left by a killed one.

TFDS prepares `DATA_DIR/imagenet_resized/CONFIG/VERSION` in a folder
`CONFIG/incomplete.XXXXXX_VERSION` (`core/utils/file_utils.py:
incomplete_dir`), where its shuffler also spills examples to disk
(`bucket_<uuid>_NNN.tmp`, `core/shuffle.py`), and renames it when the build
succeeds. A killed build leaves that folder behind for good; two builds at
once both do the whole work, and the second dies renaming onto the first's.

So a build first takes the `file_lock` `CONFIG/.VERSION.build.lock` (hidden:
TFDS lists versions by folder names, `core/utils/version.py`), which the
kernel releases when its holder dies. While it is held, no other build of
that dataset runs, so every `incomplete.*_VERSION` folder of the config is a
leftover: it is removed, with one log line. A second build waits, then finds
and reuses the prepared folder. Remote data_dirs (gs://, ...) have no lock:
builds into them are not kept apart, and leftovers are not removed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
import logging
import os
import re
import shutil
from typing import TypeVar

from imagenet_resized.tfds_glue import file_lock

log = logging.getLogger(__name__)
T = TypeVar('T')

# TFDS's prefix for a folder being prepared (core/constants.py).
INCOMPLETE_PREFIX = 'incomplete.'
_SPILL_RE = re.compile(r'^bucket_.*\.tmp$')


def lock_path(data_path: str) -> str:
  """The lock of the dataset prepared in `data_path` (.../CONFIG/VERSION)."""
  config_dir, version = os.path.split(os.fspath(data_path).rstrip('/'))
  return os.path.join(config_dir, f'.{version}.build.lock')


def stale_folders(data_path: str) -> list[str]:
  """The `incomplete.*` folders of the dataset of `data_path`, sorted: only
  its version's, in its config folder (others have locks of their own)."""
  config_dir, version = os.path.split(os.fspath(data_path).rstrip('/'))
  pattern = re.compile(
      rf'^{re.escape(INCOMPLETE_PREFIX)}[A-Z0-9]{{6}}_{re.escape(version)}$'
  )
  try:
    names = os.listdir(config_dir)
  except FileNotFoundError:
    return []
  return sorted(
      os.path.join(config_dir, n)
      for n in names
      if pattern.match(n)
      and os.path.isdir(os.path.join(config_dir, n))
      and not os.path.islink(os.path.join(config_dir, n))
  )


def _remove_stale(data_path: str, what: str) -> None:
  folders = stale_folders(data_path)
  if not folders:
    return
  files = spills = size = 0
  for folder in folders:
    for dirpath, _, filenames in os.walk(folder):
      for name in filenames:
        files += 1
        spills += bool(_SPILL_RE.match(name))
        with contextlib.suppress(OSError):
          size += os.lstat(os.path.join(dirpath, name)).st_size
    shutil.rmtree(folder, ignore_errors=True)
  log.warning(
      'Removed the leftovers of %d %s of %s that no longer run%s: %s (%d'
      ' files, %d of them shuffler spill files, %.1f MB)',
      len(folders),
      'builds' if len(folders) > 1 else 'build',
      what,
      '' if len(folders) > 1 else 's',
      ', '.join(os.path.basename(f) for f in folders),
      files,
      spills,
      size / 1e6,
  )


@contextlib.contextmanager
def preparing(data_path: str, what: str) -> Iterator[bool]:
  """Within the block, this process alone prepares the dataset `data_path`,
  once another build of it is done and dead builds' leftovers are removed.
  `what` names it in log lines ('imagenet_resized/8x8/0.1.0'). Yields
  whether a lock is held (False for a remote path)."""
  with file_lock.held(lock_path(data_path), f'build of {what}') as locked:
    if locked:
      _remove_stale(data_path, what)
    yield locked


def prepare_once(
    data_path: str,
    what: str,
    prepare: Callable[[], T],
    reread: Callable[[], None],
    overwrite: bool = False,
) -> T:
  """Runs `prepare` (TFDS's download_and_prepare) under the dataset's lock,
  unless the dataset is prepared and not to be overwritten (then at once,
  lockless: the data_dir may be read-only). Once the lock is held, a dataset
  another build prepared meanwhile is `reread` before `prepare` reuses it."""
  info_file = os.path.join(data_path, 'dataset_info.json')
  if not overwrite and os.path.exists(info_file):
    return prepare()
  with preparing(data_path, what):
    if os.path.exists(info_file):
      reread()
    return prepare()
