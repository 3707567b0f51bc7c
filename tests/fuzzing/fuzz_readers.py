"""Fuzzing the readers of untrusted files: pickle batch, npz batch, ILSVRC tar.

The contract: whatever the bytes, a reader yields its rows or stops with a
SourceError of one line. Anything else is a finding: another exception, a
message of several lines, a legitimate file refused or read wrong, a death by
signal, a hang (libFuzzer's -timeout), memory past libFuzzer's -rss_limit_mb.

Readers (targets), each run on the bytes as the build would run it:
  pickle   pickle_batches.iter_pickle_chunks on the bytes as an extracted batch,
           twice: strings read while parsing, and the arrays' bytes left in
           the file (read later in blocks, as a large batch's pixels are);
  npz      npz_batches.iter_npz_chunks on the bytes as an extracted npz, and
           the bounded copy out of a deflated member (npz_spool.copy_npz)
           followed by the same read of the copy; seeds with stored,
           deflated, bzip2 and LZMA members, and hostile ones (bzip2 and
           LZMA members inflating past their declared size, a deflate64
           member);
  tar      the bytes as ILSVRC2012_img_val.tar and ILSVRC2012_img_train.tar,
           read in stream mode (every image decoded and box-resized) and cut
           into Beam work units (random-access mode).

Engines:
  atheris     coverage-guided byte mutation (libFuzzer), seeded with valid
              files written by imagenet_resized.tools.fake; needs `pip install
              -e '.[fuzz]'`. Exceptions are caught and tallied, so one run
              counts every distinct finding; a signal or a hang ends the run.
  hypothesis  structured: well-formed pickles (every protocol, Python 2 and
              3 opcodes) and npz files of random values (dtypes, shapes,
              nesting, labels); an accepted file must read as the values it
              was written from, a legitimate batch must be accepted.
  mutate      deterministic seeded byte edits of the seeds (CI runs a slice of
              this and of the hypothesis strategies: tests/test_fuzz_slice.py).

    python tests/fuzzing/fuzz_readers.py atheris --reader pickle --seconds 900 \
        --out /tmp/fuzz/pickle
    python tests/fuzzing/fuzz_readers.py hypothesis --reader npz --seconds 300 \
        --out /tmp/fuzz/npz-hypothesis
    python tests/fuzzing/fuzz_readers.py mutate --reader tar --count 2000 \
        --out /tmp/fuzz/tar-mutate

Each run writes `summary.json` in --out (executions, outcomes, distinct
findings with one input each under findings/, peak RSS, the five slowest
inputs under slowest/), rewritten as it goes; `retime` times those slowest
inputs again, alone:

    python tests/fuzzing/fuzz_readers.py retime --reader pickle --out /tmp/fuzz/pickle
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import os
import pickle
import random
import resource
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator

import numpy as np

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TESTS)
for _path in (REPO, TESTS):  # The package, and the tests' fake_helpers.
  if _path not in sys.path:
    sys.path.insert(0, _path)

READERS = ('pickle', 'npz', 'tar')
SLOWEST_KEPT = 5
SIZE = 8  # The config the batches are read for.
CHUNK_ROWS = 3
# Pickle string bytes read while parsing: the build's budget, and none (only
# the short strings, names and keys, are read; the arrays' bytes are not).
EAGER_BYTES = (16 << 20, 0)


# ---------------------------------------------------------------------------
# Seeds: valid files, as the authors' and ImageNet's are laid out.


def _batch(rows: int, seed: int = 0) -> dict:
  from imagenet_resized.tools import fake
  batch = fake.make_batch(np.random.default_rng(seed), rows, SIZE)
  batch['mean'] = batch['data'].mean(axis=0)
  return batch


def pickle_seeds() -> list[bytes]:
  """Python 2 pickles (protocols 0-2) and Python 3 ones (2-5), lists and arrays."""
  from imagenet_resized.tools import fake
  batch = _batch(3)
  seeds = [fake.py2_pickle_bytes(batch, protocol) for protocol in (0, 1, 2)]
  for protocol in (2, 3, 4, 5):
    for labels in (batch['labels'], batch['labels'].tolist()):
      seeds.append(pickle.dumps({**batch, 'labels': labels}, protocol=protocol))
  return seeds


class UnseekableStream(io.RawIOBase):
  """A write-only stream: zipfile puts sizes after each member's data."""

  def __init__(self):
    super().__init__()
    self.buffer = io.BytesIO()

  def writable(self) -> bool:
    return True

  def write(self, data) -> int:
    return self.buffer.write(data)


def npz_seeds() -> list[bytes]:
  """np.savez (to a file, and to a stream), np.savez_compressed."""
  from imagenet_resized.tools import fake
  batch = _batch(3)
  compressed, stream = io.BytesIO(), UnseekableStream()
  np.savez_compressed(compressed, **batch)
  np.savez(stream, **batch)
  return [fake.npz_bytes(batch), fake.npz_bytes({k: batch[k] for k in ('labels', 'data')}),
          compressed.getvalue(), stream.buffer.getvalue()]


def _npz_of(batch: dict, method: int, extra_zeros: int = 0) -> bytes:
  """An npz whose members zipfile compresses with `method` (bzip2, LZMA);
  with `extra_zeros`, data.npy's stream holds that many zero bytes more than
  its zip headers declare (a bomb: refused, in bounded memory)."""
  import zipfile
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, 'w', method) as zf:
    for key in ('data', 'labels'):
      member = io.BytesIO()
      np.lib.format.write_array(member, np.asarray(batch[key]), allow_pickle=False)
      declared = len(member.getvalue())
      member.write(bytes(extra_zeros))
      zf.writestr(key + '.npy', member.getvalue())
      if extra_zeros and key == 'data':
        zf.infolist()[-1].file_size = declared  # Written in the directory.
  data = bytearray(buf.getvalue())
  if extra_zeros:  # The local header's size too (offset 22).
    data[22:26] = struct.pack('<I', zf.infolist()[0].file_size)
  return bytes(data)


def _with_method(npz: bytes, method: int) -> bytes:
  """`npz` (stored members) with every header declaring `method`."""
  data = bytearray(npz)
  for signature, offset in ((b'PK\x03\x04', 8), (b'PK\x01\x02', 10)):
    at = data.find(signature)
    while at >= 0:
      data[at + offset : at + offset + 2] = struct.pack('<H', method)
      at = data.find(signature, at + 4)
  return bytes(data)


def npz_compression_seeds() -> list[bytes]:
  """Valid npz files with bzip2 and LZMA members (read whole)."""
  import zipfile
  batch = _batch(3)
  return [_npz_of(batch, zipfile.ZIP_BZIP2), _npz_of(batch, zipfile.ZIP_LZMA)]


def npz_hostile_seeds() -> list[bytes]:
  """Refused npz files the mutations start from too: bzip2 and LZMA members
  inflating 16 MiB past their declared size, a deflate64 member (a method
  zipfile cannot read)."""
  import zipfile
  from imagenet_resized.tools import fake
  batch = _batch(3)
  return [
      _npz_of(batch, zipfile.ZIP_BZIP2, 16 << 20),
      _npz_of(batch, zipfile.ZIP_LZMA, 16 << 20),
      _with_method(fake.npz_bytes(batch), 9),
  ]


def _jpeg(image: np.ndarray, mode: str = 'RGB', fmt: str = 'JPEG') -> bytes:
  from PIL import Image
  buf = io.BytesIO()
  Image.fromarray(image).convert(mode).save(buf, format=fmt)
  return buf.getvalue()


def tar_seeds() -> list[bytes]:
  """A validation tar of three images and a train tar of two class tars."""
  import fake_helpers
  from imagenet_resized.tools import fake
  from imagenet_resized import labels
  images = fake.make_images(np.random.default_rng(1), 4, 16)
  val = fake_helpers.tar_bytes([
      ('ILSVRC2012_val_00000001.JPEG', _jpeg(images[0])),
      ('ILSVRC2012_val_00000002.JPEG', _jpeg(images[1], 'L')),
      ('ILSVRC2012_val_00000003.JPEG', _jpeg(images[2], 'RGB', 'PNG')),
  ])
  classes = [
      (f'{labels.WNIDS[k]}.tar', fake_helpers.tar_bytes(
          [(f'{labels.WNIDS[k]}_{i}.JPEG', _jpeg(images[k + i])) for i in (1, 2)]
      ))
      for k in (0, 1)
  ]
  return [val, fake_helpers.tar_bytes(classes)]


SEEDS: dict[str, Callable[[], list[bytes]]] = {
    'pickle': pickle_seeds,
    'npz': lambda: npz_seeds() + npz_compression_seeds(),
    'tar': tar_seeds,
}
# Refused files the mutations and atheris's corpus start from as well.
HOSTILE_SEEDS: dict[str, Callable[[], list[bytes]]] = {
    'npz': npz_hostile_seeds,
}


def all_seeds(reader: str) -> list[bytes]:
  return SEEDS[reader]() + HOSTILE_SEEDS.get(reader, list)()


# ---------------------------------------------------------------------------
# Targets: the readers, as the build runs them. Each returns rows read.


def _consume(chunks) -> int:
  return sum(len(c.images) for c in chunks)


def read_pickle(data: bytes) -> Iterator[Callable[[], int]]:
  """Read twice: with the build's budget of string bytes read while parsing
  (every string of a small file is read then), and with one that leaves the
  arrays' bytes in the file, read later and decoded in blocks."""
  from imagenet_resized.readers import pickle_batches
  for eager_bytes in EAGER_BYTES:
    yield lambda eager_bytes=eager_bytes: _consume(pickle_batches.iter_pickle_chunks(
        io.BytesIO(data), 'fuzz', SIZE, CHUNK_ROWS, eager_bytes=eager_bytes))


def read_npz(data: bytes) -> Iterator[Callable[[], int]]:
  from imagenet_resized.readers import npz_spool
  from imagenet_resized.readers import npz_batches
  yield lambda: _consume(npz_batches.iter_npz_chunks(io.BytesIO(data), 'fuzz', SIZE, CHUNK_ROWS))

  def through_copy() -> int:
    copy = io.BytesIO()
    npz_spool.copy_npz(io.BytesIO(data), copy, 'fuzz', len(data))
    copy.seek(0)
    return _consume(npz_batches.iter_npz_chunks(copy, 'fuzz', SIZE, CHUNK_ROWS))
  yield through_copy


def read_tar(data: bytes) -> Iterator[Callable[[], int]]:
  from imagenet_resized.ilsvrc import finding, layout, resizing, split_examples
  folder = tempfile.mkdtemp(dir='/dev/shm' if os.path.isdir('/dev/shm') else None)
  try:
    for split, name in (('validation', layout.VAL_TAR), ('train', layout.TRAIN_TAR)):
      path = os.path.join(folder, name)
      with open(path, 'wb') as f:
        f.write(data)
      source = finding.SplitImages(split, layout.FORM_TARBALL, (path,))

      def units(source=source) -> int:
        n = 0
        for unit in split_examples.work_units(source):
          for item in unit.images():
            resizing.resize_image(item.data, item.where, SIZE)
            n += 1
        return n

      yield units
  finally:
    for name in os.listdir(folder):
      os.remove(os.path.join(folder, name))
    os.rmdir(folder)


TARGETS = {'pickle': read_pickle, 'npz': read_npz, 'tar': read_tar}


# ---------------------------------------------------------------------------
# The tally of outcomes.


def _signature(e: BaseException) -> str:
  """A finding's identity: exception type and the innermost frame of ours
  (or the innermost frame) where it was raised."""
  frames = traceback.extract_tb(e.__traceback__)
  ours = [f for f in frames if f'{os.sep}imagenet_resized{os.sep}' in f.filename]
  frame = (ours or frames or [None])[-1]
  where = f'{os.path.basename(frame.filename)}:{frame.lineno}' if frame else '?'
  return f'{type(e).__name__} at {where}'


@dataclasses.dataclass
class Tally:
  """Outcomes of a run, written to `out`/summary.json as it goes."""

  reader: str
  engine: str
  out: str | None = None
  executions: int = 0
  accepted: int = 0
  refused: int = 0
  findings: dict = dataclasses.field(default_factory=dict)
  slowest: list = dataclasses.field(default_factory=list)  # (seconds, sha)
  started: float = dataclasses.field(default_factory=time.time)
  _last_write: float = 0.0

  def finding(self, signature: str, detail: str, data: bytes) -> None:
    entry = self.findings.setdefault(signature, {'count': 0, 'detail': detail})
    entry['count'] += 1
    if entry['count'] == 1 and self.out:
      os.makedirs(os.path.join(self.out, 'findings'), exist_ok=True)
      name = hashlib.sha256(data).hexdigest()[:16]
      with open(os.path.join(self.out, 'findings', name), 'wb') as f:
        f.write(data)
      entry['input'] = f'findings/{name}'
    self.write(force=entry['count'] == 1)

  def timed(self, seconds: float, data: bytes) -> None:
    """Keeps the SLOWEST_KEPT slowest inputs (under out/slowest/)."""
    if self.executions == 1:
      return  # The first input also pays for importing the readers.
    if len(self.slowest) == SLOWEST_KEPT and seconds <= self.slowest[-1][0]:
      return
    sha = hashlib.sha256(data).hexdigest()[:16]
    if any(sha == kept for _, kept in self.slowest):
      return
    self.slowest = sorted([*self.slowest, (seconds, sha)], reverse=True)
    dropped = self.slowest[SLOWEST_KEPT:]
    self.slowest = self.slowest[:SLOWEST_KEPT]
    if self.out:
      folder = os.path.join(self.out, 'slowest')
      os.makedirs(folder, exist_ok=True)
      with open(os.path.join(folder, sha), 'wb') as f:
        f.write(data)
      for _, old in dropped:
        os.remove(os.path.join(folder, old))

  def summary(self) -> dict:
    return {
        'reader': self.reader, 'engine': self.engine,
        'executions': self.executions, 'accepted': self.accepted,
        'refused': self.refused,
        'findings': self.findings,
        'exceptions_outside_contract': sum(f['count'] for f in self.findings.values()),
        'distinct_findings': len(self.findings),
        'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        'slowest': [
            {'seconds': round(t, 3), 'input': f'slowest/{sha}'} for t, sha in self.slowest
        ],
        'seconds': round(time.time() - self.started, 1),
    }

  def write(self, force: bool = False) -> None:
    if not self.out or (not force and time.time() - self._last_write < 2):
      return
    self._last_write = time.time()
    os.makedirs(self.out, exist_ok=True)
    path = os.path.join(self.out, 'summary.json')
    with open(path + '.tmp', 'w') as f:
      json.dump(self.summary(), f, indent=1)
    os.replace(path + '.tmp', path)


def run_one(tally: Tally, data: bytes) -> None:
  """Runs the reader's steps on `data`; tallies each outcome."""
  from imagenet_resized.common import SourceError
  start = time.perf_counter()
  tally.executions += 1
  with _quiet_warnings():
    for step in TARGETS[tally.reader](data):
      try:
        step()
        tally.accepted += 1
      except SourceError as e:
        tally.refused += 1
        if '\n' in str(e) or not str(e):
          tally.finding(f'message not one line at {_signature(e)}', str(e)[:300], data)
      except Exception as e:
        tally.finding(_signature(e), f'{type(e).__name__}: {str(e)[:300]}', data)
  tally.timed(time.perf_counter() - start, data)
  tally.write()


@contextlib.contextmanager
def _quiet_warnings():
  import warnings
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    yield


# ---------------------------------------------------------------------------
# Engine: deterministic mutations.

_INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
                2**63 - 1, 2**64 - 1]


def mutate(data: bytes, rng: random.Random) -> bytes:
  """One to four random edits: bit flips, interesting integers, insertions,
  deletions, duplications, truncation."""
  out = bytearray(data)
  for _ in range(rng.randint(1, 4)):
    if not out:
      out += bytes([rng.randrange(256)])
    i = rng.randrange(len(out))
    kind = rng.randrange(7)
    if kind == 0:
      out[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
      out[i] = rng.randrange(256)
    elif kind == 2:
      width = rng.choice((1, 2, 4, 8))
      value = rng.choice(_INTERESTING) % (1 << (8 * width))
      out[i : i + width] = value.to_bytes(width, rng.choice(('little', 'big')))
    elif kind == 3:
      out[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == 4:
      del out[i : i + rng.randint(1, 64)]
    elif kind == 5:
      j = rng.randrange(len(out))
      out[i:i] = out[j : j + rng.randint(1, 256)]
    else:
      del out[i:]
  return bytes(out)


def run_mutations(tally: Tally, count: int, seed: int = 0) -> Tally:
  rng = random.Random(f'{tally.reader}-{seed}')
  seeds = all_seeds(tally.reader)
  for data in seeds:
    run_one(tally, data)
  for _ in range(count):
    run_one(tally, mutate(rng.choice(seeds), rng))
  tally.write(force=True)
  return tally


# ---------------------------------------------------------------------------
# Engine: hypothesis, well-formed files of random values.


def strategies():
  """Hypothesis strategies of batch-like dicts (imported lazily)."""
  from hypothesis import strategies as st

  dtypes = st.sampled_from([
      'u1', 'u1', 'u1', '<i8', '>i4', '<i2', 'i1', '<f8', '<f2', '?', '<u8',
      'O', 'V3', 'S2', '<U2', [('a', 'u1'), ('b', '<i4')], [('c', 'u1', (2,))],
  ])

  @st.composite
  def arrays(draw):
    dtype = np.dtype(draw(dtypes))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
    n = int(np.prod(shape))
    raw = draw(st.binary(min_size=n * dtype.itemsize, max_size=n * dtype.itemsize))
    if dtype.hasobject:
      a = np.array([draw(st.integers(-5, 1005)) for _ in range(n)], dtype=object).reshape(shape)
    else:
      a = np.frombuffer(raw, dtype).reshape(shape).copy()
    if draw(st.booleans()) and a.ndim >= 2:
      a = np.asfortranarray(a)
    return a

  @st.composite
  def good_batches(draw):
    rows = draw(st.integers(0, 5))
    data = np.frombuffer(
        draw(st.binary(min_size=rows * 3 * SIZE * SIZE, max_size=rows * 3 * SIZE * SIZE)),
        np.uint8,
    ).reshape(rows, 3 * SIZE * SIZE)
    labels = draw(st.lists(st.integers(1, 1000), min_size=rows, max_size=rows))
    as_array = draw(st.sampled_from([None, '<i8', '<i4', '>i8', 'u2']))
    batch = {'data': data, 'labels': labels if as_array is None else np.array(labels, as_array)}
    if draw(st.booleans()):
      batch['mean'] = data.mean(axis=0) if rows else np.zeros(3 * SIZE * SIZE)
    return batch

  leaves = st.one_of(
      st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.binary(max_size=8),
      st.text(max_size=4), st.floats(allow_nan=False), arrays(),
  )
  values = st.recursive(
      leaves,
      lambda inner: st.one_of(
          st.lists(inner, max_size=4), st.tuples(inner, inner),
          st.dictionaries(st.text(max_size=3), inner, max_size=3),
      ),
      max_leaves=8,
  )
  odd_batches = st.fixed_dictionaries(
      {}, optional={'data': st.one_of(arrays(), values), 'labels': st.one_of(arrays(), values),
                    'mean': values, 'extra': values},
  )
  return good_batches(), odd_batches


def _expected_rows(batch: dict) -> tuple[np.ndarray, np.ndarray] | None:
  """(images, 0-based labels) a legitimate batch must read as; None if it is
  not one (then refusing it is right too)."""
  data, labels = batch.get('data'), batch.get('labels')
  if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
          and data.shape[1] == 3 * SIZE * SIZE and data.flags.c_contiguous):
    return None
  labels = np.asarray(labels) if isinstance(labels, (list, np.ndarray)) else None
  if (labels is None or labels.shape != (data.shape[0],)
      or (data.shape[0] and not np.issubdtype(labels.dtype, np.integer))
      or not all(1 <= int(v) <= 1000 for v in labels)):
    return None
  # Planes stacked by hand (R, G, B), independently of the reader.
  plane = SIZE * SIZE
  images = np.stack(
      [data[:, c * plane : (c + 1) * plane].reshape(-1, SIZE, SIZE) for c in range(3)],
      axis=-1,
  )
  return images, labels.astype(np.int64) - 1


def serialize(batch: dict, form: str) -> bytes:
  """A batch dict as a pickle (form 'pickle P' or 'py2 P') or an npz."""
  from imagenet_resized.tools import fake
  kind, _, protocol = form.partition(' ')
  if kind == 'npz':
    buf = io.BytesIO()
    np.savez(buf, **batch)
    return buf.getvalue()
  if kind == 'py2':
    return fake.py2_pickle_bytes(
        {k: np.asarray(v) if k == 'labels' else v for k, v in batch.items()},
        int(protocol),
    )
  return pickle.dumps(batch, protocol=int(protocol))


FORMS = {
    'pickle': [f'pickle {p}' for p in range(6)] + [f'py2 {p}' for p in range(3)],
    'npz': ['npz'],
}


def check_structured(tally: Tally, batch: dict, form: str) -> None:
  """Reads a well-formed file of `batch`: refused with SourceError, or read
  as exactly the rows it was written from; a legitimate batch is read."""
  from imagenet_resized.readers import npz_batches, pickle_batches
  from imagenet_resized.common import SourceError
  try:
    data = serialize(batch, form)
  except Exception:
    return  # Not writable in this form (e.g. py2 of odd values).
  expected = _expected_rows(batch)
  tally.executions += 1
  start = time.perf_counter()
  if form == 'npz':
    reader = npz_batches.iter_npz_chunks
  else:  # Strings read while parsing, or left in the file: by turns.
    reader = functools.partial(
        pickle_batches.iter_pickle_chunks, eager_bytes=EAGER_BYTES[tally.executions % 2]
    )
  try:
    chunks = list(reader(io.BytesIO(data), 'fuzz', SIZE, CHUNK_ROWS))
  except SourceError as e:
    tally.refused += 1
    if expected is not None:
      tally.finding(f'legitimate batch refused ({form})', str(e)[:300], data)
    elif '\n' in str(e):
      tally.finding(f'message not one line at {_signature(e)}', str(e)[:300], data)
  except Exception as e:
    tally.finding(_signature(e), f'{type(e).__name__}: {str(e)[:300]}', data)
  else:
    tally.accepted += 1
    images = np.concatenate([c.images for c in chunks]) if chunks else None
    if expected is None:
      tally.finding(f'not a batch, yet accepted ({form})', repr(batch)[:300], data)
    elif chunks and not (np.array_equal(images, expected[0]) and np.array_equal(
        np.concatenate([c.labels for c in chunks]), expected[1])):
      tally.finding(f'read wrong ({form})', repr(batch)[:300], data)
  tally.timed(time.perf_counter() - start, data)
  tally.write()


def run_hypothesis(tally: Tally, seconds: float, max_examples: int = 200,
                   derandomize: bool = False) -> Tally:
  """Rounds of `max_examples` structured files until `seconds` have passed
  (one round if derandomized: the same files every time)."""
  from hypothesis import HealthCheck, given, settings
  from hypothesis import strategies as st
  good, odd = strategies()

  @settings(max_examples=max_examples, deadline=None, derandomize=derandomize,
            database=None, suppress_health_check=list(HealthCheck))
  @given(st.one_of(good, odd), st.sampled_from(FORMS[tally.reader]))
  def check(batch, form):
    with _quiet_warnings():
      check_structured(tally, batch, form)

  deadline = time.time() + seconds
  while True:
    check()
    if derandomize or time.time() >= deadline:
      break
  tally.write(force=True)
  return tally


# ---------------------------------------------------------------------------
# Engine: atheris.


def run_atheris(tally: Tally, seconds: int, corpus: str, extra: list[str]) -> None:
  import atheris
  # Python code whose coverage guides the mutations (imported here first).
  instrumented = {
      'pickle': ['imagenet_resized'],
      'npz': ['imagenet_resized', 'zipfile', 'numpy.lib._format_impl', 'numpy.lib.format'],
      'tar': ['imagenet_resized', 'tarfile', 'PIL'],
  }[tally.reader]
  with atheris.instrument_imports(include=instrumented):
    from imagenet_resized.readers import npz_spool  # noqa: F401
    from imagenet_resized.readers import npz_batches, pickle_batches  # noqa: F401
    from imagenet_resized.ilsvrc import finding, layout, resizing, split_examples  # noqa: F401
  os.makedirs(corpus, exist_ok=True)
  if not os.listdir(corpus):
    for i, data in enumerate(all_seeds(tally.reader)):
      with open(os.path.join(corpus, f'seed{i}'), 'wb') as f:
        f.write(data)

  def one_input(data: bytes) -> None:
    run_one(tally, data)

  import atexit
  atexit.register(tally.write, True)
  atheris.Setup(
      [sys.argv[0], corpus, f'-max_total_time={seconds}', '-timeout=60',
       '-rss_limit_mb=3072', '-print_final_stats=1', *extra],
      one_input,
  )
  atheris.Fuzz()


def retime(reader: str, out: str, runs: int = 3) -> list[dict]:
  """The slowest inputs of a run, timed again alone (best of `runs`, after
  a warm-up): while fuzzing, a time also holds garbage collection and
  whatever else the machine was doing."""
  tally = Tally(reader, 'retime')
  run_one(tally, SEEDS[reader]()[0])
  folder = os.path.join(out, 'slowest')
  timings = []
  for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), 'rb') as f:
      data = f.read()
    best = float('inf')
    for _ in range(runs):
      start = time.perf_counter()
      run_one(tally, data)
      best = min(best, time.perf_counter() - start)
    timings.append({'input': f'slowest/{name}', 'bytes': len(data), 'seconds': round(best, 4)})
  return sorted(timings, key=lambda t: -t['seconds'])


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('engine', choices=('atheris', 'hypothesis', 'mutate', 'retime'))
  parser.add_argument('--reader', choices=READERS, required=True)
  parser.add_argument('--seconds', type=float, default=600)
  parser.add_argument('--count', type=int, default=1000)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--out', default=None)
  parser.add_argument('--corpus', default=None, help='atheris corpus folder')
  args, extra = parser.parse_known_args(argv)
  tally = Tally(args.reader, args.engine, args.out)
  if args.engine == 'retime':
    print(json.dumps(retime(args.reader, args.out), indent=1))
    return
  if args.engine == 'atheris':
    corpus = args.corpus or os.path.join(args.out or '.', 'corpus')
    run_atheris(tally, int(args.seconds), corpus, extra)
  elif args.engine == 'hypothesis':
    if args.reader == 'tar':
      parser.error('hypothesis strategies cover the batch readers (pickle, npz)')
    run_hypothesis(tally, args.seconds)
  else:
    run_mutations(tally, args.count, args.seed)
  print(json.dumps(tally.summary(), indent=1))


if __name__ == '__main__':
  main()
