"""A build at the real size: 1,281,167 + 50,000 photo crops in the authors' layout.

Writes (once, cached in `--work_dir`) photo-crop sources of one size in the
authors' exact published layout and counts (`photo_sources.real_layout`: ten
train batches sharing 1,281,167 rows, `val_data` of 50,000; for 64x64 the
train batches split between `Imagenet64_train_part1_npz.zip` and
`..._part2_npz.zip`), then builds them with each builder in a fresh
subprocess (`common.py build`) while a sampler records, every second:

  memory   the sum of RSS and the sum of PSS over the build process and all
           its descendants (the PNG workers); RSS counts pages the forked
           workers share with their parent once per process, PSS splits them;
  temp     bytes of the regular files in $TMPDIR the process tree holds open
           (the inflated batches: unlinked temporary files, seen through
           /proc/PID/fd), the sources and the data dir excepted, plus TFDS's
           shuffle buckets (`bucket_*.tmp`) in the data dir;
  load     the 1-minute load average (other jobs share the machine).

    python benchmarks/bench_real_size.py --size 32 --builders ours tfds
    python benchmarks/bench_real_size.py --size 64 --builders ours --delete_sources

The 64x64 sources take ~16 GB of disk, 32x32 ~4 GB: check `df -h` first.
Prints one JSON line per build and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import psutil  # A dependency of tensorflow-datasets.

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common
import photo_sources

MIB = 2**20


def _tree(pid: int) -> list[psutil.Process]:
  try:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]
  except psutil.NoSuchProcess:
    return []


def _open_temp_bytes(
    procs: list[psutil.Process], tmp_dir: str, exclude: tuple[str, ...]
) -> int:
  """Bytes of the distinct regular files under tmp_dir the processes hold open,
  except those under `exclude` (the sources, read; the data dir, whose shards
  are the output and whose shuffle buckets are counted apart)."""
  seen, total = set(), 0
  for p in procs:
    fd_dir = f'/proc/{p.pid}/fd'
    try:
      fds = os.listdir(fd_dir)
    except OSError:
      continue
    for fd in fds:
      path = os.path.join(fd_dir, fd)
      try:
        target = os.readlink(path)
        if not target.startswith(tmp_dir + os.sep) or any(
            target.startswith(folder + os.sep) for folder in exclude
        ):
          continue
        st = os.stat(path)  # Follows the link: works for unlinked files too.
      except OSError:
        continue
      if (st.st_dev, st.st_ino) not in seen and os.path.isfile(path):
        seen.add((st.st_dev, st.st_ino))
        total += st.st_blocks * 512
  return total


def _bucket_bytes(data_dir: str) -> int:
  total = 0
  for root, _, files in os.walk(data_dir):
    for name in files:
      if name.startswith('bucket_') and name.endswith('.tmp'):
        try:
          total += os.stat(os.path.join(root, name)).st_blocks * 512
        except OSError:
          pass
  return total


class Sampler:
  """Samples a process tree's memory and temporary disk every `interval` s."""

  def __init__(
      self, pid: int, data_dir: str, tmp_dir: str, sources_dir: str,
      interval: float = 1.0,
  ):
    self.peak = {'rss_sum': 0, 'pss_sum': 0, 'temp_files': 0, 'buckets': 0, 'temp_total': 0}
    self.max_processes = 0
    self.load = []
    self._args = (pid, data_dir, tmp_dir, sources_dir)
    self._interval = interval
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()

  def _run(self):
    pid, data_dir, tmp_dir, sources_dir = self._args
    exclude = (os.path.realpath(data_dir), os.path.realpath(sources_dir))
    while not self._stop.wait(self._interval):
      procs = _tree(pid)
      rss = pss = 0
      for p in procs:
        try:
          info = p.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
          continue
        rss += info.rss
        pss += info.pss
      temp_files = _open_temp_bytes(procs, tmp_dir, exclude)
      buckets = _bucket_bytes(data_dir)
      sample = {
          'rss_sum': rss, 'pss_sum': pss, 'temp_files': temp_files,
          'buckets': buckets, 'temp_total': temp_files + buckets,
      }
      for k, v in sample.items():
        self.peak[k] = max(self.peak[k], v)
      self.max_processes = max(self.max_processes, len(procs))
      self.load.append(os.getloadavg()[0])


def measured_build(builder: str, size: int, sources_dir: str, data_dir: str, log_path: str) -> dict:
  shutil.rmtree(data_dir, ignore_errors=True)
  cmd = [
      sys.executable, os.path.abspath(common.__file__), 'build', '--builder',
      builder, '--size', str(size), '--sources', sources_dir, '--data_dir', data_dir,
  ]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=common.REPO)
  tmp_dir = os.path.realpath(tempfile.gettempdir())
  with open(log_path, 'w') as log:
    child = subprocess.Popen(
        cmd, cwd=common.REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True
    )
    with Sampler(child.pid, data_dir, tmp_dir, sources_dir) as sampler:
      out, _ = child.communicate()
  if child.returncode:
    raise RuntimeError(f'{builder} build failed (exit {child.returncode}); see {log_path}')
  result = json.loads(out.strip().splitlines()[-1])
  result.update({f'peak_{k}_mib': round(v / MIB) for k, v in sampler.peak.items()})
  result['max_processes'] = sampler.max_processes
  result['load_1min_mean'] = round(sum(sampler.load) / max(1, len(sampler.load)), 2)
  result['load_1min_max'] = round(max(sampler.load, default=0), 2)
  return result


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--size', type=int, required=True, choices=(8, 16, 32, 64))
  parser.add_argument('--builders', nargs='+', default=['ours', 'tfds'], choices=('ours', 'tfds'))
  parser.add_argument('--work_dir', default=common.DEFAULT_WORK_DIR)
  parser.add_argument('--compare', action='store_true',
                      help='check both builds decode alike (slow)')
  parser.add_argument('--keep_data', action='store_true', help='keep the built datasets')
  parser.add_argument('--delete_sources', action='store_true', help='delete the sources at the end')
  parser.add_argument('--sources_only', action='store_true',
                      help='write the sources, build nothing')
  args = parser.parse_args()

  layout = photo_sources.real_layout()
  start = time.perf_counter()
  sources_dir = photo_sources.ensure_sources(args.work_dir, args.size, layout)
  source_bytes = sum(
      os.path.getsize(os.path.join(sources_dir, n))
      for n in os.listdir(sources_dir) if n.endswith('.zip')
  )
  print(f'sources ({source_bytes / 2**30:.2f} GiB) ready in'
        f' {time.perf_counter() - start:.0f} s: {sources_dir}', flush=True)
  if args.sources_only:
    return
  print(f'machine: {common.machine()}; load average before: {common.load_average()}', flush=True)
  results = {}
  for builder in args.builders:
    data_dir = os.path.join(args.work_dir, f'real_{args.size}_data_{builder}')
    log_path = os.path.join(args.work_dir, f'real_{args.size}_{builder}.log')
    results[builder] = measured_build(builder, args.size, sources_dir, data_dir, log_path)
    print(json.dumps(results[builder]), flush=True)
    print(f'load average after {builder}: {common.load_average()}', flush=True)
  same = ''
  if args.compare and len(results) == 2:
    count = common.compare_decoded(
        os.path.join(args.work_dir, f'real_{args.size}_data_ours'),
        os.path.join(args.work_dir, f'real_{args.size}_data_tfds'),
    )
    same = f'identical ({count:,} examples, same order)'
    print(same, flush=True)
  if not args.keep_data:
    for builder in results:
      shutil.rmtree(os.path.join(args.work_dir, f'real_{args.size}_data_{builder}'),
                    ignore_errors=True)
  if args.delete_sources:
    shutil.rmtree(sources_dir, ignore_errors=True)

  print(f'\n{args.size}x{args.size}, {layout.examples:,} examples'
        f' ({sum(layout.train_rows):,} train in {len(layout.train_rows)} batches'
        f' + {layout.val_rows:,} validation), sources {source_bytes / 2**30:.2f} GiB\n')
  print('| builder | wall s | examples/s | speed-up | CPU s, main + workers |'
        ' peak PSS sum, tree (MiB) | peak RSS sum, tree (MiB) | peak RSS main (MiB) |'
        ' peak temp files (MiB) | peak shuffle buckets (MiB) | shard bytes | load (mean, max) |')
  print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
  tfds_rate = results.get('tfds', {}).get('examples_per_s')
  for builder, r in results.items():
    speed_up = f'{r["examples_per_s"] / tfds_rate:.2f}x' if tfds_rate else 'n/a'
    print(
        f'| {builder} | {r["seconds"]:,.0f} | {r["examples_per_s"]:,} | {speed_up} |'
        f' {r["cpu_main_s"]:,.1f} + {r["cpu_workers_s"]:,.1f} |'
        f' {r["peak_pss_sum_mib"]:,} | {r["peak_rss_sum_mib"]:,} | {r["peak_rss_mib"]:,} |'
        f' {r["peak_temp_files_mib"]:,} | {r["peak_buckets_mib"]:,} | {r["shard_bytes"]:,} |'
        f' {r["load_1min_mean"]}, {r["load_1min_max"]} |'
    )
  if same:
    print(f'\nDecoded output: {same}.')


if __name__ == '__main__':
  main()
