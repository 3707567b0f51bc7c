"""Serves TFDS downloads from a local folder: `tfds build --imports tfds_local_download`.

Importing this module replaces `tensorflow_datasets.download.DownloadManager.download`
(in this process only) by a function that maps each URL to the file of the same
base name in a local folder, and goes to no network. This lets TFDS's own
`imagenet_resized` builder, which downloads the authors' zips, run through the
real `tfds build` command line on fake sources:

    IMAGENET_RESIZED_LOCAL_DOWNLOADS=DIR PYTHONPATH=tests \\
        tfds build imagenet_resized --imports tfds_local_download --config 8x8 ...

The folder is the one named by the environment variable
IMAGENET_RESIZED_LOCAL_DOWNLOADS; where it is not set, the build's manual folder
(`--manual_dir`, with `--add_name_to_manual_dir` applied), so that flags about
the manual folder reach TFDS's builder too. A URL whose file is not there fails
the build, naming the file. Where IMAGENET_RESIZED_LOCAL_DOWNLOADS_LOG names a
file, each URL served and its file are appended to it, one line each.

This module does not import `imagenet_resized`: with it alone, the name
`imagenet_resized` is TFDS's own builder.
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

ENV = 'IMAGENET_RESIZED_LOCAL_DOWNLOADS'
# Each URL served, in order, one per line (for tests that check what was asked).
LOG_ENV = 'IMAGENET_RESIZED_LOCAL_DOWNLOADS_LOG'


def _folder(dl_manager) -> str:
  if os.environ.get(ENV):
    return os.environ[ENV]
  # The folder as the download config gives it (`manual_dir` itself raises
  # for a builder without MANUAL_DOWNLOAD_INSTRUCTIONS, as TFDS's is).
  folder = getattr(dl_manager, '_manual_dir', None)
  if not folder or not os.path.isdir(folder):
    raise FileNotFoundError(
        f'tfds_local_download: no {ENV} and no manual folder ({folder})'
    )
  return os.fspath(folder)


def _local_path(folder: str, url) -> str:
  url = getattr(url, 'url', url)  # A tfds.download.Resource, or a str.
  path = os.path.join(folder, str(url).rstrip('/').rsplit('/', 1)[-1])
  if not os.path.isfile(path):
    raise FileNotFoundError(f'tfds_local_download: no {path} for {url}')
  if os.environ.get(LOG_ENV):
    with open(os.environ[LOG_ENV], 'a') as f:
      f.write(f'{url}\t{path}\n')
  return path


def local_download(self, url_or_urls):
  """DownloadManager.download: the same structure of URLs, as local paths."""
  folder = _folder(self)

  def convert(item):
    if isinstance(item, dict):
      return {k: convert(v) for k, v in item.items()}
    if isinstance(item, (list, tuple)):
      return type(item)(convert(v) for v in item)
    return tfds.core.Path(_local_path(folder, item))

  return convert(url_or_urls)


tfds.download.DownloadManager.download = local_download
