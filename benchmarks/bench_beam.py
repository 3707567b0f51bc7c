"""Our builder on Apache Beam's DirectRunner against its generator path.

Builds the same fake sources twice, each in a fresh subprocess: once with the
plain generator (forked PNG workers), once with Beam options (DirectRunner,
multi-processing, N workers); reports examples/s and peak memory, and checks
that both builds wrote byte-identical shards.

  python benchmarks/bench_beam.py --size 32 --batches 10 --per_batch 5000 \
      --val 5000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common


def _shards(data_dir: str) -> dict[str, bytes]:
  out = {}
  for root, _, files in os.walk(data_dir):
    for name in files:
      if '.tfrecord-' in name:
        with open(os.path.join(root, name), 'rb') as f:
          out[name] = f.read()
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--size', type=int, default=32)
  parser.add_argument('--batches', type=int, default=10)
  parser.add_argument('--per_batch', type=int, default=5_000)
  parser.add_argument('--val', type=int, default=5_000)
  parser.add_argument('--workers', type=int, default=2)
  parser.add_argument('--work_dir', default=common.DEFAULT_WORK_DIR)
  parser.add_argument('--out', default=None)
  args = parser.parse_args()

  size = args.size
  sources_dir = common.ensure_sources(
      args.work_dir, size, args.batches, args.per_batch, args.val
  )
  beam_options = [
      '--runner=DirectRunner',
      f'--direct_num_workers={args.workers}',
      '--direct_running_mode=multi_processing',
  ]
  runs = {}
  for name, options in (('generator', None), ('beam', beam_options)):
    data_dir = os.path.join(args.work_dir, f'data_{name}_{size}')
    log = os.path.join(args.work_dir, f'log_{name}_{size}.txt')
    runs[name] = common.run_build('ours', size, sources_dir, data_dir, options, log)
    runs[name]['data_dir'] = data_dir
    print(name, runs[name], flush=True)
  same = _shards(runs['generator']['data_dir']) == _shards(runs['beam']['data_dir'])
  lines = [
      f'Machine: {common.machine()}; load average after: {common.load_average()}',
      '',
      '| path | examples | seconds | examples/s | peak RSS main (MiB) |'
      ' peak RSS largest child (MiB) |',
      '|---|---|---|---|---|---|',
  ]
  for name, label in (
      ('generator', 'generator (forked PNG workers)'),
      ('beam', f'Beam DirectRunner, multi_processing, {args.workers} workers'),
  ):
    r = runs[name]
    lines.append(
        f"| {label} | {r['examples']} | {r['seconds']} | {r['examples_per_s']} |"
        f" {r['peak_rss_mib']} | {r['peak_child_rss_mib']} |"
    )
  lines += ['', f'Shards byte-identical between the two paths: {same}']
  table = '\n'.join(lines)
  print(table)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(table + '\n')
  if not same:
    sys.exit('the Beam and generator builds wrote different shards')


if __name__ == '__main__':
  main()
