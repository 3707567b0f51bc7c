"""Test-only helpers around the fake sources of `imagenet_resized.tools.fake`.

They read back what the fake writers wrote (with plain numpy and the standard
library's pickle: these are the tests' own trusted bytes, read independently
of the package's readers) and build ILSVRC2012-style tars.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import warnings
from collections.abc import Sequence

import numpy as np


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
