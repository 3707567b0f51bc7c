"""Building from the ILSVRC2012 tarballs / folders, at published and other sizes.

The tests write a tiny ImageNet (three classes, the classes of the first
validation images in tensorflow-datasets' ground truth) as JPEGs with Pillow,
including ImageNet's odd files: a grayscale JPEG, a CMYK JPEG and a PNG named
.JPEG. Expected examples are computed straight from those bytes with
`Image.open(...).convert('RGB').resize((S, S), Image.BOX)`.
"""

from __future__ import annotations

import io
import os

import numpy as np
import PIL
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import imagenet_resized
from imagenet_resized.ilsvrc import resizing
from imagenet_resized.authors import download_probe
from imagenet_resized import resources
from imagenet_resized.ilsvrc import class_labels, finding, layout, split_examples
from imagenet_resized.common import SourceError
from imagenet_resized.pipeline import examples

import fake_helpers
from conftest import TFDS_CLI, build, read_split, run
from test_download_probe import download_calls  # noqa: F401 (a fixture)

NUM_CLASSES = 3
VAL_PER_CLASS = 2
# (width, height, mode, format): every aspect ratio and ImageNet's odd files.
TRAIN_SHAPES = (
    (70, 45, 'RGB', 'JPEG'),
    (40, 90, 'L', 'JPEG'),  # Grayscale.
    (61, 47, 'CMYK', 'JPEG'),
    (55, 40, 'RGB', 'PNG'),  # A PNG named .JPEG.
    (300, 200, 'RGB', 'JPEG'),  # Large enough for JPEG draft decoding.
)


def picture(rng: np.random.Generator, width: int, height: int) -> Image.Image:
  """An image-like RGB picture: a gradient, a box, some noise."""
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
  c0, c1 = rng.integers(0, 256, size=(2, 3))
  t = (xx / max(width - 1, 1) + yy / max(height - 1, 1))[..., None] / 2
  img = c0 * (1 - t) + c1 * t + rng.normal(0, 12, size=(height, width, 3))
  y0, x0 = rng.integers(0, height // 2), rng.integers(0, width // 2)
  img[y0 : y0 + height // 3, x0 : x0 + width // 3] = rng.integers(0, 256, size=3)
  return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def encode(image: Image.Image, mode: str, fmt: str) -> bytes:
  buf = io.BytesIO()
  image.convert(mode).save(buf, format=fmt, **({'quality': 90} if fmt == 'JPEG' else {}))
  return buf.getvalue()


def box_resized(data: bytes, size: int) -> np.ndarray:
  """The authors' method, applied to the original bytes."""
  return np.asarray(Image.open(io.BytesIO(data)).convert('RGB').resize((size, size), Image.BOX))


class TinyImagenet:
  """A tiny ILSVRC2012 in memory: train {wnid: [(name, bytes)]}, val [(name, bytes)]."""

  def __init__(self, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = class_labels.validation_wnids()
    # The classes of the first validation images; then that many images each.
    self.wnids = list(dict.fromkeys(truth))[:NUM_CLASSES]
    self.train = {}
    for c, wnid in enumerate(self.wnids):
      shapes = TRAIN_SHAPES if c == 0 else TRAIN_SHAPES[:2]
      self.train[wnid] = [
          (f'{wnid}_{i + 1}.JPEG', encode(picture(rng, w, h), mode, fmt))
          for i, (w, h, mode, fmt) in enumerate(shapes)
      ]
    self.val = []
    for wnid in self.wnids:
      numbers = [k + 1 for k, t in enumerate(truth) if t == wnid][:VAL_PER_CLASS]
      for k in numbers:
        self.val.append(
            (f'ILSVRC2012_val_{k:08d}.JPEG', encode(picture(rng, 50 + k % 30, 40), 'RGB', 'JPEG'))
        )
    self.val_wnid = {name: truth[int(name[15:23]) - 1] for name, _ in self.val}

  def expected(self, size: int) -> dict[str, tuple[np.ndarray, int]]:
    """{key: (image, label)} computed from the original bytes."""
    label = {w: i for i, w in enumerate(resources.wnids())}
    out = {}
    for wnid, files in self.train.items():
      for name, data in files:
        out[f'train/{wnid}/{name}'] = (box_resized(data, size), label[wnid])
    for name, data in self.val:
      out[f'val/{name}'] = (box_resized(data, size), label[self.val_wnid[name]])
    return out

  def write_tarballs(self, folder: str) -> str:
    os.makedirs(folder, exist_ok=True)
    class_tars = [(f'{w}.tar', fake_helpers.tar_bytes(files)) for w, files in self.train.items()]
    with open(os.path.join(folder, layout.TRAIN_TAR), 'wb') as f:
      f.write(fake_helpers.tar_bytes(class_tars))
    with open(os.path.join(folder, layout.VAL_TAR), 'wb') as f:
      f.write(fake_helpers.tar_bytes(self.val))
    return folder

  def write_folders(self, folder: str, val_by_class: bool) -> str:
    for wnid, files in self.train.items():
      os.makedirs(os.path.join(folder, 'train', wnid))
      for name, data in files:
        with open(os.path.join(folder, 'train', wnid, name), 'wb') as f:
          f.write(data)
    for name, data in self.val:
      sub = os.path.join(folder, 'val', self.val_wnid[name] if val_by_class else '')
      os.makedirs(sub, exist_ok=True)
      with open(os.path.join(sub, name), 'wb') as f:
        f.write(data)
    return folder


@pytest.fixture(scope='module')
def tiny() -> TinyImagenet:
  return TinyImagenet()


@pytest.fixture(scope='module')
def tarballs(tiny, tmp_path_factory) -> str:
  return tiny.write_tarballs(str(tmp_path_factory.mktemp('tarballs') / 'manual'))


@pytest.fixture(scope='module')
def folders(tiny, tmp_path_factory) -> str:
  # Deeper, as Kaggle lays it out, with validation images in class folders.
  # Kaggle's annotations sit beside the images in folders of the same names.
  root = tmp_path_factory.mktemp('folders')
  tiny.write_folders(str(root / 'ILSVRC' / 'Data' / 'CLS-LOC'), val_by_class=True)
  annotations = root / 'ILSVRC' / 'Annotations' / 'CLS-LOC'
  for wnid, files in tiny.train.items():
    (annotations / 'train' / wnid).mkdir(parents=True)
    for name, _ in files:
      (annotations / 'train' / wnid / name.replace('.JPEG', '.xml')).write_text('<annotation/>')
  (annotations / 'val').mkdir()
  for name, _ in tiny.val:
    (annotations / 'val' / name.replace('.JPEG', '.xml')).write_text('<annotation/>')
  return str(root)


def test_kaggle_layout_finds_the_image_folders(folders):
  data = os.path.join(folders, 'ILSVRC', 'Data', 'CLS-LOC')
  found = finding.find_sources(folders)
  assert {s: (v.form, v.files) for s, v in found.items()} == {
      'train': (layout.FORM_FOLDERS, (os.path.join(data, 'train'),)),
      'validation': (layout.FORM_FOLDERS, (os.path.join(data, 'val'),)),
  }


def builder_for(size: int, data_dir, **config_kwargs):
  return tfds.builder(
      'imagenet_resized',
      config=imagenet_resized.ImagenetResizedConfig(
          size=size, source='ilsvrc2012', **config_kwargs
      ),
      data_dir=str(data_dir),
  )


def prepare(builder, manual_dir, **download_config):
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir), **download_config)
  )
  return builder


def as_sorted(examples) -> list[tuple[int, bytes]]:
  return sorted((label, np.asarray(image).tobytes()) for image, label in examples)


def assert_split_matches(builder, expected, split: str) -> None:
  prefix = 'train/' if split == 'train' else 'val/'
  want = [v for k, v in expected.items() if k.startswith(prefix)]
  got = read_split(builder, split)
  assert len(got) == len(want)
  assert all(image.shape == want[0][0].shape for image, _ in got)
  assert as_sorted(got) == as_sorted(want)


# ---------------------------------------------------------------------------
# The pure module: keys, pixels, labels; tarballs, folders, workers.


def decoded(examples) -> dict[str, tuple[np.ndarray, int]]:
  return {
      key: (np.asarray(Image.open(io.BytesIO(ex['image']))), ex['label'])
      for key, ex in examples
  }


def assert_same(got: dict, want: dict) -> None:
  assert sorted(got) == sorted(want)
  for key, (image, label) in want.items():
    assert got[key][1] == label, key
    np.testing.assert_array_equal(got[key][0], image, err_msg=key)


@pytest.mark.parametrize('workers', [0, pytest.param(2, marks=pytest.mark.slow)])
def test_tarball_examples_are_box_resized_originals(tiny, tarballs, workers):
  found = finding.find_sources(tarballs)
  assert {s: (v.form, v.files) for s, v in found.items()} == {
      'train': (layout.FORM_TARBALL, (os.path.join(tarballs, layout.TRAIN_TAR),)),
      'validation': (layout.FORM_TARBALL, (os.path.join(tarballs, layout.VAL_TAR),)),
  }
  got = {}
  for source in found.values():
    got.update(decoded(split_examples.iter_examples(source, 20, workers=workers)))
  assert_same(got, tiny.expected(20))


@pytest.mark.parametrize('val_by_class', [False, True])
def test_folder_examples_have_the_tarball_keys(tiny, tmp_path, val_by_class):
  root = tiny.write_folders(str(tmp_path / 'imagenet'), val_by_class)
  found = finding.find_sources(str(tmp_path))
  assert {s: (v.form, v.files) for s, v in found.items()} == {
      'train': (layout.FORM_FOLDERS, (os.path.join(root, 'train'),)),
      'validation': (layout.FORM_FOLDERS, (os.path.join(root, 'val'),)),
  }
  got = {}
  for source in found.values():
    got.update(decoded(split_examples.iter_examples(source, 20)))
  assert_same(got, tiny.expected(20))


def test_work_units_cover_the_split_once(tiny, tarballs, folders):
  """The work units (offsets into tars, class folders), made one by one,
  give the split's examples: one unit per class."""
  want = tiny.expected(16)
  for root in (tarballs, folders):
    got = {}
    for source in finding.find_sources(root).values():
      units = split_examples.work_units(source)
      if source.split == 'train':
        assert len(units) == NUM_CLASSES
      for unit in units:
        rows = split_examples.unit_rows(split_examples.UnitTask(unit, 16))
        got.update(decoded(examples.examples_of(rows, None)))
    assert_same(got, want)


def test_jpeg_draft_is_close_and_exact_when_no_reduction(tiny, tarballs):
  source = finding.find_sources(tarballs)['train']
  exact = decoded(split_examples.iter_examples(source, 16))
  draft = decoded(split_examples.iter_examples(source, 16, draft=True))
  assert sorted(draft) == sorted(exact)
  for key, (image, label) in exact.items():
    assert draft[key][1] == label
    diff = np.abs(draft[key][0].astype(int) - image.astype(int))
    name = key.rsplit('/', 1)[1]
    width, height = next(
        Image.open(io.BytesIO(d)).size
        for files in tiny.train.values() for n, d in files if n == name
    )
    if min(width // 16, height // 16) < 2:  # Decoded at full scale.
      assert diff.max() == 0, key
    else:
      assert diff.mean() < 6, key


def test_validation_ground_truth_is_tfds_file():
  truth = class_labels.validation_wnids()
  path = class_labels.validation_labels_path()
  with open(path) as f:
    lines = f.read().split()
  assert truth == tuple(lines) and len(truth) == 50_000
  assert set(truth) == set(resources.wnids())


def test_no_imagenet_gives_none(tmp_path):
  (tmp_path / 'other.tar').write_bytes(b'')
  assert finding.find_sources(str(tmp_path)) is None


def test_only_one_split_is_an_error(tiny, tmp_path):
  tiny.write_tarballs(str(tmp_path))
  os.remove(tmp_path / layout.VAL_TAR)
  with pytest.raises(SourceError) as e:
    finding.find_sources(str(tmp_path))
  assert str(e.value) == (
      f'{tmp_path}: found the ILSVRC2012 train split but not validation;'
      f' expected {layout.VAL_TAR} or its extracted folder (val/)'
  )


# ---------------------------------------------------------------------------
# Bad input: one line naming the file and member.


def write_train_tar(folder, classes: dict[str, list[tuple[str, bytes]]], val) -> str:
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, layout.TRAIN_TAR), 'wb') as f:
    f.write(fake_helpers.tar_bytes([
        (f'{w}.tar', fake_helpers.tar_bytes(files)) for w, files in classes.items()
    ]))
  with open(os.path.join(folder, layout.VAL_TAR), 'wb') as f:
    f.write(fake_helpers.tar_bytes(val))
  return os.path.join(folder, layout.TRAIN_TAR)


@pytest.mark.parametrize('workers', [0, pytest.param(2, marks=pytest.mark.slow)])
@pytest.mark.parametrize('corrupt', ['truncated', 'not an image'])
def test_corrupt_image_names_the_member(tiny, tmp_path, workers, corrupt):
  wnid = tiny.wnids[1]
  good = tiny.train[wnid][0][1]
  bad = good[: len(good) // 2] if corrupt == 'truncated' else b'hello, not a picture'
  files = [*tiny.train[wnid], (f'{wnid}_99.JPEG', bad)]
  train_tar = write_train_tar(str(tmp_path), {wnid: files}, tiny.val)
  source = finding.find_sources(str(tmp_path))['train']
  with pytest.raises(SourceError) as e:
    list(split_examples.iter_examples(source, 8, workers=workers))
  message = str(e.value)
  assert message.startswith(f'{train_tar}:{wnid}.tar/{wnid}_99.JPEG: not a readable image (')
  assert message.endswith('); expected a JPEG (or PNG) image')
  assert '\n' not in message


def test_unknown_class_tar(tiny, tmp_path):
  train_tar = write_train_tar(str(tmp_path), {'n00000001': tiny.train[tiny.wnids[0]]}, tiny.val)
  source = finding.find_sources(str(tmp_path))['train']
  with pytest.raises(SourceError) as e:
    list(split_examples.iter_examples(source, 8))
  assert str(e.value) == (
      f'{train_tar}:n00000001.tar: n00000001 is not one of the 1000 ILSVRC2012'
      ' classes of labels.txt; expected a class tar or folder named by one of them'
  )


def test_bad_validation_name(tiny, tmp_path):
  write_train_tar(str(tmp_path), tiny.train, [('holiday.JPEG', tiny.val[0][1])])
  source = finding.find_sources(str(tmp_path))['validation']
  with pytest.raises(SourceError) as e:
    list(split_examples.iter_examples(source, 8))
  assert str(e.value) == (
      f'{tmp_path / layout.VAL_TAR}:holiday.JPEG: not a validation image name;'
      ' expected ILSVRC2012_val_NNNNNNNN.JPEG with NNNNNNNN in 1..50000'
  )


def test_truncated_train_tar(tiny, tmp_path):
  train_tar = write_train_tar(str(tmp_path), tiny.train, tiny.val)
  with open(train_tar, 'r+b') as f:
    f.truncate(os.path.getsize(train_tar) // 2)
  source = finding.find_sources(str(tmp_path))['train']
  with pytest.raises(SourceError) as e:
    list(split_examples.iter_examples(source, 8))
  assert 'not a readable tar (corrupt or truncated: ' in str(e.value)
  assert str(e.value).endswith('expected the ILSVRC2012 tarball as downloaded')
  assert str(e.value).startswith(train_tar)


def test_misfiled_validation_image(tiny, tmp_path):
  root = tiny.write_folders(str(tmp_path), val_by_class=True)
  name = tiny.val[0][0]
  right, wrong = tiny.val_wnid[name], tiny.wnids[-1]
  os.rename(os.path.join(root, 'val', right, name), os.path.join(root, 'val', wrong, name))
  source = finding.find_sources(root)['validation']
  with pytest.raises(SourceError) as e:
    list(split_examples.iter_examples(source, 8))
  assert str(e.value) == (
      f'{os.path.join(root, "val", wrong, name)}: sits in class folder {wrong} but'
      f' the ILSVRC2012 ground truth says {right}; expected the validation'
      ' images sorted by their true class'
  )


# ---------------------------------------------------------------------------
# Through TFDS: published and other sizes, metadata, errors.


@pytest.fixture(scope='module')
def built_24(tarballs, tmp_path_factory):
  return prepare(builder_for(24, tmp_path_factory.mktemp('data24')), tarballs)


@pytest.mark.slow
def test_build_32x32_ilsvrc2012_from_tarballs(tiny, tarballs, tmp_path):
  builder = build('32x32_ilsvrc2012', tarballs, tmp_path)
  expected = tiny.expected(32)
  for split in ('train', 'validation'):
    assert_split_matches(builder, expected, split)
  metadata = builder.info.metadata['sources']
  method = (
      "computed from the ILSVRC2012 JPEGs by the authors' documented method:"
      " Pillow, convert('RGB'), resize((S, S), Image.BOX); not compared with the"
      " authors' files, whose exact JPEGs and Pillow version are unknown (made"
      f' with Pillow {PIL.__version__})'
  )
  assert metadata['train'] == {
      'form': layout.FORM_TARBALL, 'files': [layout.TRAIN_TAR], 'method': method,
  }
  assert metadata['validation'] == {
      'form': layout.FORM_TARBALL, 'files': [layout.VAL_TAR], 'method': method,
  }
  description = ' '.join(builder.info.config_description.split())
  assert 'not compared with the authors\' files' in description
  assert 'gives the authors\' pixels' not in description


@pytest.mark.slow
def test_published_config_never_reads_imagenet(
    tarballs, tmp_path, monkeypatch, download_calls
):
  """ImageNet's tarballs do not stand in for the authors' archives.

  TFDS's own downloader (recorded, not replaced: a replaced one is asked for
  the files, with no probe) is never run: the probe, here answering that the
  site cannot be reached, stops the build first."""
  monkeypatch.setattr(
      download_probe, 'why_not_downloadable',
      lambda url: 'cannot reach www.image-net.org (test)',
  )
  read = []
  monkeypatch.setattr(resizing, 'resize_image', lambda *a, **k: read.append(a))
  with pytest.raises(SourceError) as e:
    build('32x32', tarballs, tmp_path / 'data')
  message = str(e.value)
  assert message.startswith(
      'No source archives for imagenet_resized/32x32: expected'
      ' Imagenet32_train_npz.zip, Imagenet32_val_npz.zip'
  )
  assert f'looked in: {tarballs}; http://www.image-net.org/data/downsample/' \
      ' (download failed: cannot reach www.image-net.org (test));' in message
  assert message.endswith(
      'or to compute the images from the ILSVRC2012 JPEGs instead, build'
      " imagenet_resized/32x32_ilsvrc2012 (ImagenetResizedConfig(size=32,"
      " source='ilsvrc2012'))"
  )
  assert '\n' not in message and not read
  assert download_calls == []  # TFDS's downloader never ran.
  assert not tfds.builder('imagenet_resized/32x32', data_dir=str(tmp_path / 'data')).is_prepared()


@pytest.mark.slow
def test_build_unpublished_size_from_tarballs(tiny, built_24):
  assert built_24.info.config_name == '24x24_ilsvrc2012'
  assert built_24.info.features['image'].shape == (24, 24, 3)
  expected = tiny.expected(24)
  for split in ('train', 'validation'):
    assert_split_matches(built_24, expected, split)
  # The metadata survives a reload from disk.
  reloaded = builder_for(24, built_24.data_dir.rsplit('/imagenet_resized', 1)[0])
  assert reloaded.info.metadata['sources']['train']['form'] == layout.FORM_TARBALL
  assert reloaded.info.metadata['sources']['train']['method'] == layout.method()


@pytest.mark.slow
def test_folders_build_the_same_dataset_in_the_same_order(built_24, folders, tmp_path):
  builder = prepare(builder_for(24, tmp_path), folders)
  assert builder.info.metadata['sources']['validation']['form'] == layout.FORM_FOLDERS
  for split in ('train', 'validation'):
    got, want = read_split(builder, split), read_split(built_24, split)
    assert [label for _, label in got] == [label for _, label in want]
    for (image, _), (image_want, _) in zip(got, want):
      np.testing.assert_array_equal(image, image_want)


@pytest.mark.slow
def test_beam_build_matches(built_24, tarballs, tmp_path, monkeypatch):
  beam_splits = []
  beam_examples = split_examples.beam_examples

  def spy(source, *args, **kwargs):
    beam_splits.append(source.split)
    return beam_examples(source, *args, **kwargs)

  monkeypatch.setattr(split_examples, 'beam_examples', spy)
  builder = prepare(builder_for(24, tmp_path), tarballs, beam_runner='DirectRunner')
  assert sorted(beam_splits) == ['train', 'validation']
  for split in ('train', 'validation'):
    assert as_sorted(read_split(builder, split)) == as_sorted(read_split(built_24, split))


@pytest.mark.slow
def test_draft_config(tiny, tarballs, tmp_path):
  builder = prepare(builder_for(24, tmp_path, jpeg_draft=True), tarballs)
  assert builder.info.config_name == '24x24_ilsvrc2012_draft'
  assert builder.info.metadata['sources']['train']['method'] == layout.method(draft=True)
  # Validation images (under 48 pixels high) are decoded at full scale.
  assert all(Image.open(io.BytesIO(data)).size[1] < 48 for _, data in tiny.val)
  assert_split_matches(builder, tiny.expected(24), 'validation')


@pytest.mark.slow
def test_unpublished_size_without_imagenet(tmp_path):
  (tmp_path / 'manual').mkdir()
  (tmp_path / 'manual' / 'notes.txt').write_text('nothing here')
  with pytest.raises(SourceError) as e:
    prepare(builder_for(24, tmp_path / 'data'), tmp_path / 'manual')
  assert str(e.value) == (
      'No ILSVRC2012 images for imagenet_resized/24x24_ilsvrc2012: expected'
      f' {finding.expected_sources()} in the manual_dir; looked in:'
      f' {tmp_path / "manual"}'
  )


@pytest.mark.slow
def test_tfds_build_cli_reaches_ilsvrc2012_configs(tiny, tarballs, tmp_path):
  """By registered name, and any size as a JSON config (TFDS's CLI syntax)."""
  data = tmp_path / 'data'
  for config in ('16x16_ilsvrc2012', '{"size": 20, "source": "ilsvrc2012"}'):
    run([TFDS_CLI, 'build', 'imagenet_resized', '--imports', 'imagenet_resized',
         '--config', config, '--manual_dir', tarballs, '--data_dir', str(data)],
        cwd=tmp_path)
  for size in (16, 20):
    builder = builder_for(size, data)
    assert builder.is_prepared() and builder.info.config_name == f'{size}x{size}_ilsvrc2012'
    for split in ('train', 'validation'):
      assert_split_matches(builder, tiny.expected(size), split)
