"""Photo-like sources in the authors' exact layout, for the benchmarks.

`fake.py`'s pictures (gradients and shapes) are good for tests but compress
unusually well, which flatters a PNG writer and a build's speed alike. Here the
images are random crops of real photographs that ship inside Python wheels
(so no download is needed), box-resized to SxS with Pillow's `Image.BOX` as
the authors resized ImageNet:

  scikit-learn  sklearn/datasets/images/china.jpg, flower.jpg
  matplotlib    mpl-data/sample_data/grace_hopper.jpg
  scikit-image  skimage/data/astronaut.png, chelsea.png, coffee.png,
                motorcycle_left.png, rocket.jpg

(scikit-image's other bundled pictures are grey, synthetic or microscopy;
scipy's `face` needs a download.) A crop is a random rectangle of a random
photo whose short side is log-uniform between half the photo's short side and
all of it (150 to 500 pixels; aspect ratio 3:4 to 4:3), flipped left-right half
the time: ImageNet's photos are ~400x350 and were resized whole, so an SxS
image averages boxes of about 6x6 (64x64) to 50x50 (8x8) source pixels, as
here.

`write_sources` writes one config's npz zips exactly as the authors published
them: `Imagenet{S}_train_npz.zip` (64x64: `Imagenet64_train_part1_npz.zip` and
`..._part2_npz.zip`, five batches each) holding
`Imagenet{S}_train_npz/train_data_batch_K.npz`, and `Imagenet{S}_val_npz.zip`
holding `val_data.npz`; each npz holds `data` (uint8 planar CHW rows),
`labels` (1-based) and, for train batches, `mean` (float64 mean row). Large
batches are written a chunk at a time (crops made in worker processes), so
memory stays flat at the real size (a 64x64 batch holds 1.6 GB of pixels).
The output is a deterministic function of (size, counts, seed).

Needs the `bench` extra (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
import os
import shutil
import sys
import zipfile

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)

from imagenet_resized.tools import fake  # noqa: E402
from imagenet_resized.authors import publication  # noqa: E402
from imagenet_resized import common  # noqa: E402
from imagenet_resized.pipeline import worker_pool  # noqa: E402

# (package, path inside the package) of the colour photographs used.
PHOTOS = (
    ('sklearn', 'datasets/images/china.jpg'),
    ('sklearn', 'datasets/images/flower.jpg'),
    ('matplotlib', 'mpl-data/sample_data/grace_hopper.jpg'),
    ('skimage', 'data/astronaut.png'),
    ('skimage', 'data/chelsea.png'),
    ('skimage', 'data/coffee.png'),
    ('skimage', 'data/motorcycle_left.png'),
    ('skimage', 'data/rocket.jpg'),
)

# Rows per chunk handed to a worker when writing sources.
CHUNK_ROWS = 4096
# Zip timestamps fixed, as in fake.py, so the same call writes the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)



def photo_path(package: str, relative: str) -> str:
  """Where a package's bundled file lies, without importing the package."""
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    raise SystemExit(
        f'{package}: not installed; the photo sources need it (pip install'
        " -e '.[bench]')"
    )
  return os.path.join(list(spec.submodule_search_locations)[0], relative)


@functools.cache
def load_photos() -> tuple[np.ndarray, ...]:
  """The photographs as (H, W, 3) uint8 arrays (loaded once per process)."""
  photos = []
  for package, relative in PHOTOS:
    with Image.open(photo_path(package, relative)) as image:
      photos.append(np.asarray(image.convert('RGB')))
  return tuple(photos)


def crops(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
  """(n, S, S, 3) uint8: random crops of the photographs, box-resized to S."""
  photos = [Image.fromarray(p) for p in load_photos()]
  out = np.empty((n, size, size, 3), np.uint8)
  for i in range(n):
    photo = photos[rng.integers(len(photos))]
    width, height = photo.size
    short = min(width, height)
    side = math.exp(rng.uniform(math.log(short / 2), math.log(short)))
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    w = min(width, max(size, round(side * math.sqrt(aspect))))
    h = min(height, max(size, round(side / math.sqrt(aspect))))
    x0 = int(rng.integers(0, width - w + 1))
    y0 = int(rng.integers(0, height - h + 1))
    image = photo.resize((size, size), Image.BOX, box=(x0, y0, x0 + w, y0 + h))
    if rng.integers(2):
      image = image.transpose(Image.FLIP_LEFT_RIGHT)
    out[i] = np.asarray(image)
  return out


def _chunk_rows(args: tuple[int, int, int, int, int]):
  """Worker: one chunk of a batch as (planar rows, 1-based labels)."""
  seed, size, batch_index, chunk_index, n = args
  rng = np.random.default_rng([seed, size, batch_index, chunk_index])
  rows = fake.images_to_rows(crops(rng, n, size))
  yield rows, rng.integers(1, 1001, size=n)


def _in_order(results):
  """The values of `parallel_streams` (one per item) in the items' order."""
  pending, wanted = {}, 0
  for index, value in results:
    pending[index] = value
    while wanted in pending:
      yield pending.pop(wanted)
      wanted += 1


def _write_npy_header(f, shape: tuple[int, ...], dtype) -> None:
  np.lib.format.write_array_header_2_0(f, {
      'descr': np.lib.format.dtype_to_descr(np.dtype(dtype)),
      'fortran_order': False,
      'shape': shape,
  })


def write_batch_npz(
    path: str, size: int, rows: int, batch_index: int, seed: int,
    with_mean: bool, workers: int,
) -> None:
  """Writes one batch as `np.savez` would (data, labels[, mean]), streamed.

  The pixel rows go straight into the npz's `data.npy` a chunk at a time; the
  labels and the mean row are small and written after.
  """
  width = 3 * size * size
  starts = range(0, rows, CHUNK_ROWS)
  jobs = (
      (seed, size, batch_index, k, min(CHUNK_ROWS, rows - start))
      for k, start in enumerate(starts)
  )
  labels = np.empty(rows, np.int64)
  total = np.zeros(width, np.float64)
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as zf:
    with zf.open(zipfile.ZipInfo('data.npy', _ZIP_DATE), 'w', force_zip64=True) as f:
      _write_npy_header(f, (rows, width), np.uint8)
      done = 0
      chunks = worker_pool.parallel_streams(_chunk_rows, jobs, workers)
      for chunk, chunk_labels in _in_order(chunks):
        f.write(chunk.tobytes())
        labels[done : done + len(chunk)] = chunk_labels
        total += chunk.sum(axis=0, dtype=np.float64)
        done += len(chunk)
    arrays = {'labels': labels}
    if with_mean:
      arrays['mean'] = total / max(rows, 1)
    for name, array in arrays.items():
      with zf.open(zipfile.ZipInfo(f'{name}.npy', _ZIP_DATE), 'w') as f:
        np.lib.format.write_array(f, array, allow_pickle=False)


@dataclasses.dataclass(frozen=True)
class Layout:
  """How many rows each batch of a source holds."""

  train_rows: tuple[int, ...]  # Rows of train_data_batch_1, 2, ...
  val_rows: int

  @property
  def examples(self) -> int:
    return sum(self.train_rows) + self.val_rows


def real_layout() -> Layout:
  """The published batch sizes (`publication.PUBLISHED_BATCH_ROWS`): batches 1-9
  of 128,116 rows, batch 10 of 128,123 (1,281,167 in all); val_data 50,000."""
  rows = publication.PUBLISHED_BATCH_ROWS
  return Layout(
      tuple(rows[name] for name in publication.published_batch_names(common.TRAIN)),
      rows[publication.VAL_BATCH],
  )


def write_sources(
    out_dir: str, size: int, layout: Layout, seed: int = 0,
    workers: int | None = None, zip_level: int = 1,
) -> list[str]:
  """Writes one config's npz zips in the authors' layout; returns their paths.

  The zips are deflated (at `zip_level`; the authors' are deflated too, which
  is what makes a reader inflate every batch), each batch staged on disk as an
  npz first, then copied into its zip.
  """
  workers = worker_pool.default_workers() if workers is None else workers
  os.makedirs(out_dir, exist_ok=True)
  staging = os.path.join(out_dir, 'staging')
  os.makedirs(staging, exist_ok=True)
  train_zips = publication.archive_names(size, common.TRAIN)
  batches = [
      (f'train_data_batch_{k}', rows) for k, rows in enumerate(layout.train_rows, 1)
  ]
  per_zip = -(-len(batches) // len(train_zips))
  groups = [
      (name, batches[i * per_zip : (i + 1) * per_zip], True)
      for i, name in enumerate(train_zips)
  ]
  groups.append(
      (
          publication.archive_names(size, common.VALIDATION)[0],
          [('val_data', layout.val_rows)], False,
      )
  )
  written = []
  batch_index = 0
  for archive, members, in_folder in groups:
    path = os.path.join(out_dir, archive)
    folder = archive.removesuffix('.zip')
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED, compresslevel=zip_level) as zf:
      for name, rows in members:
        staged = os.path.join(staging, name + '.npz')
        write_batch_npz(
            staged, size, rows, batch_index, seed,
            with_mean=name != 'val_data', workers=workers,
        )
        batch_index += 1
        info = zipfile.ZipInfo(
            f'{folder}/{name}.npz' if in_folder else f'{name}.npz', _ZIP_DATE
        )
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        with open(staged, 'rb') as src, zf.open(info, 'w', force_zip64=True) as dst:
          shutil.copyfileobj(src, dst, 1 << 22)
        os.remove(staged)
    written.append(path)
  os.rmdir(staging)
  return written


def ensure_sources(
    work_dir: str, size: int, layout: Layout, seed: int = 0, **kwargs
) -> str:
  """Writes (once, cached) photo sources for `layout`; returns their folder."""
  train = 'x'.join(str(r) for r in sorted(set(layout.train_rows)))
  name = (
      f'photos_{size}_{len(layout.train_rows)}b{train}_{layout.val_rows}_s{seed}'
  )
  out = os.path.join(work_dir, name)
  done = os.path.join(out, '.complete')
  if not os.path.exists(done):
    shutil.rmtree(out, ignore_errors=True)
    write_sources(out, size, layout, seed, **kwargs)
    open(done, 'w').close()
  return out
