"""Where a build's CPU goes: py-spy over the build process and its workers.

Runs one build of ours (`common.py build`, a fresh subprocess) under py-spy
(`--subprocesses --nonblocking`, the `bench` extra), sorts every sample by
process (the build process, or a worker) and by the job of the deepest frame
that says what is being done (`JOBS`), and prints each job's share of each
process's samples, and that share of the process's CPU time as the build
measured it (getrusage):

    python benchmarks/profile_build.py --size 32 --sources DIR --out profile.md

The sources are any folder of the authors' npz zips (`bench_real_size.py
--sources_only` writes the real size's layout). py-spy samples a thread that
is not waiting in a system call, so a process that is ready to run but has
no core counts too: shares within a process are what they are; CPU seconds
come from getrusage, not from sample counts.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common

# (job, marks): a sample counts for the job of the first frame, from the
# leaf up, that holds one of its marks (function and file names).
JOBS = (
    ('PNG encoding: row filters', ('filtered_rows', 'choose_filters', 'scanlines')),
    ('PNG encoding: deflate and chunks', ('encode_pngs', 'zlib_compress', 'png_codec')),
    ('PNG decoding', ('png_decoding',)),
    ('pixel sums', ('pixel_statistics',)),
    ('inflating the zip member', ('npz_spool', 'zip_members', 'zipfile')),
    ('reading rows', ('npz_batches', 'pickle_batches', 'batch_chunks')),
    ('messages between processes', ('connection.py', 'reduction.py', '_serve', 'parallel_streams')),
    ('feature encoding (TFDS)', ('encode_example',)),
    ('serializing examples', ('deterministic_serializer', 'example_serializer', 'example_wire')),
    ('hashing keys (TFDS)', ('hashing.py',)),
    ('shuffler: spill writes', ('LocalBucket.add', '_add_to_bucket', '_add_to_mem_buffer')),
    ('shuffler: reading back', ('read_values', '_iter_buckets', '_iter_mem', 'shuffle.py')),
    ('writing shards', ('tfrecord_files', 'tfrecord_writer', 'write_examples', 'file_adapters')),
    ('TFDS split writer loop', ('core/split_builder.py', 'core/writer.py')),
    ('our example generator', ('examples.py', 'imagenet_resized_dataset_builder')),
    ('importing modules', ('<frozen importlib', '_find_and_load')),
)
PROCESSES = ('build process', 'workers')


def job_of(frames: list[str]) -> str:
  for frame in reversed(frames):
    for job, marks in JOBS:
      if any(mark in frame for mark in marks):
        return job
  return 'other'


def _records(raw: str):
  """(frames, count) of py-spy's raw output; a process frame (`process PID:
  "command line"`) may hold newlines (the workers' `python -c` code)."""
  with open(raw) as f:
    text = f.read()
  record = []
  for line in text.split('\n'):
    record.append(line)
    joined = '\n'.join(record)
    stack, _, count = joined.rpartition(' ')
    if joined.count('"') % 2 == 0 and count.isdigit():
      yield stack.split(';'), int(count)
      record = []


def profile(size: int, sources: str, work_dir: str, rate: int):
  """(samples by (process, job), the build's own measurements)."""
  data_dir = os.path.join(work_dir, f'profile_{size}_data')
  shutil.rmtree(data_dir, ignore_errors=True)
  raw = os.path.join(work_dir, f'profile_{size}.txt')
  py_spy = shutil.which('py-spy') or os.path.join(os.path.dirname(sys.executable), 'py-spy')
  cmd = [
      py_spy, 'record', '--subprocesses', '--nonblocking', '--format', 'raw',
      '--rate', str(rate), '--output', raw, '--',
      sys.executable, os.path.abspath(common.__file__), 'build', '--builder', 'ours',
      '--size', str(size), '--sources', sources, '--data_dir', data_dir,
  ]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=common.REPO)
  done = subprocess.run(cmd, cwd=common.REPO, env=env, capture_output=True, text=True, check=False)
  if done.returncode:
    raise RuntimeError(done.stderr[-3000:])
  shutil.rmtree(data_dir, ignore_errors=True)
  measured = json.loads([x for x in done.stdout.splitlines() if x.startswith('{')][-1])
  samples = collections.Counter()
  for frames, count in _records(raw):
    processes = [f for f in frames if f.startswith('process ')]
    kind = PROCESSES[0] if len(processes) == 1 else PROCESSES[1]
    samples[kind, job_of(frames[len(processes):])] += count
  return samples, measured


def table(samples: collections.Counter, measured: dict) -> str:
  cpu = {PROCESSES[0]: measured['cpu_main_s'], PROCESSES[1]: measured['cpu_workers_s']}
  totals = {p: sum(v for (q, _), v in samples.items() if q == p) for p in PROCESSES}
  jobs = sorted({j for _, j in samples}, key=lambda j: -sum(
      cpu[p] * samples[p, j] / max(1, totals[p]) for p in PROCESSES))
  n = measured['examples']
  lines = [
      '| job | build process: share, CPU s | workers: share, CPU s | us per example |',
      '|---|---:|---:|---:|',
  ]
  for job in jobs:
    cells, seconds = [], 0.0
    for p in PROCESSES:
      share = samples[p, job] / max(1, totals[p])
      seconds += share * cpu[p]
      cells.append(f'{100 * share:.0f} %, {share * cpu[p]:.1f}')
    lines.append(f'| {job} | {cells[0]} | {cells[1]} | {1e6 * seconds / n:.1f} |')
  lines.append(
      f'| all | 100 %, {cpu[PROCESSES[0]]:.1f} | 100 %, {cpu[PROCESSES[1]]:.1f} |'
      f' {1e6 * sum(cpu.values()) / n:.1f} |'
  )
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--size', type=int, required=True)
  parser.add_argument('--sources', required=True)
  parser.add_argument('--work_dir', default=tempfile.gettempdir())
  parser.add_argument('--rate', type=int, default=50, help='samples per second and process')
  parser.add_argument('--out', default=None)
  args = parser.parse_args()
  samples, measured = profile(args.size, args.sources, args.work_dir, args.rate)
  text = (
      f'Machine: {common.machine()}; load average before: {common.load_average()}\n'
      f'{args.size}x{args.size}, {measured["examples"]:,} examples in'
      f' {measured["seconds"]:.1f} s under py-spy ({args.rate} samples/s per process);'
      f' CPU from getrusage\n\n' + table(samples, measured) + '\n'
  )
  print(text)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text)


if __name__ == '__main__':
  main()
