"""A batch's rows in chunks, whichever its form (npz or pickle).

A batch is a dict with `data` (uint8, N rows of 3*S*S planar CHW pixels) and
`labels` (N integers in 1..1000). The authors published it in two forms:

* npz: `np.savez` output (`train_data_batch_K.npz`, `val_data.npz`), a zip of
  `.npy` members. We stream `data.npy` a chunk of rows at a time, so memory
  does not grow with the batch (a 64x64 train batch holds ~1.6 GB of pixels).
* pickle: the original Python-2 era pickled dicts (no extension). A pickle
  is never unpickled: its opcodes are parsed into inert records
  (`inert_pickle`), checked against the forms numpy pickles arrays in
  (`pickled_numpy`), and the arrays are built here with np.frombuffer; the
  pixels stay in the file until then and are read a chunk of rows at a time.

Every size a file declares is checked against the others and against the
bytes that back it before anything is allocated; every refusal is a
SourceError of one line: `{file}:{member}: what is wrong; expected ...`.

This module knows nothing about TFDS; it works on file objects and numpy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from imagenet_resized.readers import batch_rows
from imagenet_resized.readers import npz_batches
from imagenet_resized.readers import pickle_batches


def iter_chunks(
    fileobj: BinaryIO,
    where: str,
    size: int,
    is_npz: bool,
    chunk_rows: int = batch_rows.DEFAULT_CHUNK_ROWS,
) -> Iterator[batch_rows.Chunk]:
  reader = (
      npz_batches.iter_npz_chunks
      if is_npz
      else pickle_batches.iter_pickle_chunks
  )
  return reader(fileobj, where, size, chunk_rows)
