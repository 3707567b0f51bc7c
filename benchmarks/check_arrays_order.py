"""Every row of a prepared split's arrays against TFDS's reading, in index order.

For a dataset already built in `--data_dir` (for instance the real size's
`bench_real_size.py --keep_data`), exports each split's arrays
(`imagenet_resized.arrays.load`), then reads the split through TFDS one
shard at a time (`as_dataset(shuffle_files=False,
read_config=ReadConfig(interleave_cycle_length=1))`, the order docs/arrays.md
states), decodes every PNG with TensorFlow and compares pixels and label row
by row. It also counts the rows where the default `ReadConfig`'s order (the
interleave of 16 shards) differs from the index order, to show what the old
promise would have got wrong:

    python benchmarks/check_arrays_order.py --config 32x32 \
        --data_dir /tmp/imagenet_resized_bench/real_32_data_ours

Prints one JSON line per split.
"""

from __future__ import annotations

import argparse
import json
import time


def check_split(builder, data_dir: str, split: str, batch: int = 4096) -> dict:
  import imagenet_resized
  import tensorflow_datasets as tfds

  started = time.monotonic()
  arrays = imagenet_resized.arrays.load(
      builder.builder_config.name, split, data_dir=data_dir
  )
  export_s = time.monotonic() - started
  shards = len(builder.info.splits[split].shard_lengths)
  index_order = builder.as_dataset(
      split=split,
      shuffle_files=False,
      read_config=tfds.ReadConfig(interleave_cycle_length=1),
  )
  default_order = builder.as_dataset(split=split, shuffle_files=False)
  rows = mismatched = interleaved_differs = 0
  for ours, theirs in zip(
      index_order.batch(batch).as_numpy_iterator(),
      default_order.batch(batch).as_numpy_iterator(),
  ):
    n = len(ours['label'])
    images = arrays.images[rows : rows + n]
    labels = arrays.labels[rows : rows + n]
    same = (images == ours['image']).all(axis=(1, 2, 3)) & (
        labels == ours['label']
    )
    mismatched += int(n - same.sum())
    interleaved_differs += int((theirs['label'] != ours['label']).sum())
    rows += n
  return {
      'split': split,
      'shards': shards,
      'rows_read_by_tfds': rows,
      'rows_in_arrays': len(arrays.labels),
      'rows_differing_from_index_order': mismatched,
      'default_read_config_labels_differing': interleaved_differs,
      'export_s': round(export_s, 1),
      'check_s': round(time.monotonic() - started - export_s, 1),
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='32x32')
  parser.add_argument('--data_dir', required=True)
  args = parser.parse_args()
  import imagenet_resized

  builder = imagenet_resized.Builder(config=args.config, data_dir=args.data_dir)
  for split in builder.info.splits:
    print(json.dumps(check_split(builder, args.data_dir, split)), flush=True)


if __name__ == '__main__':
  main()
