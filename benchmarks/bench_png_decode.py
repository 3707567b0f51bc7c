"""The export's PNG decoding against the libraries that decode PNGs.

On the PNGs of a prepared split's first shard (photo crops, as
`bench_arrays.py` builds them), CPU time per image, one process:

  ours            png_decoding's chunk decoder: each image's zlib stream
                  inflated by libdeflate, then 2,048 images' scanlines
                  unfiltered by one Pillow call (`decode_pngs`)
  Pillow          Image.open + np.asarray, one image at a time
  pyspng          libspng (pyspng.load)                    } where installed:
  imagecodecs     libpng or libspng (imagecodecs.png_decode) } pip install
  OpenCV          cv2.imdecode (libpng), one thread           } pyspng ...

Every decoder's pixels are checked equal to Pillow's.

  python benchmarks/bench_png_decode.py --sizes 32 64
"""

from __future__ import annotations

import argparse
import glob
import importlib
import io
import os
import sys
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common

sys.path.insert(0, common.REPO)
from imagenet_resized.formats import example_wire  # noqa: E402
from imagenet_resized.formats import png_decoding  # noqa: E402
from imagenet_resized.formats import tfrecord_files  # noqa: E402

IMAGES = 8192


def _pngs(work_dir: str, size: int) -> list[bytes]:
  pattern = os.path.join(
      work_dir, f'arrays_{size}_tfrecord', '**', '*train.tfrecord*'
  )
  shards = sorted(glob.glob(pattern, recursive=True))
  if not shards:
    raise SystemExit(f'no shards at {pattern}: run bench_arrays.py first')
  with open(shards[0], 'rb') as f:
    return [
        example_wire.parse_example(record)[0]
        for record in tfrecord_files.read_records(f, shards[0], 0, IMAGES)
    ]


def _decoders(size: int) -> dict:
  out = {
      'ours (libdeflate + one Pillow unfilter per 2,048)': lambda pngs: (
          png_decoding.decode_pngs(pngs, size)
      ),
      'Pillow, per image': lambda pngs: np.stack(
          [np.asarray(Image.open(io.BytesIO(p))) for p in pngs]
      ),
  }
  try:
    pyspng = importlib.import_module('pyspng')
    out['pyspng (libspng)'] = lambda pngs: np.stack([pyspng.load(p) for p in pngs])
  except ImportError:
    pass
  try:
    imagecodecs = importlib.import_module('imagecodecs')
    out['imagecodecs'] = lambda pngs: np.stack(
        [imagecodecs.png_decode(p) for p in pngs]
    )
  except ImportError:
    pass
  try:
    cv2 = importlib.import_module('cv2')
    cv2.setNumThreads(1)
    out['OpenCV (libpng)'] = lambda pngs: np.stack([
        cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
        for p in pngs
    ])
  except ImportError:
    pass
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--sizes', type=int, nargs='+', default=[32, 64])
  parser.add_argument('--work_dir', default=common.DEFAULT_WORK_DIR)
  args = parser.parse_args()
  print(f'Machine: {common.machine()}; load average: {common.load_average()}')
  print()
  print('| size | decoder | CPU us per image |')
  print('|---|---|---:|')
  for size in args.sizes:
    pngs = _pngs(args.work_dir, size)
    want = None
    for name, decode in _decoders(size).items():
      decode(pngs[:256])  # Warm-up.
      best = float('inf')
      for _ in range(3):
        start = time.process_time()
        got = decode(pngs)
        best = min(best, time.process_time() - start)
      if want is None:
        want = np.stack([np.asarray(Image.open(io.BytesIO(p))) for p in pngs])
      assert np.array_equal(got, want), name
      print(f'| {size}x{size} | {name} | {best / len(pngs) * 1e6:.1f} |')


if __name__ == '__main__':
  main()
