"""One build of a dataset at a time in one data_dir; nothing left by a killed one.

TFDS prepares `DATA_DIR/imagenet_resized/CONFIG/VERSION` in a folder
`CONFIG/incomplete.XXXXXX_VERSION` (six random letters or digits,
`tensorflow_datasets/core/utils/file_utils.py: incomplete_dir`) and renames
it when the build succeeds. Its shuffler spills examples to disk there too
(`bucket_<uuid>_NNN.tmp`, `core/writer.py` gives the shuffler the split's
data folder, `core/shuffle.py`): gigabytes at the real sizes. A build that
is killed leaves that folder behind for good; two builds at once both do the
whole work, and the second to finish dies renaming onto the first's result.

So a build of a dataset takes a lock first: `CONFIG/.VERSION.build.lock`, a
hidden file next to the version folders (TFDS lists versions by folder names
that parse as versions, `core/utils/version.py: list_all_versions`, so it
never reads it). The lock is `file_lock` (fcntl.flock), which the kernel
releases when its holder dies, SIGKILL included. While a build holds it, no
other build of that dataset (data_dir, config, version) is running, so every
`incomplete.*_VERSION` folder of that config is a leftover of a build that
no longer runs: it is removed, with one log line. A second build waits for
the first, then finds the prepared folder and reuses it.

Remote data_dirs (gs://, ...) have no lock (`file_lock` says so in one log
line): builds into them are not kept apart and leftovers are not removed.
Standard library only.
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


def _incomplete_re(version: str) -> re.Pattern:
  # `incomplete.` + 6 characters of [A-Z0-9] + `_` + the version.
  return re.compile(
      rf'^{re.escape(INCOMPLETE_PREFIX)}[A-Z0-9]{{6}}_{re.escape(version)}$'
  )


def stale_folders(data_path: str) -> list[str]:
  """The `incomplete.*` folders of the dataset of `data_path`, sorted.

  Only those of its version, in its config folder: other versions and
  configs are other datasets, with locks of their own.
  """
  config_dir, version = os.path.split(os.fspath(data_path).rstrip('/'))
  pattern = _incomplete_re(version)
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
  """Within the block, this process alone prepares the dataset `data_path`.

  Waits for another build of it (logging that it waits), then removes the
  leftovers of builds that no longer run. `what` names the dataset in log
  lines ('imagenet_resized/8x8/0.1.0'). Yields whether a lock is held (False
  for a remote path).
  """
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
  """Runs `prepare` (TFDS's download_and_prepare) under the dataset's lock.

  A dataset prepared already (its dataset_info.json is there) and not to be
  overwritten is handed to `prepare` at once, without the lock (nothing is
  written into a data_dir that may be read-only). Otherwise, once the lock
  is held, a dataset that another build prepared meanwhile is `reread` (the
  builder's info) before `prepare` finds and reuses it.
  """
  info_file = os.path.join(data_path, 'dataset_info.json')
  if not overwrite and os.path.exists(info_file):
    return prepare()
  with preparing(data_path, what):
    if os.path.exists(info_file):
      reread()
    return prepare()
