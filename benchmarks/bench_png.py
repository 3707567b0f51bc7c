"""PNG size and speed by deflate library and level, on crops of photographs.

Encodes the same random photo crops (`photo_sources.crops`: box-resized to
SxS) with our writer (`png_codec.encode_pngs`: per-row adaptive filters) and
each deflate implementation at several levels, and with libpng through
`tf.io.encode_png` (TFDS's own encoder: adaptive filters, zlib level 6) as the
reference. Every PNG is checked to decode (Pillow) to its pixels.

    python benchmarks/bench_png.py --sizes 8 16 32 64

Prints a Markdown table: bytes per image, % of libpng's, and microseconds per
image (one process, one thread; the best of `--repeats` runs over the whole
set, filters included). With pyoxipng installed (the `bench` extra), the PNG
optimizer oxipng is also run over our writer's PNGs of the first
OPTIMIZER_IMAGES images, its time on top of our encoder's; its bytes are
scaled to the whole set by libpng's ratio on those images.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import os
import sys
import time
from collections.abc import Callable
import zlib

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common
import photo_sources
from imagenet_resized.formats import png_codec

# Images per size: about the same number of pixels for each.
DEFAULT_COUNTS = {8: 8000, 16: 4000, 32: 2000, 64: 800}


def compressors() -> list[tuple[str, object, list[int]]]:
  """(library, zlib-stream compress(data, level), levels) of those installed."""
  import deflate
  found = [
      (f'libdeflate (deflate {deflate.__version__})', deflate.zlib_compress, [1, 6, 9, 10, 12]),
      (f'zlib {zlib.ZLIB_RUNTIME_VERSION} (stdlib)', zlib.compress, [1, 6, 9]),
      (f'zlib {zlib.ZLIB_RUNTIME_VERSION} (stdlib), Z_FILTERED as libpng', _zlib_filtered, [6, 9]),
  ]
  try:
    from zlib_ng import zlib_ng
    found.append(
        (f'zlib-ng {zlib_ng.ZLIBNG_VERSION} (zlib-ng {importlib.metadata.version("zlib-ng")})',
         zlib_ng.compress, [1, 6, 9])
    )
  except ImportError:
    print('zlib-ng not installed: skipped', file=sys.stderr)
  try:
    from isal import isal_zlib
    found.append(
        (f'ISA-L (isal {importlib.metadata.version("isal")})', isal_zlib.compress, [0, 1, 2, 3])
    )
  except ImportError:
    print('isal not installed: skipped', file=sys.stderr)
  return found


# PNG optimizers tried on our writer's output (slow: on the first
# OPTIMIZER_IMAGES images of each size only, timed once; their bytes are
# compared with libpng's on those same images).
OPTIMIZER_IMAGES = 200


def optimizers() -> list[tuple[str, Callable[[bytes], bytes]]]:
  """(name, optimize(png) -> png) of the PNG optimizers installed."""
  try:
    import oxipng
  except ImportError:
    print('pyoxipng not installed: skipped', file=sys.stderr)
    return []
  version = importlib.metadata.version('pyoxipng')
  return [
      (f'oxipng {version} level {level}{", " + name if name else ""} (on our PNGs)',
       lambda png, level=level, kw=kw: oxipng.optimize_from_memory(png, level=level, **kw))
      for level, name, kw in [
          (2, '', {}),
          (6, '', {}),
          (4, 'brute-force row filters, libdeflate 12',
           {'filter': [oxipng.RowFilter.Brute], 'deflate': oxipng.Deflaters.libdeflater(12)}),
          (2, 'zopfli 15', {'deflate': oxipng.Deflaters.zopfli(15)}),
      ]
  ]


def _zlib_filtered(data, level: int) -> bytes:
  """zlib with the strategy libpng uses for filtered rows (Z_FILTERED)."""
  compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 8, zlib.Z_FILTERED)
  return compressor.compress(data) + compressor.flush()


def _best_time(fn, repeats: int) -> tuple[float, object]:
  best, result = float('inf'), None
  for _ in range(repeats):
    start = time.perf_counter()
    result = fn()
    best = min(best, time.perf_counter() - start)
  return best, result


def _check_decodes(pngs: list[bytes], images: np.ndarray, what: str) -> None:
  for png, image in zip(pngs, images):
    decoded = np.asarray(Image.open(io.BytesIO(png)).convert('RGB'))
    if not np.array_equal(decoded, image):
      raise AssertionError(f'{what}: a PNG does not decode to its pixels')


def tf_encode(images: np.ndarray) -> list[bytes]:
  import tensorflow as tf
  return [tf.io.encode_png(image).numpy() for image in images]


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--sizes', type=int, nargs='+', default=[8, 16, 32, 64])
  parser.add_argument('--scale', type=float, default=1.0, help='times the default counts')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()

  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  rows: dict[str, dict[int, tuple[float, float]]] = {}
  counts = {}
  for size in args.sizes:
    n = max(1, int(DEFAULT_COUNTS.get(size, 1000) * args.scale))
    counts[size] = n
    images = photo_sources.crops(np.random.default_rng([args.seed, size]), n, size)
    seconds, pngs = _best_time(lambda images=images: tf_encode(images), args.repeats)
    _check_decodes(pngs, images, 'tf.io.encode_png')
    reference = float(np.mean([len(p) for p in pngs]))
    rows.setdefault('libpng via tf.io.encode_png (TFDS), zlib 6', {})[size] = (
        reference, seconds / n * 1e6
    )
    seconds, pngs = _best_time(
        lambda images=images: png_codec.encode_pngs(
            images, 6, zlib.compress, png_codec.NONE
        ),
        args.repeats,
    )
    _check_decodes(pngs, images, 'filter None')
    rows.setdefault('ours before: filter None on every row, zlib 6', {})[size] = (
        float(np.mean([len(p) for p in pngs])), seconds / n * 1e6
    )
    for library, compress, levels in compressors():
      for level in levels:
        seconds, pngs = _best_time(
            lambda images=images, level=level, compress=compress: (
                png_codec.encode_pngs(images, level, compress)
            ),
            args.repeats,
        )
        _check_decodes(pngs, images, f'{library} {level}')
        rows.setdefault(f'adaptive filters, {library} level {level}', {})[size] = (
            float(np.mean([len(p) for p in pngs])), seconds / n * 1e6
        )
    few = images[:OPTIMIZER_IMAGES]
    ours = png_codec.encode_pngs(few)
    libpng_few = float(np.mean([len(p) for p in tf_encode(few)]))
    for name, optimize in optimizers():
      seconds, pngs = _best_time(
          lambda optimize=optimize, ours=ours: [optimize(p) for p in ours], 1
      )
      _check_decodes(pngs, few, name)
      # Scaled so that the % column compares with libpng on the same images.
      mean = float(np.mean([len(p) for p in pngs]))
      rows.setdefault(name, {})[size] = (
          mean * rows['libpng via tf.io.encode_png (TFDS), zlib 6'][size][0] / libpng_few,
          seconds / len(few) * 1e6,
      )
    print(f'{size}x{size} done', file=sys.stderr, flush=True)

  libpng = rows['libpng via tf.io.encode_png (TFDS), zlib 6']
  header = '| encoder | ' + ' | '.join(
      f'{s}x{s} bytes (% libpng) | {s}x{s} us' for s in args.sizes
  ) + ' |'
  print(f'\nMachine: {common.machine()}; load average after: {common.load_average()}')
  print('Images: ' + ', '.join(f'{counts[s]:,} at {s}x{s}' for s in args.sizes))
  print()
  print(header)
  print('|---|' + '---:|---:|' * len(args.sizes))
  for name, by_size in rows.items():
    cells = []
    for s in args.sizes:
      size_bytes, micros = by_size[s]
      cells.append(f'{size_bytes:,.0f} ({100 * size_bytes / libpng[s][0]:.1f} %) | {micros:,.1f}')
    print(f'| {name} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
  main()
