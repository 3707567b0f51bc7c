"""Every legitimate way a batch is pickled reads as the same rows.

The pickle reader parses opcodes itself (it never unpickles), so each
encoding a writer may use is checked here against rows computed
independently (planes stacked by hand): Python 2 at protocols 0-2 (pixels
as an escaped STRING or BINSTRING, numpy 1.x names, dtype flags as ints),
Python 3 at protocols 0-5 (`_codecs.encode` of text, BINBYTES, BINBYTES8,
`_frombuffer` of BYTEARRAY8, numpy 2.x names), labels as lists or arrays;
and whatever budget of string bytes is read while parsing, and however the
strings fall across read blocks.
"""

import io
import pickle

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import crafted
from crafted import OP
from imagenet_resized.readers import pickle_strings
from imagenet_resized.readers import pickle_batches
from imagenet_resized.tools import fake

SIZE = 8
ROWS = 5


@pytest.fixture(scope='module')
def batch() -> dict:
  b = fake.make_batch(np.random.default_rng(3), ROWS, SIZE)
  # Every byte value, so that each escape of a protocol 0 STRING shows up.
  b['data'].reshape(-1)[:256] = np.arange(256, dtype=np.uint8)
  b['mean'] = b['data'].mean(axis=0)
  return b


def expected_images(data: np.ndarray) -> np.ndarray:
  plane = SIZE * SIZE
  return np.stack(
      [data[:, c * plane : (c + 1) * plane].reshape(-1, SIZE, SIZE) for c in range(3)],
      axis=-1,
  )


def read(data: bytes, eager_bytes: int = pickle_batches.PICKLE_EAGER_BYTES):
  chunks = list(pickle_batches.iter_pickle_chunks(
      io.BytesIO(data), 'b', SIZE, chunk_rows=2, eager_bytes=eager_bytes
  ))
  return (np.concatenate([c.images for c in chunks]),
          np.concatenate([c.labels for c in chunks]))


def py3(batch, protocol, labels_as):
  labels = batch['labels'].tolist() if labels_as == 'list' else batch['labels'].astype(labels_as)
  return pickle.dumps({**batch, 'labels': labels}, protocol=protocol)


def py2_with_int_flags(batch):
  """As Python 2's numpy wrote a dtype: dtype('u1', 0, 1), `str` codes."""
  def dtype(code, endian):
    return crafted.call(crafted.glob('numpy', 'dtype'), crafted.tup(
        crafted.py2_str(code), crafted.integer(0), crafted.integer(1)
    )) + crafted.tup(
        crafted.integer(3), crafted.py2_str(endian), OP['NONE'], OP['NONE'],
        OP['NONE'], crafted.integer(-1), crafted.integer(-1), crafted.integer(0),
    ) + OP['BUILD']
  data = crafted.call(
      crafted.glob('numpy.core.multiarray', '_reconstruct'),
      crafted.tup(crafted.glob('numpy', 'ndarray'), crafted.tup(crafted.integer(0)),
                  crafted.py2_str(b'b')),
  ) + crafted.tup(
      crafted.integer(1), crafted.tup(*map(crafted.integer, batch['data'].shape)),
      dtype(b'u1', b'|'), crafted.integer(0), crafted.py2_str(batch['data'].tobytes()),
  ) + OP['BUILD']
  return crafted.batch_pickle(data, crafted.int_list(batch['labels'].tolist()))


FORMS = {
    **{f'python 2 protocol {p}': (lambda b, p=p: fake.py2_pickle_bytes(b, p)) for p in (0, 1, 2)},
    'python 2, dtype flags as ints': py2_with_int_flags,
    **{f'python 3 protocol {p}, labels {labels}': (lambda b, p=p, labels=labels: py3(b, p, labels))
       for p in range(6) for labels in ('list', '<i8', '>i4', '<u2')},
}


@pytest.mark.parametrize('eager_bytes', [pickle_batches.PICKLE_EAGER_BYTES, 0])
@pytest.mark.parametrize('form', FORMS)
def test_every_form_reads_the_same_rows(batch, form, eager_bytes):
  """Read with the strings in memory, and with the arrays left in the file."""
  images, labels = read(FORMS[form](batch), eager_bytes)
  np.testing.assert_array_equal(images, expected_images(batch['data']))
  np.testing.assert_array_equal(labels, batch['labels'] - 1)


@pytest.mark.parametrize('form', ['python 2 protocol 0', 'python 2 protocol 2',
                                  'python 3 protocol 2, labels list'])
def test_any_string_budget_reads_the_same_rows(batch, form):
  """Whatever is left of the budget when the pixels come (all, some, none),
  the names and keys after them are still read."""
  data = FORMS[form](batch)
  for eager_bytes in range(0, len(data) + 2, 97):
    images, labels = read(data, eager_bytes)
    np.testing.assert_array_equal(images, expected_images(batch['data']))
    np.testing.assert_array_equal(labels, batch['labels'] - 1)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.binary(min_size=3 * 192, max_size=3 * 192), st.integers(1, 9),
       st.sampled_from([0, 1, 2]))
def test_strings_decode_alike_across_read_blocks(pixels, block, protocol):
  """Escapes, UTF-8 and raw bytes cut at any block boundary decode whole."""
  batch = {'data': np.frombuffer(pixels, np.uint8).reshape(3, 192),
           'labels': np.array([1, 500, 1000])}
  data = fake.py2_pickle_bytes(batch, 0) if protocol == 0 else py3(batch, protocol, 'list')
  with pytest.MonkeyPatch.context() as m:
    m.setattr(pickle_strings, 'BLOCK_BYTES', block)
    images, _ = read(data, eager_bytes=0)
  np.testing.assert_array_equal(images, expected_images(batch['data']))


def test_the_stdlib_reads_the_python2_forms_alike(batch):
  """The forms above are real pickles: Python's unpickler (trusted here, on
  files this test wrote) reads them as the same arrays."""
  for form in ('python 2 protocol 0', 'python 2, dtype flags as ints'):
    loaded = pickle.loads(FORMS[form](batch), encoding='bytes')
    loaded = {k.decode() if isinstance(k, bytes) else k: v for k, v in loaded.items()}
    np.testing.assert_array_equal(loaded['data'], batch['data'])
    assert list(loaded['labels']) == batch['labels'].tolist()
