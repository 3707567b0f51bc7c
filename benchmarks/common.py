"""Shared helpers for the benchmarks: fake sources, builds in subprocesses.

Every build runs in a fresh Python subprocess (`python benchmarks/common.py
build ...`) so that its wall time and peak memory are its own: TensorFlow
start-up, caches and freed-but-kept heap of one build do not leak into the
next one's figures. The child prints one JSON line with its measurements.

Builders:
  ours   imagenet_resized.Builder, sources given as its manual_dir.
  tfds   TFDS's own tensorflow_datasets.datasets.imagenet_resized Builder, its
         `download` pointed at the same local zips (by URL basename).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_WORK_DIR = os.path.join(
    os.environ.get('TMPDIR', '/tmp'), 'imagenet_resized_bench'
)


def ensure_sources(
    work_dir: str, size: int, train_batches: int, examples_per_batch: int,
    val_examples: int, seed: int = 0,
) -> str:
  """Writes (once) fake npz zips for one config; returns their folder."""
  if REPO not in sys.path:
    sys.path.insert(0, REPO)
  from imagenet_resized.tools import fake
  name = f'sources_{size}_{train_batches}x{examples_per_batch}_{val_examples}_s{seed}'
  out = os.path.join(work_dir, name)
  done = os.path.join(out, '.complete')
  if not os.path.exists(done):
    shutil.rmtree(out, ignore_errors=True)
    fake.write_sources(
        out, size, fmt='npz', train_batches=train_batches,
        examples_per_batch=examples_per_batch, val_examples=val_examples,
        seed=seed,
    )
    open(done, 'w').close()
  return out


def machine() -> str:
  """One line naming the machine a figure was measured on."""
  model = ''
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          model = line.split(':', 1)[1].strip()
          break
  except OSError:
    pass
  cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
  mem_gib = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
  return (
      f'{model or platform.processor()}, {cores} cores, {mem_gib:.0f} GiB,'
      f' Python {platform.python_version()}, {platform.system()}'
  )


def load_average() -> str:
  one, five, fifteen = os.getloadavg()
  return f'{one:.2f}, {five:.2f}, {fifteen:.2f}'


def run_build(
    builder: str, size: int, sources_dir: str, data_dir: str,
    beam_options: list[str] | None = None, log_path: str | None = None,
) -> dict:
  """Builds in a fresh subprocess; returns its JSON measurements."""
  shutil.rmtree(data_dir, ignore_errors=True)
  cmd = [
      sys.executable, os.path.abspath(__file__), 'build', '--builder', builder,
      '--size', str(size), '--sources', sources_dir, '--data_dir', data_dir,
  ]
  if beam_options:
    cmd += ['--beam_options', json.dumps(beam_options)]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=REPO)
  with open(log_path or os.devnull, 'w') as log:
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
        check=False,
    )
  if proc.returncode:
    raise RuntimeError(
        f'{builder} build failed (exit {proc.returncode}); see {log_path}'
    )
  return json.loads(proc.stdout.strip().splitlines()[-1])


def read_decoded(data_dir: str):
  """Yields (split, image, label) of a finished build, shard after shard.

  TFDS's default reader interleaves 16 examples from each of 16 shards, so
  builds cut into different numbers of shards (our PNGs and TF's differ in
  size) would read in different orders; one shard at a time, they do not.
  """
  import tensorflow_datasets as tfds
  (version_dir,) = {
      root for root, _, files in os.walk(data_dir) if 'dataset_info.json' in files
  }
  builder = tfds.builder_from_directory(version_dir)
  read_config = tfds.ReadConfig(interleave_cycle_length=1)
  for split in ('train', 'validation'):
    ds = builder.as_dataset(split=split, shuffle_files=False, read_config=read_config)
    for ex in tfds.as_numpy(ds.prefetch(1024)):
      yield split, ex['image'], int(ex['label'])


def compare_decoded(data_dir_a: str, data_dir_b: str) -> int:
  """Number of examples, after checking both builds decode identically."""
  import itertools
  import numpy as np
  count = 0
  for a, b in itertools.zip_longest(read_decoded(data_dir_a), read_decoded(data_dir_b)):
    if a is None or b is None:
      raise AssertionError(f'the builds differ in length after {count} examples')
    if a[0] != b[0] or a[2] != b[2] or not np.array_equal(a[1], b[1]):
      raise AssertionError(f'example {count} ({a[0]}) differs between the builds')
    count += 1
  return count


# ---------------------------------------------------------------------------
# The child: one build, measured.


def _build_ours(size: int, sources_dir: str, data_dir: str, beam_options):
  import tensorflow_datasets as tfds
  import imagenet_resized
  config = dict(manual_dir=sources_dir)
  if beam_options:
    from apache_beam.options import pipeline_options
    config['beam_options'] = pipeline_options.PipelineOptions(beam_options)
  builder = imagenet_resized.Builder(config=f'{size}x{size}', data_dir=data_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(**config))
  return builder


def _build_tfds(size: int, sources_dir: str, data_dir: str, beam_options):
  from unittest import mock
  import tensorflow_datasets as tfds
  from tensorflow_datasets.datasets.imagenet_resized import (
      imagenet_resized_dataset_builder as theirs,
  )
  if beam_options:
    raise ValueError("TFDS's imagenet_resized builder has no Beam path")

  def local_download(self, urls):
    del self
    return [os.path.join(sources_dir, os.path.basename(u)) for u in urls]

  builder = theirs.Builder(config=f'{size}x{size}', data_dir=data_dir)
  with mock.patch.object(tfds.download.DownloadManager, 'download', local_download):
    builder.download_and_prepare()
  return builder


def _peak_rss_kib() -> int:
  """This process's peak RSS since its exec (VmHWM).

  Not ru_maxrss: Linux carries that over from the forking parent across exec,
  so a child of a large benchmark driver would report the driver's size.
  """
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return int(line.split()[1])
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(args) -> None:
  beam_options = json.loads(args.beam_options) if args.beam_options else None
  build = {'ours': _build_ours, 'tfds': _build_tfds}[args.builder]
  # Importing TFDS and the builder module is timed apart. TFDS imports
  # TensorFlow lazily, during the build, so that (~3 s) stays in the timed
  # part for both builders: a conservative speed-up.
  start = time.perf_counter()
  import tensorflow_datasets  # noqa: F401
  if args.builder == 'ours':
    import imagenet_resized  # noqa: F401
  else:
    from tensorflow_datasets.datasets.imagenet_resized import (  # noqa: F401
        imagenet_resized_dataset_builder,
    )
  import_seconds = time.perf_counter() - start
  start = time.perf_counter()
  builder = build(args.size, args.sources, args.data_dir, beam_options)
  seconds = time.perf_counter() - start
  examples = sum(s.num_examples for s in builder.info.splits.values())
  kib = 1024  # ru_maxrss is in KiB on Linux.
  main_usage = resource.getrusage(resource.RUSAGE_SELF)
  children_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  print(json.dumps({
      'builder': args.builder,
      'size': args.size,
      'examples': examples,
      'seconds': round(seconds, 2),
      'import_seconds': round(import_seconds, 2),
      'examples_per_s': round(examples / seconds),
      'peak_rss_mib': round(_peak_rss_kib() / kib),
      # Largest child (encoding workers / Beam workers), if any.
      'peak_child_rss_mib': round(
          resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib
      ),
      'shard_bytes': sum(s.num_bytes for s in builder.info.splits.values()),
      # CPU seconds (user + system) of this process and of its finished
      # children (the PNG workers): where the time goes.
      'cpu_main_s': round(main_usage.ru_utime + main_usage.ru_stime, 2),
      'cpu_workers_s': round(children_usage.ru_utime + children_usage.ru_stime, 2),
  }))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  sub = parser.add_subparsers(dest='command', required=True)
  child = sub.add_parser('build', help='one measured build (used by the benchmarks)')
  child.add_argument('--builder', choices=('ours', 'tfds'), required=True)
  child.add_argument('--size', type=int, required=True)
  child.add_argument('--sources', required=True)
  child.add_argument('--data_dir', required=True)
  child.add_argument('--beam_options', default=None, help='JSON list of flags')
  _child(parser.parse_args())


if __name__ == '__main__':
  main()
