"""One batch of the authors' data, and what a split is built from.

A `Batch` is a zip member or a file on disk, with the prefix of its
examples' keys; a `SplitBatches` is one split's batches in one form.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import dataclasses
import os
import tempfile
import zipfile

from imagenet_resized import common
from imagenet_resized.authors import publication
from imagenet_resized.common import SourceError
from imagenet_resized.readers import batch_chunks
from imagenet_resized.readers import npz_batches
from imagenet_resized.readers import npz_spool
from imagenet_resized.readers import one_line
from imagenet_resized.readers import pickle_batches
from imagenet_resized.readers import regular_files
from imagenet_resized.readers import zip_members

_EXPECTED_SOURCE = (
    "expected a regular file: one of the authors' archives or batch files"
)


def open_source(path: str) -> regular_files.RegularFile:
  """A source file opened for reading if it is a regular file (else a
  one-line SourceError); reads stop at its size when opened."""
  return regular_files.open_regular(path, _EXPECTED_SOURCE)


@dataclasses.dataclass(frozen=True)
class Batch:
  """One batch file: a member of a zip, or a file on disk."""

  path: str  # The zip, or the batch file itself.
  member: str | None  # Member name inside the zip; None for a file.
  key: str  # Prefix of the example keys.
  is_npz: bool

  @property
  def where(self) -> str:
    """Names the batch in messages: 'zip:member' or the file path."""
    return (
        f'{self.path}:{one_line.shown(self.member, 200)}'
        if self.member
        else self.path
    )

  @property
  def name(self) -> str:
    """The batch's name without extension: 'train_data_batch_3', 'val_data'."""
    return os.path.basename(self.key).removesuffix('.npz')

  @property
  def split(self) -> str:
    return publication.batch_split(os.path.basename(self.key))

  @contextlib.contextmanager
  def open(self) -> Iterator:
    """A seekable binary file object for the batch's bytes."""
    if self.member is None:
      with open_source(self.path) as f:
        yield f
      return
    with contextlib.ExitStack() as stack:
      archive = stack.enter_context(open_source(self.path))
      try:
        zf = stack.enter_context(zipfile.ZipFile(archive))
        info = zf.getinfo(self.member)
        f = stack.enter_context(zip_members.open_member(zf, info, self.where))
        if self.is_npz and info.compress_type != zipfile.ZIP_STORED:
          # Read by seeking, a compressed npz would be inflated many times:
          # inflated once into a temporary file instead (`npz_spool`).
          spooled = stack.enter_context(tempfile.TemporaryFile())
          npz_spool.copy_npz(f, spooled, self.where, info.file_size)
          spooled.seek(0)
          f = spooled
      except npz_batches.ZIP_ERRORS as e:
        raise SourceError(
            f'{self.where}: not readable (corrupt or truncated zip: {e});'
            " expected one of the authors' archives"
        ) from None
      yield npz_batches.as_seekable(f)

  def chunks(
      self, size: int, chunk_rows: int = batch_chunks.DEFAULT_CHUNK_ROWS
  ):
    """Yields `batch_chunks.Chunk`s of this batch, checked for `size`."""
    read = (
        npz_batches.iter_npz_chunks
        if self.is_npz
        else pickle_batches.iter_pickle_chunks
    )
    with self.open() as f:
      yield from read(f, self.where, size, chunk_rows)


def batches_in_zip(path: str, split: str) -> list[Batch]:
  """The batches of `split` inside the zip at `path`, in archive order."""
  try:
    with open_source(path) as f, zipfile.ZipFile(f) as zf:
      infos = zf.infolist()
  except npz_batches.ZIP_ERRORS as e:
    raise SourceError(
        f'{path}: not a readable zip (corrupt or truncated: {e}); expected one'
        " of the authors' archives"
    ) from None
  batches = []
  for info in infos:
    if info.is_dir():
      continue
    key = publication.normalize_member(info.filename)
    if key is None or publication.batch_split(os.path.basename(key)) != split:
      continue
    if info.file_size == 0:  # TFDS's builder skips empty members too.
      continue
    batches.append(
        Batch(path, info.filename, key, os.path.basename(key).endswith('.npz'))
    )
  if not batches:
    raise SourceError(
        f'{path}: holds no {split} batches; expected members named'
        f' {"train_data_batch_1..10" if split == common.TRAIN else "val_data"}'
        ' (with .npz in the npz form)'
    )
  return batches


@dataclasses.dataclass(frozen=True)
class SplitBatches:
  """What one split is built from."""

  split: str
  form: str  # 'npz zip', 'pickle zip', 'npz files' or 'pickle files'.
  files: tuple[str, ...]  # Archives, or batch files.
  batches: tuple[Batch, ...]
  # Number of examples required (published archives), or None.
  expected_examples: int | None = None
