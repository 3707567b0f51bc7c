"""Peak memory and time of reading one published-size batch, in each form.

Writes (once, in --work_dir) one batch of 128,123 rows (the largest published
batch) of random pixels at each --sizes, in the forms the authors' batches
come in and the forms other writers give:

  npz zip     train_data_batch_1.npz, deflated in a zip (inflated to a
              temporary file, then streamed);
  py2 p0      Python 2's default pickle (pixels as an escaped STRING);
  py2 p2      Python 2's highest protocol (pixels as BINSTRING);
  py3 p2      Python 3 at protocol 2 (pixels as _codecs.encode of UTF-8 text);
  py3 p4      Python 3 at protocol 4 (pixels as BINBYTES8, labels an array);

and reads each in a fresh process through `batch_files.Batch` (as the build
does, without TFDS), with this checkout's readers and, with --other, with
another checkout's (e.g. `git archive main`). Prints a markdown table of
wall time and peak resident memory (VmHWM) per read.

    python benchmarks/bench_batch_readers.py --sizes 8 32 --other /tmp/main
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = 128_123
FORMS = ('npz zip', 'py2 p0', 'py2 p2', 'py3 p2', 'py3 p4')

_CHILD = r'''
import json, sys, time
sys.path.insert(0, {root!r})
from imagenet_resized.authors import batch_files
batch = batch_files.Batch({path!r}, {member!r}, 'b', {is_npz!r})
start = time.perf_counter()
rows = sum(len(c.images) for c in batch.chunks({size}))
seconds = time.perf_counter() - start
with open('/proc/self/status') as f:
  peak = int(next(l for l in f if l.startswith('VmHWM')).split()[1]) // 1024
print(json.dumps({{'rows': rows, 'seconds': seconds, 'peak_mib': peak}}))
'''


def write_batch(work_dir: str, size: int, form: str) -> tuple[str, str | None]:
  """Writes (once) the batch in `form`; returns (path, zip member or None)."""
  sys.path.insert(0, REPO)
  from imagenet_resized.tools import fake
  name = f'batch_{size}_{form.replace(" ", "_")}'
  path = os.path.join(work_dir, name + ('.zip' if form == 'npz zip' else ''))
  member = 'train_data_batch_1.npz' if form == 'npz zip' else None
  if os.path.exists(path):
    return path, member
  rng = np.random.default_rng(size)
  batch = {
      'data': rng.integers(0, 256, (ROWS, 3 * size * size), dtype=np.uint8),
      'labels': rng.integers(1, 1001, ROWS),
  }
  batch['mean'] = batch['data'].mean(axis=0)
  kind, _, protocol = form.partition(' ')
  if kind == 'npz':
    npz = os.path.join(work_dir, member)
    fake.write_npz(npz, batch)
    with open(npz, 'rb') as f:
      fake.write_zip(path + '.tmp', [(member, f.read())])
    os.remove(npz)
  else:
    if kind == 'py2':
      data = fake.py2_pickle_bytes(batch, int(protocol[1:]))
    else:
      labels = batch['labels'] if protocol == 'p4' else batch['labels'].tolist()
      data = pickle.dumps({**batch, 'labels': labels}, protocol=int(protocol[1:]))
    with open(path + '.tmp', 'wb') as f:
      f.write(data)
  os.replace(path + '.tmp', path)
  return path, member


def read(root: str, path: str, member: str | None, size: int) -> dict:
  script = _CHILD.format(
      root=root, path=path, member=member, is_npz=member is not None, size=size
  )
  proc = subprocess.run(
      [sys.executable, '-c', script], capture_output=True, text=True, check=False
  )
  if proc.returncode:
    return {'error': proc.stderr.strip().splitlines()[-1][:120]}
  return json.loads(proc.stdout)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sizes', type=int, nargs='+', default=[8, 32])
  parser.add_argument('--forms', nargs='+', default=list(FORMS))
  parser.add_argument('--other', help='root of another checkout to compare')
  parser.add_argument('--work_dir', default=os.path.join(
      os.environ.get('TMPDIR', '/tmp'), 'imagenet_resized_bench_readers'))
  args = parser.parse_args()
  os.makedirs(args.work_dir, exist_ok=True)
  roots = [('this checkout', REPO)] + ([('other', args.other)] if args.other else [])
  print(f'load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}')
  print('| size | form | file MB | ' + ' | '.join(
      f'{name} s | {name} peak MiB' for name, _ in roots) + ' |')
  print('|---' * (3 + 2 * len(roots)) + '|')
  for size in args.sizes:
    for form in args.forms:
      path, member = write_batch(args.work_dir, size, form)
      cells = []
      for _, root in roots:
        r = read(root, path, member, size)
        if 'error' in r:
          cells += [r['error'], '']
        else:
          assert r['rows'] == ROWS, r
          cells += [f'{r["seconds"]:.2f}', str(r['peak_mib'])]
      mb = os.path.getsize(path) / 1e6
      print(f'| {size}x{size} | {form} | {mb:.0f} | ' + ' | '.join(cells) + ' |', flush=True)


if __name__ == '__main__':
  main()
