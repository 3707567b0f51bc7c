"""Parquet shards that keep every example.

tensorflow-datasets' `ParquetFileAdapter.write_examples` (4.9.5 to 4.9.10)
batches a shard's examples with `itertools.islice(iterator, i, i + n)` over an
iterator, so each batch skips more examples than the one before
(docs/versions.md). `write_examples` here writes them all in the layout
TFDS's reader expects: the serialized examples in the adapter's one binary
column (`_schema()`), in row groups of `_BATCH_SIZE`. `tfds_touches` puts it
in place only where TFDS's own loses examples and this one's read back whole.
"""

from __future__ import annotations

import itertools
import os
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq


def write_examples(cls, path, iterator) -> None:
  """A `ParquetFileAdapter.write_examples` that writes every example."""
  schema = cls._schema()
  iterator = iter(iterator)
  with pq.ParquetWriter(os.fspath(path), schema=schema) as out:
    while batch := list(itertools.islice(iterator, cls._BATCH_SIZE)):
      rows = [{cls._PARQUET_FIELD: data} for _, data in batch]
      out.write_batch(pa.RecordBatch.from_pylist(rows, schema=schema))
  return None


def keeps_every_example(adapter, write) -> bool:
  """Whether `write` (a write_examples function of `adapter`), given an
  iterator of more examples than three batches, writes a file that
  `adapter`'s schema reads back as every one of them, in order."""
  examples = [
      (i, f'example {i}'.encode()) for i in range(3 * adapter._BATCH_SIZE + 7)
  ]
  with tempfile.TemporaryDirectory(prefix='imagenet_resized-') as folder:
    path = os.path.join(folder, 'probe.parquet')
    write(adapter, path, iter(examples))
    table = pq.read_table(path, schema=adapter._schema())
  return table.column(0).to_pylist() == [data for _, data in examples]
