"""Where a build's CPU goes: py-spy over the build process and its workers.

Runs one build of ours (`common.py build`, a fresh subprocess) under py-spy
(`--subprocesses --nonblocking`, the `bench` extra), then sorts every sample
by process (the build process, or a worker) and by the job of the deepest
frame that says what is being done (the table `JOBS` below), and prints the
share of each job in each process as a Markdown table:

    python benchmarks/profile_build.py --size 32 --sources DIR --out profile.md

The sources are any folder of the authors' npz zips (`bench_real_size.py
--sources_only` writes the real size's layout). Samples are of running
threads only (CPU time, not waits).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common

# (job, substrings of a frame (function and file) that mean it), the most
# specific first: a sample counts for the first job one of its frames
# matches, frames read from the leaf up.
JOBS = (
    ('PNG encoding: filters', ('filtered_rows', 'choose_filters', 'scanlines')),
    ('PNG encoding: deflate', ('encode_pngs', 'zlib_compress')),
    ('PNG decoding', ('png_codec', 'png_decoding')),
    ('pixel sums', ('pixel_statistics',)),
    ('inflating the zip member (spool)', ('npz_spool',)),
    (
        'reading rows (npz, pickle)',
        ('npz_batches', 'pickle_batches', 'batch_chunks', 'zip_members'),
    ),
    (
        'pickling / unpickling across the pipe',
        ('connection.py', 'reduction.py', '_serve', 'parallel_streams'),
    ),
    ('feature encoding (TFDS)', ('encode_example',)),
    (
        'serializing examples',
        ('deterministic_serializer', 'example_serializer', 'example_wire'),
    ),
    ('hashing keys (TFDS)', ('hashing.py',)),
    (
        'shuffler: spill writes',
        (
            'LocalBucket.add',
            'add (tensorflow_datasets/core/shuffle',
            '_add_to_bucket',
            '_add_to_mem_buffer',
        ),
    ),
    (
        'shuffler: reading back and sorting',
        ('read_values', '_iter_buckets', '_iter_mem', 'shuffle.py'),
    ),
    (
        'writing shards',
        (
            'tfrecord_files',
            'tfrecord_files',
            'write_examples',
            'file_adapters',
        ),
    ),
    ('TFDS split writer loop', ('split_builder.py', 'writer.py')),
    (
        'our example generator',
        ('examples.py', 'imagenet_resized_dataset_builder'),
    ),
    ('importing modules', ('<frozen importlib', '_find_and_load')),
)


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


def profile(size: int, sources: str, work_dir: str, rate: int) -> dict:
  data_dir = os.path.join(work_dir, f'profile_{size}_data')
  shutil.rmtree(data_dir, ignore_errors=True)
  raw = os.path.join(work_dir, f'profile_{size}.txt')
  cmd = [
      shutil.which('py-spy')
      or os.path.join(os.path.dirname(sys.executable), 'py-spy'),
      'record',
      '--subprocesses',
      '--nonblocking',
      '--format',
      'raw',
      '--rate',
      str(rate),
      '--output',
      raw,
      '--',
      sys.executable,
      os.path.abspath(common.__file__),
      'build',
      '--builder',
      'ours',
      '--size',
      str(size),
      '--sources',
      sources,
      '--data_dir',
      data_dir,
  ]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=common.REPO)
  done = subprocess.run(
      cmd, cwd=common.REPO, env=env, capture_output=True, text=True, check=False
  )
  if done.returncode:
    raise RuntimeError(done.stderr[-3000:])
  shutil.rmtree(data_dir, ignore_errors=True)
  samples = collections.Counter()
  for frames, count in _records(raw):
    processes = [f for f in frames if f.startswith('process ')]
    kind = 'build process' if len(processes) == 1 else 'worker'
    samples[kind, job_of(frames[len(processes) :])] += count
  return samples


def table(samples: collections.Counter, rate: int) -> str:
  processes = ('build process', 'worker')
  totals = {
      p: sum(v for (q, _), v in samples.items() if q == p) for p in processes
  }
  jobs = sorted(
      {j for _, j in samples},
      key=lambda j: -sum(samples[p, j] for p in processes),
  )
  lines = [
      '| job | build process, CPU s | share | workers, CPU s | share |',
      '|---|---:|---:|---:|---:|',
  ]
  for job in jobs:
    cells = []
    for p in processes:
      n = samples[p, job]
      cells += [f'{n / rate:.1f}', f'{100 * n / max(1, totals[p]):.0f} %']
    lines.append(f'| {job} | ' + ' | '.join(cells) + ' |')
  lines.append(
      f'| all | {totals[processes[0]] / rate:.1f} | 100 % |'
      f' {totals[processes[1]] / rate:.1f} | 100 % |'
  )
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--size', type=int, required=True)
  parser.add_argument('--sources', required=True)
  parser.add_argument('--work_dir', default=tempfile.gettempdir())
  parser.add_argument(
      '--rate', type=int, default=50, help='samples per second and process'
  )
  parser.add_argument('--out', default=None)
  args = parser.parse_args()
  samples = profile(args.size, args.sources, args.work_dir, args.rate)
  text = (
      f'Machine: {common.machine()}\n'
      f'py-spy, {args.rate} samples/s per process, running threads only; {args.size}x{args.size},'
      f' sources {args.sources}\n\n' + table(samples, args.rate) + '\n'
  )
  print(text)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text)


if __name__ == '__main__':
  main()
