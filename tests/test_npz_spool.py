"""The bounded copy of an npz out of a compressed member keeps every npz
numpy writes, byte for byte, and names what it refuses once.

(The zip bombs it stops are in test_hostile.py.)
"""

import io
import sys

import numpy as np
import pytest

import crafted
from conftest import REPO
from imagenet_resized.readers import npz_spool
from imagenet_resized.readers import npz_batches
from imagenet_resized.tools import fake
from imagenet_resized.common import SourceError

sys.path.insert(0, str(REPO / 'tests' / 'fuzzing'))
import fuzz_readers


def _savez(batch):
  buf = io.BytesIO()
  np.savez(buf, **batch)
  return buf.getvalue()


def _savez_compressed(batch):
  buf = io.BytesIO()
  np.savez_compressed(buf, **batch)
  return buf.getvalue()


def _savez_to_a_stream(batch):
  stream = fuzz_readers.UnseekableStream()
  np.savez(stream, **batch)
  return stream.buffer.getvalue()


@pytest.mark.parametrize('write', [fake.npz_bytes, _savez, _savez_compressed, _savez_to_a_stream])
def test_numpy_npz_files_are_copied_whole(write):
  batch = fake.make_batch(np.random.default_rng(2), 6, 8)
  batch['mean'] = batch['data'].mean(axis=0)
  npz = write(batch)
  copy = io.BytesIO()
  npz_spool.copy_npz(io.BytesIO(npz), copy, 'b', len(npz))
  assert copy.getvalue() == npz
  copy.seek(0)
  chunks = list(npz_batches.iter_npz_chunks(copy, 'b', 8))
  np.testing.assert_array_equal(np.concatenate([c.labels for c in chunks]), batch['labels'] - 1)


def test_a_member_that_is_not_an_array_is_named_once():
  npz = crafted.join(crafted.zip_parts([crafted.Member('data.npy', (b'not an array',))]))
  with pytest.raises(SourceError) as e:
    npz_spool.copy_npz(io.BytesIO(npz), io.BytesIO(), 'x.zip:val_data.npz', len(npz))
  assert str(e.value) == (
      'x.zip:val_data.npz: data.npy is not a .npy array (no .npy magic);'
      ' expected an np.savez file with `data` and `labels`'
  )


def test_a_short_npz_is_copied_as_far_as_it_goes():
  """The reader then says it is truncated, as for an extracted npz."""
  npz = fake.npz_bytes(fake.make_batch(np.random.default_rng(2), 3, 8))
  copy = io.BytesIO()
  npz_spool.copy_npz(io.BytesIO(npz[:-30]), copy, 'b', len(npz))
  assert copy.getvalue() == npz[:-30]
