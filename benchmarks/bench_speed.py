"""Examples per second, shard bytes, peak memory: ours against TFDS's, side by side.

For each size, both builders build the same sources, each in its own fresh
subprocess, one after the other; then the two builds are read back and
compared example by example (decoded pixels, labels, order). Sources
(`--content`): `photos` (default), random crops of photographs box-resized to
SxS (`photo_sources.py`, needs the `bench` extra); `fake`, the smooth
pictures of `imagenet_resized.tools.fake`. Both in the authors' npz zips.

  python benchmarks/bench_speed.py --sizes 8 16 32 64 --batches 10 \
      --per_batch 10000 --val 10000

prints a Markdown table (and writes it to --out if given).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common


def ensure_sources(args, size: int) -> str:
  if args.content == 'fake':
    return common.ensure_sources(
        args.work_dir, size, args.batches, args.per_batch, args.val
    )
  import photo_sources
  layout = photo_sources.Layout((args.per_batch,) * args.batches, args.val)
  return photo_sources.ensure_sources(args.work_dir, size, layout)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--sizes', type=int, nargs='+', default=[8, 32, 64])
  parser.add_argument('--batches', type=int, default=10, help='train batches')
  parser.add_argument('--per_batch', type=int, default=10_000)
  parser.add_argument('--val', type=int, default=10_000)
  parser.add_argument('--repeats', type=int, default=1, help='runs of each builder, alternating')
  parser.add_argument('--content', choices=('photos', 'fake'), default='photos')
  parser.add_argument('--work_dir', default=common.DEFAULT_WORK_DIR)
  parser.add_argument('--no_compare', action='store_true', help='skip the decoded-output check')
  parser.add_argument('--out', default=None, help='also write the table here')
  args = parser.parse_args()

  lines = [
      f'Machine: {common.machine()}; load average before: {common.load_average()}',
      f'Sources: {args.content}, {args.batches} x {args.per_batch:,} train +'
      f' {args.val:,} validation examples per size',
      '',
      '| size | builder | examples | seconds | examples/s | speed-up |'
      ' CPU s, main + workers | shard bytes | bytes/example | bytes vs TFDS |'
      ' peak RSS main (MiB) | peak RSS largest child (MiB) | decoded output |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ]
  for size in args.sizes:
    sources_dir = ensure_sources(args, size)
    best = {}
    for repeat in range(args.repeats):
      for builder in ('ours', 'tfds'):
        data_dir = os.path.join(args.work_dir, f'data_{args.content}_{builder}_{size}')
        log = os.path.join(args.work_dir, f'log_{args.content}_{builder}_{size}_{repeat}.txt')
        result = common.run_build(builder, size, sources_dir, data_dir, log_path=log)
        print(result, flush=True)
        if builder not in best or result['seconds'] < best[builder]['seconds']:
          best[builder] = result
    same = 'not checked'
    if not args.no_compare:
      count = common.compare_decoded(
          os.path.join(args.work_dir, f'data_{args.content}_ours_{size}'),
          os.path.join(args.work_dir, f'data_{args.content}_tfds_{size}'),
      )
      same = f'identical ({count} examples, same order)'
    ratio = best['ours']['examples_per_s'] / best['tfds']['examples_per_s']
    byte_ratio = best['ours']['shard_bytes'] / best['tfds']['shard_bytes']
    for builder in ('ours', 'tfds'):
      r = best[builder]
      ours = builder == 'ours'
      lines.append(
          f"| {size}x{size} | {builder} | {r['examples']:,} | {r['seconds']} |"
          f" {r['examples_per_s']:,} | {f'**{ratio:.2f}x**' if ours else '1x'} |"
          f" {r['cpu_main_s']} + {r['cpu_workers_s']} |"
          f" {r['shard_bytes']:,} | {r['shard_bytes'] / r['examples']:,.0f} |"
          f" {f'**{100 * byte_ratio:.1f} %**' if ours else '100 %'} |"
          f" {r['peak_rss_mib']:,} | {r['peak_child_rss_mib']:,} |"
          f" {same if ours else ''} |"
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
