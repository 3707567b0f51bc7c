"""Peak memory of reading zip members that inflate past what they declare,
for every compression method, with two versions of the readers side by side.

Writes (once, cached in `--work_dir`) one 8x8 validation batch per case,
crafted byte by byte (`tests/crafted.py`), whose .npy header declares ONE
row, and whose compressed stream inflates `--bomb_mib` MiB more:

  deflate npz member   Imagenet8_val_npz.zip:val_data.npz deflated, its
                       data.npy's zip header giving the bomb's size (the
                       case the readers bounded already);
  bzip2 npz member     the same, the npz member compressed with bzip2;
  bzip2 array          val_data.npz (extracted) whose data.npy is compressed
                       with bzip2, one row declared by both its headers, the
                       stream holding the bomb after it;
  lzma array           the same with LZMA;
  deflate64 array      data.npy declaring deflate64 (zipfile cannot read it).

Each is read in a fresh process (`batch_files.Batch.chunks`, as the build reads
it) with the readers found at each `--readers` root (this checkout by
default; give an export of an older commit to compare: `git archive COMMIT |
tar -x -C /tmp/old`), under an address-space limit of `--limit_gib` GiB so
that an unbounded reader fails instead of taking the machine. Reports the
outcome (rows read, or the error, folders left out) and the process's
peak resident memory (VmHWM), as a Markdown table.

    python benchmarks/bench_zip_bombs.py --readers /tmp/old . --bomb_mib 1024
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, 'tests')]

import crafted  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
from crafted import Member, Zeros  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

SIZE = 8
ROW = 3 * SIZE * SIZE

_CHILD = r'''
import json, resource, sys
limit = {limit}
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.path.insert(0, {readers!r})
from imagenet_resized.authors import batch_files
result = {{'rows': 0, 'error': None}}
try:
  batch = batch_files.Batch({path!r}, {member!r}, {member!r} or {path!r}, True)
  for chunk in batch.chunks({size}):
    result['rows'] += len(chunk.images)
except BaseException as e:
  result['error'] = (type(e).__name__ + ': ' + str(e))[:400]
with open('/proc/self/status') as f:
  result['peak_mib'] = int(next(l for l in f if l.startswith('VmHWM')).split()[1]) // 1024
print(json.dumps(result))
'''


def _members(bomb: int) -> list[Member]:
  """data.npy of one row whose zip header declares `bomb` bytes more."""
  data = crafted.npy('|u1', (1, ROW), bytes(ROW))
  labels = crafted.npy('<i8', (1,), (1).to_bytes(8, 'little'))
  return [Member('data.npy', (data, Zeros(bomb))), Member('labels.npy', (labels,))]


def _array_members(method: int, bomb: int) -> list[Member]:
  """data.npy of one row, both headers honest, its stream `bomb` bytes more."""
  data = crafted.npy('|u1', (1, ROW), bytes(ROW))
  labels = crafted.npy('<i8', (1,), (1).to_bytes(8, 'little'))
  return [
      Member('data.npy', (data, Zeros(bomb)), method=method, declared=len(data)),
      Member('labels.npy', (labels,)),
  ]


def _write(path: str, parts) -> None:
  with open(path + '.tmp', 'wb') as f:
    for part in parts:
      f.write(bytes(part.count) if isinstance(part, Zeros) else part)
  os.replace(path + '.tmp', path)


def cases(work_dir: str, bomb: int) -> list[tuple[str, str, str | None]]:
  """(name, path, member) of each case, written if not there yet."""
  out = []
  for name, method in (('deflate npz member', crafted.DEFLATE),
                       ('bzip2 npz member', crafted.BZIP2)):
    folder = os.path.join(work_dir, name.replace(' ', '_'))
    path = os.path.join(folder, 'Imagenet8_val_npz.zip')
    if not os.path.exists(path):
      os.makedirs(folder, exist_ok=True)
      inner = tuple(crafted.zip_parts(_members(bomb)))
      _write(path, crafted.zip_parts([Member('val_data.npz', inner, method=method)]))
    out.append((name, path, 'val_data.npz'))
  for name, method in (('bzip2 array', crafted.BZIP2), ('lzma array', crafted.LZMA),
                       ('deflate64 array', 9)):
    folder = os.path.join(work_dir, name.replace(' ', '_'))
    path = os.path.join(folder, 'val_data.npz')
    if not os.path.exists(path):
      os.makedirs(folder, exist_ok=True)
      _write(path, crafted.zip_parts(_array_members(method, bomb if method != 9 else 0)))
    out.append((name, path, None))
  return out


def measure(readers: str, path: str, member: str | None, limit: int) -> dict:
  script = _CHILD.format(
      limit=limit, readers=os.path.abspath(readers), path=path, member=member,
      size=SIZE,
  )
  proc = subprocess.run(
      [sys.executable, '-c', script], capture_output=True, text=True, check=False,
  )
  if proc.returncode != 0:
    return {'rows': 0, 'error': f'died ({proc.returncode}): {proc.stderr[-150:]}', 'peak_mib': None}
  return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--readers', nargs='+', default=[REPO])
  parser.add_argument('--bomb_mib', type=int, default=1024)
  parser.add_argument('--limit_gib', type=float, default=8)
  parser.add_argument('--work_dir', default='/tmp/bench_zip_bombs')
  args = parser.parse_args(argv)
  work_dir = os.path.join(args.work_dir, f'{args.bomb_mib}mib')
  limit = int(args.limit_gib * (1 << 30))
  print(f'bomb: {args.bomb_mib} MiB of zeros past one declared row;'
        f' address space limit {args.limit_gib} GiB\n')
  print('| case | file bytes | readers | outcome | peak RSS |')
  print('|---|---|---|---|---|')
  for name, path, member in cases(work_dir, args.bomb_mib << 20):
    for readers in args.readers:
      r = measure(readers, path, member, limit)
      outcome = f'{r["rows"]} rows' if r['error'] is None else r['error']
      outcome = outcome.replace(os.path.dirname(path) + '/', '').replace('|', '/')
      peak = f'{r["peak_mib"]:,} MiB' if r['peak_mib'] is not None else '-'
      print(f'| {name} | {os.path.getsize(path):,} | {readers} | {outcome} | {peak} |',
            flush=True)


if __name__ == '__main__':
  main()
