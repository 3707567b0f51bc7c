"""Training input at memory speed: the arrays against what users would use.

For each size, on photo sources (`photo_sources.py`, needs the `bench`
extra), the dataset is built twice (tfrecord and array_record shards), then,
each in a fresh subprocess (own wall time, own peak memory):

  tf.data         as_dataset(shuffle_files=True, as_supervised=True), PNG
                  decode + scale to float32 in a parallel map (AUTOTUNE),
                  batch 256, prefetch: one epoch.
  tf.data cache   the same with .cache() after decoding: the second epoch.
  data_source     tfds.data_source over array_record, random batches of 256
                  indices, decoded and scaled to float32.
  export          imagenet_resized.arrays.load, the first call: the split
                  exported to .npy (decoded from the tfrecord shards).
  arrays          random batches of 256 from the memory-mapped arrays,
                  scaled to float32.
  arrays uint8    the same, unscaled (`scaled=False`: for pipelines that
                  normalise on the accelerator); not what the issue measures.

  python benchmarks/bench_arrays.py --sizes 32 64 --out /tmp/bench_arrays.md

prints a Markdown table (and writes it to --out if given). With `--real`,
at the real size instead (`photo_sources.real_layout`: 1,281,167 train
examples, the sources written once as `bench_real_size.py` writes them):
tf.data, the export and the arrays only (the cached epoch would hold the
split as float32 in memory, 15.7 GB at 32x32; the array_record build would
double the disk).

  python benchmarks/bench_arrays.py --real --sizes 32 --out /tmp/bench_arrays_real.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common

BATCH = 256
# Train examples per size (batches x rows); validation kept small.
LAYOUTS = {32: (5, 12_000, 1_000), 64: (3, 8_000, 1_000), 16: (5, 12_000, 1_000),
           8: (5, 12_000, 1_000)}


def _peak_rss_mib() -> float:
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) / 1024
  return 0.0


def _children_peak_mib() -> float:
  return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _builder(size: int, data_dir: str):
  import tensorflow_datasets as tfds

  import imagenet_resized  # noqa: F401  (registers this package's builder)

  return tfds.builder(f'imagenet_resized/{size}x{size}', data_dir=data_dir)


def _tf_data(size: int, data_dir: str, cache: bool) -> dict:
  import tensorflow as tf
  import tensorflow_datasets as tfds
  builder = _builder(size, data_dir)
  ds = builder.as_dataset(
      split='train', shuffle_files=True, as_supervised=True,
      decoders={'image': tfds.decode.SkipDecoding()},
  )

  def decode(png, label):
    image = tf.io.decode_png(png, channels=3)
    return tf.cast(image, tf.float32) / 255.0, label

  ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
  if cache:
    ds = ds.cache()
  ds = ds.batch(BATCH).prefetch(tf.data.AUTOTUNE)
  if cache:
    for _ in ds:  # First epoch fills the cache.
      pass
  start = time.perf_counter()
  n = 0
  for images, _ in ds:
    n += int(images.shape[0])
  return {'examples': n, 'seconds': time.perf_counter() - start}


def _data_source(size: int, data_dir: str, batches: int) -> dict:
  import numpy as np
  builder = _builder(size, data_dir)
  source = builder.as_data_source(split='train')
  rng = np.random.default_rng(0)
  start = time.perf_counter()
  for _ in range(batches):
    index = rng.integers(0, len(source), BATCH)
    examples = source.__getitems__(index.tolist())
    images = np.stack([e['image'] for e in examples]).astype(np.float32) / 255
    labels = np.array([e['label'] for e in examples])
    del images, labels
  return {'examples': batches * BATCH, 'seconds': time.perf_counter() - start}


def _export(size: int, data_dir: str) -> dict:
  """The first export: the arrays of an earlier run are removed first (not
  timed), so that nothing is replaced."""
  import shutil

  from imagenet_resized import arrays
  from imagenet_resized.array_files import array_location
  folder = array_location.folder_for(_builder(size, data_dir), 'train', None)
  shutil.rmtree(folder, ignore_errors=True)
  os.sync()  # The removal's and the build's writes, before the clock starts.
  start = time.perf_counter()
  found = arrays.load(f'{size}x{size}', 'train', data_dir=data_dir)
  seconds = time.perf_counter() - start
  return {'examples': len(found), 'seconds': seconds,
          'peak_rss_mib': _peak_rss_mib(),
          'workers_peak_rss_mib': _children_peak_mib()}


def _arrays(size: int, data_dir: str, batches: int, scaled: bool = True) -> dict:
  import numpy as np
  from imagenet_resized.array_files import array_views
  from imagenet_resized import arrays
  found = arrays.load(f'{size}x{size}', 'train', data_dir=data_dir)
  rng = np.random.default_rng(0)
  array_views.random_batch(found, rng, BATCH)  # Page the file in once.
  for _ in range(len(found) // BATCH):
    array_views.random_batch(found, rng, BATCH)
  start = time.perf_counter()
  for _ in range(batches):
    images, labels = array_views.random_batch(found, rng, BATCH, scaled)
    del images, labels
  return {'examples': batches * BATCH, 'seconds': time.perf_counter() - start}


def _build(size: int, sources: str, data_dir: str, file_format: str) -> dict:
  import tensorflow_datasets as tfds
  builder = _builder(size, data_dir)
  start = time.perf_counter()
  builder.download_and_prepare(
      file_format=file_format,
      download_config=tfds.download.DownloadConfig(manual_dir=sources),
  )
  return {'seconds': time.perf_counter() - start,
          'examples': builder.info.splits['train'].num_examples}


def child(args) -> None:
  task = args.task
  if task == 'build':
    out = _build(args.size, args.sources, args.data_dir, args.format)
  elif task == 'tfdata':
    out = _tf_data(args.size, args.data_dir, cache=False)
  elif task == 'tfdata_cache':
    out = _tf_data(args.size, args.data_dir, cache=True)
  elif task == 'data_source':
    out = _data_source(args.size, args.data_dir, args.batches)
  elif task == 'export':
    out = _export(args.size, args.data_dir)
  elif task == 'arrays':
    out = _arrays(args.size, args.data_dir, args.batches)
  elif task == 'arrays_uint8':
    out = _arrays(args.size, args.data_dir, args.batches, scaled=False)
  else:
    raise SystemExit(f'unknown task {task}')
  out.setdefault('peak_rss_mib', _peak_rss_mib())
  print(json.dumps(out))


def run_child(task: str, size: int, data_dir: str, **kwargs) -> dict:
  cmd = [sys.executable, os.path.abspath(__file__), 'child', task,
         '--size', str(size), '--data_dir', data_dir]
  for key, value in kwargs.items():
    cmd += [f'--{key}', str(value)]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=common.REPO)
  proc = subprocess.run(cmd, env=env, capture_output=True,
                        text=True, check=False)
  if proc.returncode:
    raise RuntimeError(f'{task} failed: {proc.stderr[-2000:]}')
  return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
  if len(sys.argv) > 1 and sys.argv[1] == 'child':
    parser = argparse.ArgumentParser()
    parser.add_argument('task')
    parser.add_argument('--size', type=int)
    parser.add_argument('--data_dir')
    parser.add_argument('--sources')
    parser.add_argument('--format')
    parser.add_argument('--batches', type=int)
    child(parser.parse_args(sys.argv[2:]))
    return
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--sizes', type=int, nargs='+', default=[32, 64])
  parser.add_argument('--work_dir', default=common.DEFAULT_WORK_DIR)
  parser.add_argument('--out', default=None)
  parser.add_argument('--real', action='store_true',
                      help='the real size: tf.data, export and arrays only')
  args = parser.parse_args()
  import photo_sources
  lines = [
      f'Machine: {common.machine()}; load average before: {common.load_average()}',
      '',
      '| size | train examples | reader | examples/s | x tf.data | peak RSS MiB |',
      '|---|---|---|---|---|---|',
  ]
  exports = []
  for size in args.sizes:
    if args.real:
      layout = photo_sources.real_layout()
    else:
      batches, per_batch, val = LAYOUTS[size]
      layout = photo_sources.Layout((per_batch,) * batches, val)
    sources = photo_sources.ensure_sources(args.work_dir, size, layout)
    dirs = {}
    for fmt in ('tfrecord',) if args.real else ('tfrecord', 'array_record'):
      name = f'arrays_real_{size}_{fmt}' if args.real else f'arrays_{size}_{fmt}'
      dirs[fmt] = os.path.join(args.work_dir, name)
      marker = os.path.join(dirs[fmt], '.complete')
      if not os.path.exists(marker):
        import shutil
        shutil.rmtree(dirs[fmt], ignore_errors=True)
        run_child('build', size, dirs[fmt], sources=sources, format=fmt)
        open(marker, 'w').close()
    results = {
        'tf.data (decode in parallel map)': run_child('tfdata', size, dirs['tfrecord']),
    }
    if not args.real:
      results['tf.data + cache (2nd epoch)'] = run_child(
          'tfdata_cache', size, dirs['tfrecord'])
      results['tfds.data_source, array_record'] = run_child(
          'data_source', size, dirs['array_record'], batches=40)
    export = run_child('export', size, dirs['tfrecord'])
    results['arrays (memory-mapped .npy)'] = run_child(
        'arrays', size, dirs['tfrecord'], batches=400)
    results['arrays, uint8 batches (scaled=False)'] = run_child(
        'arrays_uint8', size, dirs['tfrecord'], batches=400)
    base = results['tf.data (decode in parallel map)']
    base_rate = base['examples'] / base['seconds']
    train = sum(layout.train_rows)
    for name, r in results.items():
      rate = r['examples'] / r['seconds']
      lines.append(
          f'| {size}x{size} | {train:,} | {name} | {rate:,.0f} |'
          f' {rate / base_rate:.1f}x | {r["peak_rss_mib"]:.0f} |'
      )
    exports.append(
        f'| {size}x{size} | {train:,} | {export["seconds"]:.1f} s |'
        f' {train / export["seconds"]:,.0f} | {train / export["seconds"] / base_rate:.1f}x |'
        f' {export["peak_rss_mib"]:.0f} | {export["workers_peak_rss_mib"]:.0f} |'
    )
  lines += [
      '',
      '| size | train examples | export time | examples/s | x tf.data |'
      ' peak RSS MiB (main) | peak RSS MiB (largest worker) |',
      '|---|---|---|---|---|---|---|',
      *exports,
      '',
      f'Load average after: {common.load_average()}',
  ]
  text = '\n'.join(lines) + '\n'
  print(text)
  if args.out:
    with open(args.out, 'w') as f:
      f.write(text)


if __name__ == '__main__':
  main()
