"""A short, deterministic slice of the readers' fuzzing (seconds).

The full runs (atheris, hypothesis, for minutes per reader) are
`tests/fuzzing/fuzz_readers.py`, with their figures in docs/reliability.md; this
runs the same targets and the same checks on a fixed set of inputs:

  * seeded byte edits of valid files (every reader): each read yields its
    rows or stops with a one-line SourceError, nothing else;
  * well-formed pickles and npz files of random values (hypothesis,
    derandomized): refused with a SourceError, or read as exactly the rows
    they were written from; a legitimate batch is always read.
"""

import sys

import numpy as np
import pytest

from conftest import REPO
from imagenet_resized.readers import batch_chunks
from imagenet_resized.readers import pickled_numpy

sys.path.insert(0, str(REPO / 'tests' / 'fuzzing'))
import fuzz_readers

MUTATIONS = {'pickle': 400, 'npz': 300, 'tar': 150}


@pytest.mark.parametrize('reader', ['pickle', 'npz'])
def test_batch_seeds_are_read_whole(reader):
  """The valid batches the fuzzing starts from are read, by every step."""
  tally = fuzz_readers.Tally(reader, 'seeds')
  for data in fuzz_readers.SEEDS[reader]():
    fuzz_readers.run_one(tally, data)
  assert tally.findings == {} and tally.refused == 0 and tally.accepted > 0


def test_tar_seeds_are_read_as_their_split_only():
  """The validation tar and the train tar are each read whole as their own
  split (cut into work units) and refused as the other split."""
  tally = fuzz_readers.Tally('tar', 'seeds')
  seeds = fuzz_readers.SEEDS['tar']()
  for data in seeds:
    fuzz_readers.run_one(tally, data)
  assert tally.findings == {}
  assert tally.accepted == tally.refused == len(seeds)


@pytest.mark.parametrize('reader', fuzz_readers.READERS)
def test_mutated_files_are_read_or_refused_in_one_line(reader):
  tally = fuzz_readers.run_mutations(
      fuzz_readers.Tally(reader, 'mutate'), MUTATIONS[reader], seed=0
  )
  assert tally.findings == {}
  # The slice reaches both outcomes: it is not all refused at the first byte.
  assert tally.accepted > 0 and tally.refused > 0


@pytest.mark.parametrize('reader', ['pickle', 'npz'])
def test_structured_files_are_read_exactly_or_refused(reader):
  tally = fuzz_readers.run_hypothesis(
      fuzz_readers.Tally(reader, 'hypothesis'), 0, max_examples=60,
      derandomize=True,
  )
  assert tally.findings == {}
  assert tally.accepted > 0 and tally.refused > 0


def test_the_slice_notices_rows_read_wrong(monkeypatch):
  """A reader that swaps image axes is caught by the structured checks."""
  def transposed(rows, size):
    return np.ascontiguousarray(rows.reshape(len(rows), 3, size, size).transpose(0, 3, 2, 1))
  monkeypatch.setattr(batch_chunks, 'rows_to_images', transposed)
  tally = fuzz_readers.run_hypothesis(
      fuzz_readers.Tally('pickle', 'hypothesis'), 0, max_examples=60,
      derandomize=True,
  )
  assert any(s.startswith('read wrong') for s in tally.findings)


def test_the_slice_notices_exceptions_outside_the_contract(monkeypatch):
  """A raw exception from inside a reader is a finding, named by its place."""
  def broken(value, what, expected):
    raise TypeError('not a SourceError')
  monkeypatch.setattr(pickled_numpy, 'read_array', broken)
  tally = fuzz_readers.run_mutations(fuzz_readers.Tally('pickle', 'mutate'), 20)
  assert any(s.startswith('TypeError at ') for s in tally.findings)
