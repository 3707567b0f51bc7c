"""Peak memory of a 64x64 build whose train batch is large: ours vs TFDS's.

Writes (once, cached in `--work_dir`) fake 64x64 sources in the authors'
layout whose first train batch holds `--rows` rows (60,000 rows are about
740 MB of pixels), in both published forms:

  npz     Imagenet64_train_part1_npz.zip holding
          Imagenet64_train_part1_npz/train_data_batch_1.npz (the big batch),
          Imagenet64_train_part2_npz.zip holding a small train_data_batch_2.npz,
          Imagenet64_val_npz.zip holding a small val_data.npz;
  pickle  the same batches as the authors' Python-2 pickles, in
          Imagenet64_train_part1.zip, Imagenet64_train_part2.zip,
          Imagenet64_val.zip.

The zips are deflated, as the authors' are, so our reader streams the npy
inside the npz inside a compressed zip member. Then it builds, each in a fresh
subprocess (`benchmarks/common.py build`):

  ours/npz     imagenet_resized.Builder from the npz zips (streams rows);
  tfds/npz     TFDS's own imagenet_resized Builder on the same npz zips;
  ours/pickle  imagenet_resized.Builder from the pickle zips (a pickle
               cannot be streamed: the batch is loaded whole).

and reports for each: the peak resident memory of the building process
(`ru_maxrss`, TensorFlow included), the peak of its largest child (the forked
PNG workers: their RSS counts the pages they share with the parent, so it is
not additive), and the peak total PSS of the whole process tree sampled every
0.1 s (shared pages split between the processes sharing them: the memory the
build really occupies). The benchmark's own process stays small (it writes
the sources in a subprocess and never imports TensorFlow): Linux carries a
parent's resident size at fork/exec into its child's `ru_maxrss`. It also
checks that ours/npz and tfds/npz decode to the same examples, in the same
order.

    python benchmarks/bench_memory.py --rows 60000
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

import numpy as np
import psutil  # A dependency of tensorflow-datasets.

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common
from imagenet_resized.tools import fake

SIZE = 64
SMALL_ROWS = 256  # Rows of the other train batch and of the validation batch.
TARGET_MIB = 1200
MIB = 2**20


# ---------------------------------------------------------------------------
# Sources.


def _write_zip(path: str, members: list[tuple[str, str]]) -> None:
  """A deflated zip of (member name, file on disk), streamed from disk."""
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
    for name, file_path in members:
      zf.write(file_path, name)


def add_grain(data: np.ndarray, rng: np.random.Generator) -> None:
  """Adds uniform noise in -8..8 to every pixel value, in place, in chunks.

  fake.py's pictures PNG-encode to about 1 KB at 64x64; with this grain they
  take about 10 KB, like ImageNet's photos, so TFDS's shuffler holds as many
  bytes per example as in a real build.
  """
  for start in range(0, len(data), 4096):
    rows = data[start : start + 4096].astype(np.int16)
    rows += rng.integers(-8, 9, size=rows.shape, dtype=np.int16)
    data[start : start + 4096] = np.clip(rows, 0, 255)


def source_folders(
    work_dir: str, rows: int, texture: str, seed: int = 0
) -> dict[str, str]:
  """{'npz': folder, 'pickle': folder} of the cached sources."""
  out = os.path.join(work_dir, f'memory_{SIZE}_{rows}_{texture}_s{seed}')
  return {fmt: os.path.join(out, fmt) for fmt in ('npz', 'pickle')}


def ensure_sources(work_dir: str, rows: int, texture: str) -> dict[str, str]:
  """Writes (once) both forms in a subprocess, so this process stays small."""
  folders = source_folders(work_dir, rows, texture)
  if not os.path.exists(os.path.join(os.path.dirname(folders['npz']), '.complete')):
    subprocess.run(
        [sys.executable, os.path.abspath(__file__), '--rows', str(rows),
         '--work_dir', work_dir, '--texture', texture, '--write_sources_only'],
        check=True,
    )
  return folders


def write_sources(work_dir: str, rows: int, texture: str, seed: int = 0) -> None:
  """Writes both forms of the sources (about 3 GB of memory for 60,000 rows)."""
  folders = source_folders(work_dir, rows, texture, seed)
  out = os.path.dirname(folders['npz'])
  done = os.path.join(out, '.complete')
  shutil.rmtree(out, ignore_errors=True)
  rng = np.random.default_rng([seed, SIZE, rows])
  batches = {
      'train_data_batch_1': fake.make_batch(rng, rows, SIZE),
      'train_data_batch_2': fake.make_batch(rng, SMALL_ROWS, SIZE),
      'val_data': fake.make_batch(rng, SMALL_ROWS, SIZE),
  }
  for name, batch in batches.items():
    if texture == 'grain':
      add_grain(batch['data'], rng)
    if name != 'val_data':  # The authors' train batches carry a mean image.
      batch['mean'] = batch['data'].mean(axis=0, dtype=np.float64)
  zips = {
      'train_data_batch_1': 'Imagenet64_train_part1',
      'train_data_batch_2': 'Imagenet64_train_part2',
      'val_data': 'Imagenet64_val',
  }
  staging = os.path.join(out, 'staging')
  os.makedirs(staging)
  for fmt, folder in folders.items():
    os.makedirs(folder)
    for name, batch in batches.items():
      suffix = '.npz' if fmt == 'npz' else ''
      member = name + suffix
      staged = os.path.join(staging, member)
      if fmt == 'npz':
        fake.write_npz(staged, batch)
      else:
        with open(staged, 'wb') as f:
          f.write(fake.py2_pickle_bytes(batch))
      archive = zips[name] + ('_npz' if fmt == 'npz' else '')
      # Train members sit in a folder of their zip, as in the authors' zips.
      in_zip = member if name == 'val_data' else f'{archive}/{member}'
      _write_zip(os.path.join(folder, archive + '.zip'), [(in_zip, staged)])
      os.remove(staged)
  os.rmdir(staging)
  open(done, 'w').close()


# ---------------------------------------------------------------------------
# Measuring a build.


def _tree_pss(proc: psutil.Process) -> int:
  """PSS in bytes of a process and all its descendants (0 once gone)."""
  total = 0
  for p in [proc, *proc.children(recursive=True)]:
    try:
      total += p.memory_full_info().pss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
      pass
  return total


def measured_build(
    builder: str, sources_dir: str, data_dir: str, log_path: str
) -> dict:
  """One build in a fresh subprocess, its tree's PSS sampled meanwhile."""
  shutil.rmtree(data_dir, ignore_errors=True)
  cmd = [
      sys.executable, os.path.abspath(common.__file__), 'build', '--builder',
      builder, '--size', str(SIZE), '--sources', sources_dir, '--data_dir',
      data_dir,
  ]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=common.REPO)
  peak_pss = 0
  with open(log_path, 'w') as log:
    child = subprocess.Popen(
        cmd, cwd=common.REPO, env=env, stdout=subprocess.PIPE, stderr=log,
        text=True,
    )
    stop = threading.Event()

    def sample():
      nonlocal peak_pss
      proc = psutil.Process(child.pid)
      while not stop.wait(0.1):
        peak_pss = max(peak_pss, _tree_pss(proc))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    stop.set()
    sampler.join()
  if child.returncode:
    raise RuntimeError(f'{builder} build failed (exit {child.returncode}); see {log_path}')
  result = json.loads(out.strip().splitlines()[-1])
  result['peak_tree_pss_mib'] = round(peak_pss / MIB)
  return result


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--rows', type=int, default=60_000)
  parser.add_argument('--work_dir', default=common.DEFAULT_WORK_DIR)
  parser.add_argument(
      '--runs', default='ours/npz,tfds/npz,ours/pickle',
      help='comma-separated builder/form pairs to run',
  )
  parser.add_argument(
      '--no_compare', action='store_true',
      help='skip checking that ours/npz and tfds/npz decode alike',
  )
  parser.add_argument(
      '--texture', choices=('fake', 'grain'), default='fake',
      help="fake: fake.py's pictures as they are (PNGs of ~1 KB); grain: with"
      ' noise added, so PNGs take ~10 KB as ImageNet photos do',
  )
  parser.add_argument('--write_sources_only', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--compare', nargs=2, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.compare:
    print(common.compare_decoded(*args.compare))
    return
  os.makedirs(args.work_dir, exist_ok=True)
  if args.write_sources_only:
    write_sources(args.work_dir, args.rows, args.texture)
    return
  start = time.perf_counter()
  folders = ensure_sources(args.work_dir, args.rows, args.texture)
  print(f'sources ready in {time.perf_counter() - start:.0f} s: {folders}')
  batch_mib = args.rows * 3 * SIZE * SIZE / MIB
  print(
      f'machine: {common.machine()}; load average before:'
      f' {common.load_average()}'
  )
  print(', '.join(
      f'{p} {importlib.metadata.version(p)}'
      for p in ('tensorflow', 'tensorflow-datasets', 'numpy', 'pillow')
  ))
  tmp = tempfile.mkdtemp(prefix='bench_memory_', dir=args.work_dir)
  data_dirs = {}
  rows = []
  for run in args.runs.split(','):
    builder, fmt = run.split('/')
    data_dirs[run] = os.path.join(tmp, run.replace('/', '_'))
    log_path = os.path.join(args.work_dir, f'memory_{builder}_{fmt}_{args.texture}.log')
    r = measured_build(builder, folders[fmt], data_dirs[run], log_path)
    print(f'{run}: {json.dumps(r)}', flush=True)
    rows.append((run, r))
  same = ''
  if not args.no_compare and {'ours/npz', 'tfds/npz'} <= set(data_dirs):
    # In a subprocess too: it reads with TensorFlow.
    subprocess.run(
        [sys.executable, os.path.abspath(__file__), '--compare',
         data_dirs['ours/npz'], data_dirs['tfds/npz']],
        check=True, stderr=subprocess.DEVNULL,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=common.REPO),
    )
    same = 'ours/npz and tfds/npz decode to the same examples, in the same order.'
  print(f'load average after: {common.load_average()}')
  shutil.rmtree(tmp, ignore_errors=True)

  print(
      f'\n64x64, train_data_batch_1 of {args.rows:,} rows ({batch_mib:,.0f} MiB'
      f' of pixels) + {SMALL_ROWS} + {SMALL_ROWS} rows, texture {args.texture};'
      f' target: under {TARGET_MIB} MiB resident for the building process.\n'
  )
  print('| build | form | examples | PNG bytes/image | wall s | peak RSS, building process (MiB) |'
        ' peak RSS, largest child (MiB) | peak PSS, whole process tree (MiB) |')
  print('|---|---|---:|---:|---:|---:|---:|---:|')
  for run, r in rows:
    builder, fmt = run.split('/')
    name = 'imagenet_resized (ours)' if builder == 'ours' else "TFDS's imagenet_resized"
    print(
        f'| {name} | {fmt} zips | {r["examples"]:,} |'
        f' {r["shard_bytes"] / r["examples"]:,.0f} | {r["seconds"]:.0f} |'
        f' {r["peak_rss_mib"]:,} | {r["peak_child_rss_mib"]:,} |'
        f' {r["peak_tree_pss_mib"]:,} |'
    )
  if same:
    print(f'\n{same}')


if __name__ == '__main__':
  main()
