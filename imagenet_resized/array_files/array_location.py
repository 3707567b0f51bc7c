"""Which prepared split an array export is of, and where its files live.

* Next to a local prepared dataset, `<version dir>/arrays/<split>/`: TFDS
  reads only the files its info names, and a forced rebuild (a new version
  folder) takes the old build's arrays with it.
* For a data_dir that is not local (gs://...), a local `cache_dir` the user
  names: `<cache_dir>/<name>/<config>/<version>/<split>/`.
"""

from __future__ import annotations

import os

from imagenet_resized import common
from imagenet_resized.array_files import array_fingerprint

FOLDER = 'arrays'


def folder_for(builder, split: str, cache_dir: str | None) -> str:
  """The folder of `split`'s array files (ArraysError where there is none)."""
  if cache_dir is not None:
    if not common.is_local(cache_dir):
      raise array_fingerprint.ArraysError(
          f'cache_dir {cache_dir}: not a local folder; expected a folder on'
          ' this machine (the arrays are memory-mapped)'
      )
    return os.path.join(
        os.path.abspath(os.path.expanduser(cache_dir)),
        builder.name,
        builder.builder_config.name,
        str(builder.version),
        split,
    )
  data_path = os.fspath(builder.data_path)
  if not common.is_local(data_path):
    raise array_fingerprint.ArraysError(
        f'{data_path}: not a local folder, so the arrays cannot sit next to'
        ' it; expected cache_dir=DIR (--cache-dir DIR), a local folder for'
        ' them'
    )
  return os.path.join(data_path, FOLDER, split)


def identity(builder, split: str) -> dict:
  """The prepared split as a fingerprint's `dataset` entry (shards stat'ed)."""
  info = builder.info
  split_info = info.splits[split]
  shards = []
  for path, count in zip(split_info.filepaths, split_info.shard_lengths):
    path = os.fspath(path)
    try:
      if common.is_local(path):
        size = os.stat(path).st_size
      else:
        from etils import epath

        size = epath.Path(path).stat().length
    except FileNotFoundError:
      raise array_fingerprint.ArraysError(
          f"{path}: missing; expected the shard the prepared dataset's info"
          ' names'
      ) from None
    shards.append(
        {'name': os.path.basename(path), 'size': size, 'examples': int(count)}
    )
  return {
      'name': builder.name,
      'config': builder.builder_config.name,
      'version': str(builder.version),
      'split': split,
      'num_examples': int(split_info.num_examples),
      'file_format': str(info.file_format.value),
      'shards': shards,
  }
