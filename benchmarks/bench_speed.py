"""Examples per second and peak memory: our builder against TFDS's, side by side.

For each size, both builders build the same fake sources (written by
`imagenet_resized.fake`: image-like content, npz zips in the authors' layout),
each in its own fresh subprocess, one after the other; then the two builds are
read back and compared example by example (decoded pixels, labels, order).

  python benchmarks/bench_speed.py --sizes 8 32 64 --batches 10 \
      --per_batch 10000 --val 10000

prints a Markdown table (and writes it to --out if given).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--sizes', type=int, nargs='+', default=[8, 32, 64])
  parser.add_argument('--batches', type=int, default=10, help='train batches')
  parser.add_argument('--per_batch', type=int, default=10_000)
  parser.add_argument('--val', type=int, default=10_000)
  parser.add_argument('--repeats', type=int, default=1, help='runs of each builder, alternating')
  parser.add_argument('--work_dir', default=common.DEFAULT_WORK_DIR)
  parser.add_argument('--no_compare', action='store_true', help='skip the decoded-output check')
  parser.add_argument('--out', default=None, help='also write the table here')
  args = parser.parse_args()

  lines = [
      f'Machine: {common.machine()}; load average before: {common.load_average()}',
      '',
      '| size | builder | examples | seconds | examples/s | peak RSS main (MiB) |'
      ' peak RSS largest child (MiB) | shard MiB | speed-up | decoded output |',
      '|---|---|---|---|---|---|---|---|---|---|',
  ]
  for size in args.sizes:
    sources_dir = common.ensure_sources(
        args.work_dir, size, args.batches, args.per_batch, args.val
    )
    best = {}
    for repeat in range(args.repeats):
      for builder in ('ours', 'tfds'):
        data_dir = os.path.join(args.work_dir, f'data_{builder}_{size}')
        log = os.path.join(args.work_dir, f'log_{builder}_{size}_{repeat}.txt')
        result = common.run_build(builder, size, sources_dir, data_dir, log_path=log)
        print(result, flush=True)
        if builder not in best or result['seconds'] < best[builder]['seconds']:
          best[builder] = result
    same = 'not checked'
    if not args.no_compare:
      count = common.compare_decoded(
          os.path.join(args.work_dir, f'data_ours_{size}'),
          os.path.join(args.work_dir, f'data_tfds_{size}'),
      )
      same = f'identical ({count} examples, same order)'
    ratio = best['ours']['examples_per_s'] / best['tfds']['examples_per_s']
    for builder in ('ours', 'tfds'):
      r = best[builder]
      lines.append(
          f"| {size}x{size} | {builder} | {r['examples']} | {r['seconds']} |"
          f" {r['examples_per_s']} | {r['peak_rss_mib']} | {r['peak_child_rss_mib']} |"
          f" {r['shard_bytes'] / 2**20:.1f} |"
          f" {f'{ratio:.2f}x' if builder == 'ours' else '1x'} | {same} |"
      )
  lines.append('')
  lines.append(f'Load average after: {common.load_average()}')
  table = '\n'.join(lines)
  print(table)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(table + '\n')


if __name__ == '__main__':
  main()
