"""Every `tfds build` flag users type, through the real command line.

Users run

    tfds build imagenet_resized --imports imagenet_resized --config 8x8 \\
        --manual_dir DIR --data_dir OUT [flags]

Each test here runs that command (the venv's `tfds`, in a fresh process, as a
user would) with one or a few flags, and, wherever TFDS's own builder takes the
same flag, also TFDS's own `imagenet_resized` builder through the same command
line: `tfds build imagenet_resized --imports tfds_local_download ...` with
`tests/` on PYTHONPATH and without importing this package, so the name is
TFDS's builder, its downloads served from local files
(tests/tfds_local_download.py). Which builder wrote a dataset is read from its
dataset_info.json (`moduleName`): both builders' 8x8 configs are version
0.1.0 (TFDS's class says 0.1.1; its configs pin 0.1.0).

The flags: --max_examples_per_split, --max_shard_size_mb,
--nondeterministic_order, --file_format parquet and array_record, --overwrite
with --num_shards, --beam_pipeline_options (ours only), --config_idx,
--add_name_to_manual_dir, --publish_dir, --fail_if_exists (on an empty and on
an existing build), --update_metadata_only; and `tfds convert_format`.

The results are compared: decoded examples in TFDS's index order (read by
TFDS's own `tfds.builder_from_directory`, the shards one after another), split
sizes, shard lengths and the files written; and with the sources, read here
with zipfile and numpy, in the order of TFDS's md5 hash of the keys.

The two builders' `tfds` processes of a test run side by side. Builds that
several tests read are made once per test session, by whichever pytest-xdist
worker asks first (the other waits for it on a file lock).
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import hashlib
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import warnings
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

import imagenet_resized
from conftest import (
    REPO, TFDS_CLI, assert_same_examples, batched_arrays, run, source_examples,
    tfds_index_order,
)
from imagenet_resized.tools import fake

# Every test here runs `tfds` processes.
pytestmark = pytest.mark.slow

SIZE = 8
CONFIG = f'{SIZE}x{SIZE}'
VERSION = '0.1.0'
TRAIN_BATCHES, PER_BATCH, VAL_ROWS = 3, 700, 300
SPLIT_ROWS = {'train': TRAIN_BATCHES * PER_BATCH, 'validation': VAL_ROWS}
BOTH = ('ours', 'theirs')
OURS = 'imagenet_resized.imagenet_resized_dataset_builder'
THEIRS = 'tensorflow_datasets.datasets.imagenet_resized.imagenet_resized_dataset_builder'
TESTS = REPO / 'tests'
# tests/tfds_local_download.py: where it serves downloads from, and where it
# lists what it served (not imported here: it replaces TFDS's downloader).
LOCAL_DOWNLOADS = 'IMAGENET_RESIZED_LOCAL_DOWNLOADS'
LOCAL_DOWNLOADS_LOG = 'IMAGENET_RESIZED_LOCAL_DOWNLOADS_LOG'
MAX_EXAMPLES = 50
# --max_examples_per_split: a first train batch far larger than the others,
# so that a builder reading batches side by side gets the others' rows first.
SKEWED_TRAIN_ROWS, SKEWED_VAL_ROWS = (6000, 60, 60), 60
NUM_SHARDS = 3
# --max_shard_size_mb: a 32x32 train split of noise pictures (PNG cannot
# shrink them), well over 2 MiB of examples.
BIG_SIZE, BIG_ROWS, MAX_SHARD_MB = 32, 900, 1
BIG_CONFIG = f'{BIG_SIZE}x{BIG_SIZE}'


# ---------------------------------------------------------------------------
# Running `tfds`.


def tfds_build(builder: str, data_dir, *flags, manual_dir=None, config=CONFIG,
               check: bool = True, log=None) -> subprocess.CompletedProcess:
  """`tfds build imagenet_resized --data_dir DATA_DIR [--config C] FLAGS`.

  Args:
    builder: 'ours' (`--imports imagenet_resized`, run by conftest.run, no
      PYTHONPATH) or 'theirs' (TFDS's builder: `--imports tfds_local_download`,
      tests/ on PYTHONPATH).
    data_dir: the `--data_dir`.
    *flags: more command line arguments.
    manual_dir: ours: the `--manual_dir`; theirs: where its downloads are
      served from (if None, from the manual folder the flags name).
    config: the `--config`, None for none.
    check: assert that the command succeeds.
    log: theirs: a file where the helper lists the URLs it served.

  Returns:
    The finished process (stdout and stderr as text).
  """
  data_dir = pathlib.Path(data_dir)
  args = [TFDS_CLI, 'build', 'imagenet_resized', '--data_dir', str(data_dir)]
  if config:
    args += ['--config', config]
  if builder == 'ours':
    args += ['--imports', 'imagenet_resized']
    if manual_dir:
      args += ['--manual_dir', str(manual_dir)]
    return run(args + [str(f) for f in flags], cwd=data_dir.parent, check=check)
  assert builder == 'theirs', builder
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=str(TESTS))
  for name in (LOCAL_DOWNLOADS, LOCAL_DOWNLOADS_LOG):
    env.pop(name, None)
  if manual_dir:
    env[LOCAL_DOWNLOADS] = str(manual_dir)
  if log:
    env[LOCAL_DOWNLOADS_LOG] = str(log)
  args += ['--imports', 'tfds_local_download']
  proc = subprocess.run(
      args + [str(f) for f in flags], cwd=data_dir.parent, env=env,
      capture_output=True, text=True, check=False,
  )
  if check:
    assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def for_both(run_one) -> dict:
  """{builder: run_one(builder)} for ours and TFDS's, run side by side."""
  with concurrent.futures.ThreadPoolExecutor(len(BOTH)) as pool:
    futures = {who: pool.submit(run_one, who) for who in BOTH}
  return {who: future.result() for who, future in futures.items()}


def version_dir(data_dir, config=CONFIG) -> pathlib.Path:
  return pathlib.Path(data_dir) / 'imagenet_resized' / config / VERSION


def info_json(data_dir, config=CONFIG) -> dict:
  with open(version_dir(data_dir, config) / 'dataset_info.json') as f:
    return json.load(f)


def assert_written_by(data_dir, module: str, config=CONFIG) -> None:
  assert info_json(data_dir, config)['moduleName'] == module


# ---------------------------------------------------------------------------
# Reading what was written, with TFDS's own reader (no builder class).


def tfds_reader(data_dir, config=CONFIG):
  return tfds.builder_from_directory(str(version_dir(data_dir, config)))


def index_order(data_dir, split: str, config=CONFIG, via='auto'):
  """(images, labels) of a built split in TFDS's index order (see conftest)."""
  return tfds_index_order(tfds_reader(data_dir, config), split, via)


def as_multiset(found) -> list[tuple[bytes, int]]:
  images, labels = found
  return sorted((image.tobytes(), int(label)) for image, label in zip(images, labels))


def shard_lengths(data_dir, config=CONFIG) -> dict[str, list[int]]:
  splits = tfds_reader(data_dir, config).info.splits
  return {s: list(splits[s].shard_lengths) for s in SPLIT_ROWS}


def shard_files(data_dir, config=CONFIG) -> list[str]:
  return sorted(
      n for n in os.listdir(version_dir(data_dir, config)) if n.startswith('imagenet_resized-')
  )


def in_hash_order(examples: list, split: str):
  """(key, image, label) triples as (images, labels) in TFDS's order: by the
  md5 of split name + key (TFDS's Hasher), reimplemented with hashlib."""
  def hashed(example):
    return int(hashlib.md5(split.encode() + example[0].encode()).hexdigest(), 16)
  ordered = sorted(examples, key=hashed)
  return (
      np.stack([image for _, image, _ in ordered]),
      np.array([label for _, _, label in ordered], np.int64),
  )


def files_state(folder) -> dict[str, tuple[int, int]]:
  """{relative path: (size, mtime_ns)} of every file under `folder`."""
  state = {}
  for root, _, files in os.walk(folder):
    for name in files:
      st = os.stat(os.path.join(root, name))
      state[os.path.relpath(os.path.join(root, name), folder)] = (st.st_size, st.st_mtime_ns)
  return state


# ---------------------------------------------------------------------------
# Sources and builds shared by the tests (once per session, across workers).


def _shared_root(tmp_path_factory) -> pathlib.Path:
  """A folder all xdist workers of this session share (each worker's basetemp
  is a folder of the session's); the basetemp itself without xdist."""
  base = tmp_path_factory.getbasetemp()
  if os.environ.get('PYTEST_XDIST_WORKER'):
    base = base.parent
  root = base / 'tfds_build_flags'
  root.mkdir(exist_ok=True)
  return root


def _once(root: pathlib.Path, name: str, make) -> pathlib.Path:
  """root/name, made by `make(folder)` unless made already: the first worker
  to ask makes it; another one waits for it on the lock, then finds it."""
  folder = root / name
  with open(root / f'{name}.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # Released when the file closes.
    if not (root / f'{name}.done').exists():
      shutil.rmtree(folder, ignore_errors=True)
      folder.mkdir()
      make(folder)
      (root / f'{name}.done').touch()
  return folder


def _write_zips(folder: pathlib.Path, size: int, train: list, val: dict) -> None:
  """The authors' two npz zips of `size` (train members in their folder)."""
  train_zip = f'Imagenet{size}_train_npz.zip'
  with zipfile.ZipFile(folder / train_zip, 'w', zipfile.ZIP_DEFLATED) as zf:
    for k, batch in enumerate(train, 1):
      name = f'{train_zip.removesuffix(".zip")}/train_data_batch_{k}.npz'
      zf.writestr(name, fake.npz_bytes(batch))
  with zipfile.ZipFile(folder / f'Imagenet{size}_val_npz.zip', 'w', zipfile.ZIP_DEFLATED) as zf:
    zf.writestr('val_data.npz', fake.npz_bytes(val))


def _write_sources(folder: pathlib.Path) -> None:
  """manual/: the sources. named/imagenet_resized/: the same; named/: other
  sources (a decoy). skewed/: a large first train batch, for
  --max_examples_per_split. big/: 32x32 noise pictures, for
  --max_shard_size_mb."""
  kwargs = dict(
      train_batches=TRAIN_BATCHES, examples_per_batch=PER_BATCH, val_examples=VAL_ROWS
  )
  fake.write_sources(str(folder / 'manual'), SIZE, seed=5, **kwargs)
  (folder / 'named' / 'imagenet_resized').mkdir(parents=True)
  for name in os.listdir(folder / 'manual'):
    os.link(folder / 'manual' / name, folder / 'named' / 'imagenet_resized' / name)
  fake.write_sources(str(folder / 'named'), SIZE, seed=6, **kwargs)
  rng = np.random.default_rng([SIZE, *SKEWED_TRAIN_ROWS])
  (folder / 'skewed').mkdir()
  _write_zips(
      folder / 'skewed', SIZE, [fake.make_batch(rng, n, SIZE) for n in SKEWED_TRAIN_ROWS],
      fake.make_batch(rng, SKEWED_VAL_ROWS, SIZE),
  )

  def noise(rows):
    pictures = rng.integers(0, 256, size=(rows, BIG_SIZE, BIG_SIZE, 3), dtype=np.uint8)
    return {'data': fake.images_to_rows(pictures), 'labels': rng.integers(1, 1001, size=rows)}

  (folder / 'big').mkdir()
  _write_zips(folder / 'big', BIG_SIZE, [noise(BIG_ROWS)], noise(20))


@pytest.fixture(scope='module')
def shared(tmp_path_factory) -> pathlib.Path:
  return _shared_root(tmp_path_factory)


@pytest.fixture(scope='module')
def sources(shared) -> pathlib.Path:
  return _once(shared, 'sources', _write_sources)


@pytest.fixture(scope='module')
def manual(sources) -> pathlib.Path:
  return sources / 'manual'


@pytest.fixture(scope='module')
def bases(shared, manual) -> dict[str, pathlib.Path]:
  """{builder: data_dir} of the builds without flags."""
  def make(folder):
    log = folder / 'theirs.downloads'
    for_both(lambda who: tfds_build(
        who, folder / who, manual_dir=manual, log=log if who == 'theirs' else None
    ))
  folder = _once(shared, 'bases', make)
  return {who: folder / who for who in BOTH}


@pytest.fixture(scope='module')
def base_order(bases) -> dict:
  """{split: (images, labels)} of ours without flags, in index order."""
  return {split: index_order(bases['ours'], split) for split in SPLIT_ROWS}


def copies_of(bases, tmp_path) -> dict[str, pathlib.Path]:
  """{builder: a copy of its data_dir without flags} (for tests that change it)."""
  return {who: shutil.copytree(bases[who], tmp_path / who) for who in BOTH}


# ---------------------------------------------------------------------------
# What is built (tests that need no build without flags come first: pytest-xdist
# hands them out while one worker makes that build).


def test_max_examples_per_split(sources, tmp_path):
  """The first examples the archives hold, as TFDS's builder takes them: the
  first train batch's first rows (the first batch is far larger than the
  others here, so that rows of a later batch that arrive first would show)."""
  skewed = sources / 'skewed'
  for_both(lambda who: tfds_build(
      who, tmp_path / who, '--max_examples_per_split', MAX_EXAMPLES, manual_dir=skewed
  ))
  assert_written_by(tmp_path / 'theirs', THEIRS)
  assert shard_lengths(tmp_path / 'ours') == shard_lengths(tmp_path / 'theirs') == {
      split: [MAX_EXAMPLES] for split in SPLIT_ROWS
  }
  for split in SPLIT_ROWS:
    first = in_hash_order(source_examples(skewed, SIZE, split)[:MAX_EXAMPLES], split)
    assert_same_examples(index_order(tmp_path / 'theirs', split), first, f'theirs, {split}')
    assert_same_examples(index_order(tmp_path / 'ours', split), first, f'ours, {split}')


def test_max_shard_size_mb(sources, tmp_path):
  """A train split of over 2 MiB with `--max_shard_size_mb 1`: ours writes the
  shards TFDS's builder writes. (tensorflow-datasets 4.9.10 ignores the flag:
  `ShardConfig.calculate_number_shards` is a classmethod that reads the class's
  default sizes, not the instance's; a warning says so when it happens.)"""
  for_both(lambda who: tfds_build(
      who, tmp_path / who, '--max_shard_size_mb', MAX_SHARD_MB,
      manual_dir=sources / 'big', config=BIG_CONFIG,
  ))
  ours, theirs = tmp_path / 'ours', tmp_path / 'theirs'
  assert_written_by(theirs, THEIRS, BIG_CONFIG)
  lengths = shard_lengths(ours, BIG_CONFIG)
  assert lengths == shard_lengths(theirs, BIG_CONFIG)
  assert shard_files(ours, BIG_CONFIG) == shard_files(theirs, BIG_CONFIG)
  for split in SPLIT_ROWS:
    assert_same_examples(
        index_order(ours, split, BIG_CONFIG), index_order(theirs, split, BIG_CONFIG), split
    )
  train_bytes = sum(
      os.path.getsize(version_dir(ours, BIG_CONFIG) / name)
      for name in shard_files(ours, BIG_CONFIG) if '-train.' in name
  )
  wanted = math.ceil(train_bytes / (MAX_SHARD_MB << 20))
  assert wanted >= 2, train_bytes  # The flag matters for this split.
  if len(lengths['train']) < wanted:
    warnings.warn(
        f'tensorflow-datasets {tfds.__version__} ignored --max_shard_size_mb'
        f' {MAX_SHARD_MB}: {train_bytes} bytes of train examples in'
        f' {len(lengths["train"])} shard(s), with both builders',
        stacklevel=1,  # Where the test is: it reports what it saw.
    )


def test_nondeterministic_order_builds_the_same_examples(manual, tmp_path):
  """The examples of the sources, in any order."""
  for_both(lambda who: tfds_build(
      who, tmp_path / who, '--nondeterministic_order', manual_dir=manual
  ))
  assert_written_by(tmp_path / 'theirs', THEIRS)
  for split in SPLIT_ROWS:
    want = as_multiset(in_hash_order(source_examples(manual, SIZE, split), split))
    for who in BOTH:
      assert info_json(tmp_path / who).get('nondeterministicOrder') is True, who
      assert sum(shard_lengths(tmp_path / who)[split]) == SPLIT_ROWS[split], who
      assert as_multiset(index_order(tmp_path / who, split)) == want, (who, split)


# ---------------------------------------------------------------------------
# Parquet.


def parquet_rows(data_dir) -> dict[str, int]:
  """Rows of each split's parquet files, read with pyarrow."""
  import pyarrow.parquet as pq
  rows = dict.fromkeys(SPLIT_ROWS, 0)
  for name in shard_files(data_dir):
    split = name.split('-')[1].split('.')[0]
    rows[split] += pq.read_metadata(version_dir(data_dir) / name).num_rows
  return rows


def test_file_format_parquet_with_tfds_builder(manual, tmp_path):
  """TFDS's builder in parquet, as tensorflow-datasets does it: the build
  succeeds and its info declares every example; the rows its files hold are
  reported in a warning where they fall short (4.9.10 loses rows), not
  asserted."""
  data_dir = tmp_path / 'theirs'
  tfds_build('theirs', data_dir, '--file_format', 'parquet', manual_dir=manual)
  assert_written_by(data_dir, THEIRS)
  assert info_json(data_dir)['fileFormat'] == 'parquet'
  assert shard_lengths(data_dir) == {s: [n] for s, n in SPLIT_ROWS.items()}
  rows = parquet_rows(data_dir)
  if rows != SPLIT_ROWS:
    warnings.warn(
        f"TFDS's own builder on tensorflow-datasets {tfds.__version__} wrote"
        f' parquet files holding {rows} rows; its info declares {SPLIT_ROWS}',
        stacklevel=1,  # Where the test is: it reports what it saw.
    )


def test_file_format_parquet_holds_every_example(manual, bases, base_order, tmp_path):
  """Ours in parquet: every example (tensorflow-datasets 4.9.10's own parquet
  writer loses rows past its first batch), read back by tfds.load and by index
  as our TFRecord build and TFDS's builder's TFRecord build hold them."""
  data_dir = tmp_path / 'ours'
  tfds_build('ours', data_dir, '--file_format', 'parquet', manual_dir=manual)
  assert info_json(data_dir)['fileFormat'] == 'parquet'
  assert shard_lengths(data_dir) == {s: [n] for s, n in SPLIT_ROWS.items()}
  assert parquet_rows(data_dir) == SPLIT_ROWS
  for split in SPLIT_ROWS:
    loaded = batched_arrays(tfds.load(
        f'imagenet_resized/{CONFIG}', split=split, data_dir=str(data_dir),
        shuffle_files=False, batch_size=1024,
        read_config=tfds.ReadConfig(interleave_cycle_length=1),
    ))
    assert_same_examples(loaded, base_order[split], f'tfds.load, {split}')
    assert_same_examples(
        index_order(data_dir, split, via='dataset'), index_order(bases['theirs'], split),
        f"against TFDS's builder's TFRecord build, {split}",
    )
    assert_same_examples(
        index_order(data_dir, split, via='source'), base_order[split],
        f'as_data_source, {split}',
    )


# ---------------------------------------------------------------------------
# No flag.


def test_no_flag_builds_what_tfds_builder_builds(manual, bases, base_order):
  ours, theirs = bases['ours'], bases['theirs']
  assert_written_by(ours, OURS)
  assert_written_by(theirs, THEIRS)
  # TFDS's builder asked for the authors' zips: served from the sources.
  served = (theirs.parent / 'theirs.downloads').read_text().splitlines()
  assert [line.split('\t') for line in served] == [
      [f'http://www.image-net.org/data/downsample//{name}', str(manual / name)]
      for name in (f'Imagenet{SIZE}_train_npz.zip', f'Imagenet{SIZE}_val_npz.zip')
  ]
  assert shard_lengths(ours) == shard_lengths(theirs) == {
      split: [rows] for split, rows in SPLIT_ROWS.items()
  }
  for split in SPLIT_ROWS:
    assert_same_examples(base_order[split], index_order(theirs, split), split)
    want = in_hash_order(source_examples(manual, SIZE, split), split)
    assert_same_examples(base_order[split], want, f'{split}, sources')
  # The same files, and ours' metadata (sources, pixel statistics) besides.
  ours_files = set(os.listdir(version_dir(ours)))
  theirs_files = set(os.listdir(version_dir(theirs)))
  assert ours_files - theirs_files == {'metadata.json'} and theirs_files <= ours_files
  assert shard_files(ours) == shard_files(theirs) == [
      f'imagenet_resized-{split}.tfrecord-00000-of-00001' for split in sorted(SPLIT_ROWS)
  ]
  # Nothing left in the config folder but the version and the build lock.
  assert sorted(os.listdir(version_dir(ours).parent)) == [f'.{VERSION}.build.lock', VERSION]


# ---------------------------------------------------------------------------
# Shards, Beam.


def test_overwrite_rebuilds_an_existing_build_in_num_shards(manual, bases, base_order, tmp_path):
  """`--overwrite --num_shards 3` over a build in one shard: the old shards go,
  three come; the order of the examples does not depend on the shards."""
  data_dirs = copies_of(bases, tmp_path)
  for_both(lambda who: tfds_build(
      who, data_dirs[who], '--overwrite', '--num_shards', NUM_SHARDS, manual_dir=manual
  ))
  assert_written_by(data_dirs['theirs'], THEIRS)
  for who in BOTH:
    assert shard_files(data_dirs[who]) == sorted(
        f'imagenet_resized-{split}.tfrecord-{k:05d}-of-{NUM_SHARDS:05d}'
        for split in SPLIT_ROWS for k in range(NUM_SHARDS)
    ), who
  assert shard_lengths(data_dirs['ours']) == shard_lengths(data_dirs['theirs']) == {
      'train': [700, 700, 700], 'validation': [100, 100, 100]
  }
  for split in SPLIT_ROWS:
    ours = index_order(data_dirs['ours'], split)
    assert_same_examples(ours, index_order(data_dirs['theirs'], split), split)
    assert_same_examples(ours, base_order[split], f'{split}, against one shard')


def test_beam_pipeline_options_build_what_a_plain_build_does(
    manual, bases, base_order, tmp_path, monkeypatch):
  """Ours only: TFDS's builder has no Beam path.

  apache-beam 2.78's DirectRunner first tries to download its Prism runner
  from GitHub: HTTP(S)_PROXY at a closed local port makes that fail at once,
  network or not, and Beam falls back to its Python DirectRunner. absl's
  `--verbosity=0` has TFDS log (INFO, to stdout) which writer it took.
  """
  for name in ('HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy'):
    monkeypatch.setenv(name, 'http://127.0.0.1:9')
  for name in ('NO_PROXY', 'no_proxy'):
    monkeypatch.delenv(name, raising=False)
  proc = tfds_build(
      'ours', tmp_path / 'beam',
      '--beam_pipeline_options', 'runner=DirectRunner,direct_num_workers=1',
      '--verbosity=0', manual_dir=manual,
  )
  # TFDS's writer for Beam pipelines, once per split.
  assert proc.stdout.count('using BeamWriter') == len(SPLIT_ROWS), proc.stdout[-3000:]
  beam, plain = tmp_path / 'beam', bases['ours']
  assert shard_lengths(beam) == shard_lengths(plain)
  assert shard_files(beam) == shard_files(plain)
  for split in SPLIT_ROWS:
    assert_same_examples(index_order(beam, split), base_order[split], split)
  # The same bytes, and the same pixel statistics in the metadata.
  for name in shard_files(plain) + ['metadata.json']:
    assert (version_dir(beam) / name).read_bytes() == (
        version_dir(plain) / name
    ).read_bytes(), name


# ---------------------------------------------------------------------------
# Which config, where the sources are, where the result goes.


def test_config_idx_manual_and_publish_dirs_array_record(sources, base_order, tmp_path):
  """A first build with the flags of which config, where the sources are,
  where the result goes and in which format: `--config_idx 0 --manual_dir
  named --add_name_to_manual_dir --publish_dir P --file_format array_record
  --fail_if_exists` into an empty data_dir.

  The sources are read from named/imagenet_resized/ (named/ itself holds
  other sources; TFDS's builder reads the manual folder too here, through the
  helper's fallback); config 0 is 8x8 in both builders; --fail_if_exists lets
  a first build through; the published copy is the build, read by index.
  """
  with tfds.core.registered.skip_registration():
    from tensorflow_datasets.datasets.imagenet_resized import (
        imagenet_resized_dataset_builder as theirs_module,
    )
  assert imagenet_resized.Builder.BUILDER_CONFIGS[0].name == CONFIG
  assert theirs_module.Builder.BUILDER_CONFIGS[0].name == CONFIG
  named = sources / 'named'
  assert (named / 'imagenet_resized' / f'Imagenet{SIZE}_train_npz.zip').is_file()
  for_both(lambda who: tfds_build(
      who, tmp_path / who, '--config_idx', 0, '--manual_dir', named,
      '--add_name_to_manual_dir', '--publish_dir', tmp_path / f'{who}_published',
      '--file_format', 'array_record', '--fail_if_exists', config=None,
  ))
  assert_written_by(tmp_path / 'ours', OURS)
  assert_written_by(tmp_path / 'theirs', THEIRS)
  assert shard_files(tmp_path / 'ours') == shard_files(tmp_path / 'theirs') == [
      f'imagenet_resized-{split}.array_record-00000-of-00001' for split in sorted(SPLIT_ROWS)
  ]
  assert shard_lengths(tmp_path / 'ours') == shard_lengths(tmp_path / 'theirs')
  for who in BOTH:
    assert sorted(os.listdir(tmp_path / who / 'imagenet_resized')) == ['.config', CONFIG]
    built = version_dir(tmp_path / who)
    published = version_dir(tmp_path / f'{who}_published')
    assert sorted(os.listdir(published)) == sorted(os.listdir(built))
    for name in os.listdir(built):
      assert (published / name).read_bytes() == (built / name).read_bytes(), (who, name)
  for split in SPLIT_ROWS:
    decoy = in_hash_order(source_examples(named, SIZE, split), split)
    assert as_multiset(decoy) != as_multiset(base_order[split])
    for who in BOTH:
      assert_same_examples(
          index_order(tmp_path / f'{who}_published', split), base_order[split],
          f'{who} published, {split}',
      )
  # As users read it: by name (our builder), by index.
  source = tfds.data_source(
      f'imagenet_resized/{CONFIG}', split='validation',
      data_dir=str(tmp_path / 'ours_published'),
  )
  images, labels = base_order['validation']
  assert len(source) == len(labels)
  for i in (0, 1, len(labels) - 1):
    assert np.array_equal(source[i]['image'], images[i]) and source[i]['label'] == labels[i]


# ---------------------------------------------------------------------------
# Over an existing build.


def test_fail_if_exists_fails_on_an_existing_build(manual, bases, tmp_path):
  data_dirs = copies_of(bases, tmp_path)
  before = {who: files_state(data_dirs[who]) for who in BOTH}
  procs = for_both(lambda who: tfds_build(
      who, data_dirs[who], '--fail_if_exists', manual_dir=manual, check=False
  ))
  for who, proc in procs.items():
    assert proc.returncode != 0, who
    message = (
        'RuntimeError: The `fail_if_exists` flag was True and the data already'
        f' exists in {version_dir(data_dirs[who])}'
    )
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == message, proc.stderr[-2000:]
    # One error, no other exception on the way.
    raised = [x for x in lines if re.match(r'[\w.]*(Error|Exception)\b.*: ', x)]
    assert raised == [message], raised
    assert files_state(data_dirs[who]) == before[who], who


def test_update_metadata_only_rewrites_the_info_and_nothing_else(manual, bases, tmp_path):
  data_dirs = copies_of(bases, tmp_path)
  originals, before = {}, {}
  for who in BOTH:
    info_path = version_dir(data_dirs[who]) / 'dataset_info.json'
    originals[who] = json.loads(info_path.read_text())
    stale = dict(originals[who], description='stale', citation='stale')
    info_path.write_text(json.dumps(stale, indent=2))
    before[who] = files_state(version_dir(data_dirs[who]))
  for_both(lambda who: tfds_build(
      who, data_dirs[who], '--update_metadata_only', manual_dir=manual
  ))
  for who in BOTH:
    assert info_json(data_dirs[who]) == originals[who], who
    after = files_state(version_dir(data_dirs[who]))
    for name in shard_files(data_dirs[who]) + ['features.json', 'label.labels.txt']:
      assert after[name] == before[who][name], (who, name)
    for split in SPLIT_ROWS:
      assert_same_examples(
          index_order(data_dirs[who], split), index_order(bases[who], split), f'{who}, {split}'
      )
  # Our metadata (sources, pixel statistics) is kept.
  assert (version_dir(data_dirs['ours']) / 'metadata.json').read_bytes() == (
      version_dir(bases['ours']) / 'metadata.json'
  ).read_bytes()


def test_convert_format_to_array_record_in_place(bases, base_order, tmp_path):
  """`tfds convert_format` on our TFRecord build (TFDS's command: it reads
  the dataset's folder, no builder): array_record shards beside the TFRecord
  ones, read back by index."""
  data_dir = shutil.copytree(bases['ours'], tmp_path / 'ours')
  run([TFDS_CLI, 'convert_format', '--dataset_version_dir', str(version_dir(data_dir)),
       '--out_file_format', 'array_record'], cwd=tmp_path)
  info = info_json(data_dir)
  assert info['fileFormat'] == 'tfrecord'
  assert info['alternativeFileFormats'] == ['array_record']
  assert shard_files(data_dir) == sorted(
      f'imagenet_resized-{split}.{fmt}-00000-of-00001'
      for split in SPLIT_ROWS for fmt in ('array_record', 'tfrecord')
  )
  for split in SPLIT_ROWS:
    assert_same_examples(
        index_order(data_dir, split, via='source'), base_order[split], split
    )

  # By name (`tfds.data_source`: our builder class), as TFDS's own builder
  # class does on the same files. On tensorflow-datasets 4.9.10 neither sees
  # the converted files (a builder class reads no alternative formats; the
  # `builder_from_directory` above does); the two must agree.
  def outcome(make_source):
    try:
      source = make_source()
    except Exception as e:  # What a user sees, compared below.
      return type(e).__name__
    return [int(source[i]['label']) for i in range(len(source))]

  with tfds.core.registered.skip_registration():
    from tensorflow_datasets.datasets.imagenet_resized import (
        imagenet_resized_dataset_builder as theirs_module,
    )
  ours = outcome(lambda: tfds.data_source(
      f'imagenet_resized/{CONFIG}', split='validation', data_dir=str(data_dir)
  ))
  theirs = outcome(lambda: theirs_module.Builder(
      config=CONFIG, data_dir=str(data_dir)
  ).as_data_source(split='validation'))
  assert ours == theirs
