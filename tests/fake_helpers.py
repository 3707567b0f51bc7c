"""Test-only helpers around the fake sources of `imagenet_resized.tools.fake`.

They read back what the fake writers wrote (with plain numpy and the standard
library's pickle: these are the tests' own trusted bytes, read independently
of the package's readers), spoil or replace a batch of them, write
ImageNet16-120's layout, and build ILSVRC2012-style tars.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import warnings
import zipfile
from collections.abc import Sequence

import numpy as np

from imagenet_resized.authors import publication
from imagenet_resized.tools import fake


def read_batch_file(data: bytes, is_npz: bool) -> dict:
  """The batch dict (`data`, `labels`) of a fake batch file's bytes.

  npz through numpy; pickles (Python 2 ones too) through `pickle.loads` with
  numpy's documented `encoding='latin1'`.
  """
  if is_npz:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
      return {k: z[k] for k in z.files}
  with warnings.catch_warnings():
    # Python 2 pickles name numpy.core, which numpy 2 renamed.
    warnings.simplefilter('ignore', DeprecationWarning)
    batch = pickle.loads(data, encoding='latin1')
  return {'data': batch['data'], 'labels': batch['labels']}


def tar_bytes(files: Sequence[tuple[str, bytes]]) -> bytes:
  """An uncompressed tar of (name, bytes) members, as ILSVRC2012's tars are."""
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w') as tar:
    for name, data in files:
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return buf.getvalue()


def replace_batch(
    out_dir: str, size: int, fmt: str, zipped: bool, name: str, data: bytes
) -> str:
  """Overwrites batch `name` of a `write_sources` tree with `data` (any bytes).

  For tests of bad input. Returns how the reader names the batch in messages:
  'zip:member' for zips, the file path for extracted files.
  """
  npz = fmt == 'npz'
  split = publication.batch_split(name)
  member_name = name + ('.npz' if npz else '')
  for archive in publication.archive_names(size, split, npz):
    folder = archive.removesuffix('.zip')
    if not zipped:
      path = os.path.join(out_dir, folder, member_name)
      if os.path.exists(path):
        with open(path, 'wb') as f:
          f.write(data)
        return path
      continue
    path = os.path.join(out_dir, archive)
    with zipfile.ZipFile(path) as zf:
      members = [(n, zf.read(n)) for n in zf.namelist()]
    for i, (member, _) in enumerate(members):
      if os.path.basename(member) == member_name:
        members[i] = (member, data)
        fake.write_zip(path, members)
        return f'{path}:{member}'
  raise ValueError(
      f'no batch {member_name} in the {fmt} sources under {out_dir}'
  )


# ImageNet16-120 (`16x16_120`) needs a validation batch with exactly 6,000
# rows of classes 1..120 (the published val_data has 50 per class).
IMAGENET16_120_VAL_ROWS = 6_000
IMAGENET16_120_CLASSES = 120


def write_imagenet16_120_sources(
    out_dir: str,
    fmt: str = 'npz',
    zipped: bool = True,
    train_batches: int = 2,
    examples_per_batch: int = 300,
    other_val_examples: int = 400,
    seed: int = 0,
) -> list[str]:
  """16x16 sources whose `val_data` holds 6,000 rows of classes 1..120 (50
  each) mixed with `other_val_examples` rows of classes 121..1000."""
  written = fake.write_sources(
      out_dir,
      16,
      fmt=fmt,
      train_batches=train_batches,
      examples_per_batch=examples_per_batch,
      val_examples=1,
      seed=seed,
      zipped=zipped,
  )
  rng = np.random.default_rng([seed, 16, IMAGENET16_120_CLASSES])
  per_class = IMAGENET16_120_VAL_ROWS // IMAGENET16_120_CLASSES
  labels = np.concatenate(
      [
          np.repeat(np.arange(1, IMAGENET16_120_CLASSES + 1), per_class),
          rng.integers(
              IMAGENET16_120_CLASSES + 1, 1001, size=other_val_examples
          ),
      ]
  )
  rng.shuffle(labels)
  batch = {
      'data': fake.images_to_rows(fake.make_images(rng, len(labels), 16)),
      'labels': labels,
  }
  replace_batch(out_dir, 16, fmt, zipped, 'val_data', fake.batch_bytes(batch, fmt))
  return written
