"""Images per second building from ILSVRC2012-like tarballs.

Writes (once) a train tarball of `--classes` class tars and a validation
tarball, all JPEGs of ImageNet's typical size (500x375, image-like content,
quality 90, about as many bytes per image as ImageNet's), then measures:

  decode   `split_examples.iter_examples` over the train tarball: stream the nested
           tars, decode, box-resize, PNG-encode; in this process and in
           forked workers, exact and with JPEG draft decoding (and how far
           draft pixels are from exact ones);
  beam     the same through `split_examples.beam_examples` on Beam's DirectRunner
           (one process, and multi-processing with one worker per core);
  build    a whole TFDS build (both splits, written and shuffled) of
           imagenet_resized/32x32 from the tarballs, in a fresh subprocess.

    python benchmarks/bench_ilsvrc.py --images 2000 --size 32
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The tests' helpers for fake sources (tar_bytes).
sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests')
)

import common
import fake_helpers
from imagenet_resized import resources
from imagenet_resized.ilsvrc import finding, layout, split_examples
from imagenet_resized.pipeline import worker_pool

WIDTH, HEIGHT = 500, 375


def photo_like(rng: np.random.Generator) -> Image.Image:
  """Smooth colour fields, edges and texture: JPEG-compresses like a photo."""
  coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
  img = np.asarray(
      Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.BICUBIC), np.float32
  )
  for _ in range(4):
    y0, x0 = rng.integers(0, HEIGHT), rng.integers(0, WIDTH)
    img[y0 : y0 + rng.integers(20, 150), x0 : x0 + rng.integers(20, 200)] = rng.integers(0, 256, 3)
  img += rng.normal(0, 14, size=img.shape)
  return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image) -> bytes:
  buf = io.BytesIO()
  image.save(buf, format='JPEG', quality=90)
  return buf.getvalue()


def ensure_tarballs(work_dir: str, images: int, classes: int, val_images: int) -> str:
  """Writes (once) ILSVRC2012-named tarballs; returns their folder."""
  out = os.path.join(work_dir, f'ilsvrc_{images}x{classes}_{val_images}')
  done = os.path.join(out, '.complete')
  if os.path.exists(done):
    return out
  os.makedirs(out, exist_ok=True)
  rng = np.random.default_rng(0)
  wnids = resources.wnids()[:classes]
  with tarfile.open(os.path.join(out, layout.TRAIN_TAR), 'w') as train:
    for c, wnid in enumerate(wnids):
      n = images // classes + (c < images % classes)
      data = fake_helpers.tar_bytes(
          (f'{wnid}_{i + 1}.JPEG', jpeg(photo_like(rng))) for i in range(n)
      )
      info = tarfile.TarInfo(f'{wnid}.tar')
      info.size = len(data)
      train.addfile(info, io.BytesIO(data))
  with open(os.path.join(out, layout.VAL_TAR), 'wb') as f:
    f.write(fake_helpers.tar_bytes(
        (f'ILSVRC2012_val_{k:08d}.JPEG', jpeg(photo_like(rng)))
        for k in range(1, val_images + 1)
    ))
  open(done, 'w').close()
  return out


def time_decode(source, size: int, workers: int, draft: bool) -> tuple[int, float, dict]:
  start = time.perf_counter()
  out = {k: ex['image'] for k, ex in split_examples.iter_examples(source, size, workers, draft)}
  return len(out), time.perf_counter() - start, out


def time_beam(source, size: int, options: list[str]) -> tuple[int, float]:
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  from apache_beam.testing.util import assert_that, equal_to

  expected = sum(
      1 for unit in split_examples.work_units(source) for _ in unit.images()
  )
  start = time.perf_counter()
  with beam.Pipeline(options=PipelineOptions(options)) as pipeline:
    count = (
        pipeline
        | split_examples.beam_examples(source, size)
        | beam.combiners.Count.Globally()
    )
    assert_that(count, equal_to([expected]))
  return expected, time.perf_counter() - start


def draft_error(exact: dict, draft: dict) -> tuple[float, int]:
  """Mean and max absolute pixel difference of draft vs exact images."""
  total, count, worst = 0.0, 0, 0
  for key, png in exact.items():
    a = np.asarray(Image.open(io.BytesIO(png)), np.int16)
    b = np.asarray(Image.open(io.BytesIO(draft[key])), np.int16)
    diff = np.abs(a - b)
    total += diff.sum()
    count += diff.size
    worst = max(worst, int(diff.max()))
  return total / count, worst


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--images', type=int, default=2000, help='train images')
  parser.add_argument('--classes', type=int, default=10)
  parser.add_argument('--val_images', type=int, default=200)
  parser.add_argument('--size', type=int, default=32)
  parser.add_argument('--work_dir', default=common.DEFAULT_WORK_DIR)
  parser.add_argument('--skip_build', action='store_true')
  args = parser.parse_args()

  folder = ensure_tarballs(args.work_dir, args.images, args.classes, args.val_images)
  train_tar = os.path.join(folder, layout.TRAIN_TAR)
  source = finding.SplitImages(common.TRAIN, layout.FORM_TARBALL, (train_tar,))
  mib = os.path.getsize(train_tar) / 2**20
  workers = worker_pool.default_workers()
  print(f'machine: {common.machine()}; load average before: {common.load_average()}')
  print(f'train tarball: {args.images} JPEGs {WIDTH}x{HEIGHT}, {mib:.0f} MiB'
        f' ({mib * 2**20 / args.images / 1000:.0f} kB/image), {args.classes} class tars;'
        f' output {args.size}x{args.size} PNG\n')
  print('| path | workers | images | seconds | images/s |')
  print('|---|---|---|---|---|')
  results = {}
  for draft in (False, True):
    for n in (0, workers):
      count, seconds, out = time_decode(source, args.size, n, draft)
      results[draft] = out
      mode = 'draft decode' if draft else 'exact decode'
      print(f'| split_examples.iter_examples, {mode} | {n or "none (in process)"} |'
            f' {count} | {seconds:.1f} | {count / seconds:.0f} |', flush=True)
  for name, options in (
      ('Beam DirectRunner, in process', ['--runner=DirectRunner', '--direct_num_workers=1']),
      ('Beam DirectRunner, multi_processing', [
          '--runner=DirectRunner', '--direct_running_mode=multi_processing',
          f'--direct_num_workers={workers}',
      ]),
  ):
    count, seconds = time_beam(source, args.size, options)
    n = workers if 'multi' in name else 1
    print(f'| {name}, exact decode | {n} | {count} | {seconds:.1f}'
          f' | {count / seconds:.0f} |', flush=True)
  if not args.skip_build:
    data_dir = os.path.join(args.work_dir, 'ilsvrc_build')
    r = common.run_build('ours', 32, folder, data_dir,
                         log_path=os.path.join(args.work_dir, 'ilsvrc_build.log'))
    print(f'| whole TFDS build of 32x32 (train + validation, written) | {workers} |'
          f' {r["examples"]} | {r["seconds"]:.1f} | {r["examples_per_s"]} |')
  mean, worst = draft_error(results[False], results[True])
  print(f'\ndraft vs exact at {args.size}x{args.size}: mean |difference| {mean:.2f}'
        f' levels (of 255), max {worst}')
  print(f'load average after: {common.load_average()}')


if __name__ == '__main__':
  main()
