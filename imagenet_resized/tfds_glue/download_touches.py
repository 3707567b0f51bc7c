"""The touches of TFDS's DownloadManager, asked for on demand by the builder.

`manual_dir_of` and `is_download_cached`, each guarded by its touch, and
`downloads_through_tfds`.
"""

from __future__ import annotations

import inspect
import os

from tensorflow_datasets.core.download import download_manager
from tensorflow_datasets.core.download import resource as resource_lib

from imagenet_resized.tfds_glue import touch_base

DownloadManager = download_manager.DownloadManager


class ManualDirAsGiven(touch_base.Touch):
  """The manual folder as given (`manual_dir_of`), even missing or empty,
  where TFDS's `manual_dir` raises: the builder's messages name it."""

  name = 'DownloadManager._manual_dir'

  def structure_problem(self, dl_manager, builder) -> str | None:
    if dl_manager is not None and '_manual_dir' not in vars(dl_manager):
      return 'the download manager has no _manual_dir'
    return None


class DownloadCacheLookup(touch_base.Touch):
  """Whether a URL's file is in TFDS's download cache (`is_download_cached`)."""

  name = 'DownloadManager._get_checksum_dl_result'

  def structure_problem(self, dl_manager, builder) -> str | None:
    fn = getattr(DownloadManager, '_get_checksum_dl_result', None)
    if touch_base.params(fn) != ['self', 'resource', 'legacy_mode']:
      return 'it is missing, or takes other parameters'
    if 'url' not in (touch_base.params(resource_lib.Resource) or ()):
      return 'resource.Resource takes no url'
    return None


MANUAL_DIR = ManualDirAsGiven()
DOWNLOAD_CACHE = DownloadCacheLookup()


def _is_tfds_own(obj, name: str) -> bool:
  """Whether `obj.name` is TFDS's own DownloadManager code, not a replacement
  (a test harness's mock), by the module and qualified name Python finds."""
  try:
    found = inspect.getattr_static(obj, name)
  except AttributeError:
    return False
  found = getattr(found, 'func', found)  # functools.cached_property
  found = inspect.unwrap(getattr(found, 'fget', found))  # property
  return (
      getattr(found, '__module__', None) == DownloadManager.__module__
      and getattr(found, '__qualname__', None) == f'DownloadManager.{name}'
  )


def downloads_through_tfds(dl_manager) -> bool:
  """Whether `dl_manager.download` is TFDS's own (network, retrying for
  minutes: worth probing first), not a replacement such as TFDS's
  DatasetBuilderTestCase's, which is asked and nothing else."""
  return _is_tfds_own(dl_manager, 'download')


def manual_dir_of(dl_manager, touches=None) -> str | None:
  """The manual folder given to the build (`~` expanded), or None; never
  raises. A `manual_dir` set by TFDS's test harness is the folder; otherwise
  MANUAL_DIR gives it even missing or empty, else TFDS's public property."""
  if _is_tfds_own(dl_manager, 'manual_dir') and (
      (touches is None or touches.uses(MANUAL_DIR))
      and '_manual_dir' in vars(dl_manager)
  ):
    manual_dir = dl_manager._manual_dir
  else:
    try:
      manual_dir = dl_manager.manual_dir
    except Exception:
      manual_dir = None
  return os.path.expanduser(os.fspath(manual_dir)) if manual_dir else None


def is_download_cached(dl_manager, url: str) -> bool:
  """Whether TFDS would take `url`'s file from its download cache
  (DOWNLOAD_CACHE; callers check that the build uses it)."""
  resource = resource_lib.Resource(url=url)
  return any(
      dl_manager._get_checksum_dl_result(resource, legacy_mode=legacy)
      is not None
      for legacy in (False, True)
  )
