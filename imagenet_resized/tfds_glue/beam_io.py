"""The examples of a split as an Apache Beam PTransform, one batch per task.

Used only with Beam options (`tfds build --beam_pipeline_options=...`,
`DownloadConfig(beam_options=...)`). `Reshuffle` spreads the batch files over
the workers, each streaming its batch through the generator path's reader
and PNG writer (`examples.iter_examples`); TFDS's Beam writer orders examples
by a hash of their keys, as its generator writer does, so both paths write
the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import apache_beam as beam

from imagenet_resized.authors import batch_files
from imagenet_resized.authors import completeness
from imagenet_resized.authors import row_selection
from imagenet_resized.pipeline import examples
from imagenet_resized.pipeline import pixel_statistics

_COUNTS = 'counts'


def _batch_examples(
    batch: batch_files.Batch,
    size: int,
    source: batch_files.SplitBatches,
    selection,
) -> Iterator:
  """The (key, example) pairs of one batch, encoded in this worker; then, on
  the `counts` output, (batch name, (rows read, examples kept, pixel sums of
  the kept images))."""
  rows = []
  tally = pixel_statistics.Tally()

  def batch_done(done: batch_files.Batch, count: int) -> None:
    completeness.check_batch_rows(source, done, count)
    rows.append(count)

  kept = 0
  # No encoding pool inside a Beam worker: the runner supplies the parallelism.
  for key_example in examples.iter_examples(
      [batch],
      size,
      workers=0,
      batch_done=batch_done,
      selection=selection,
      tally=tally,
  ):
    kept += 1
    yield key_example
  yield beam.pvalue.TaggedOutput(
      _COUNTS, (batch.name, (rows[0], kept, tally.sums))
  )


def _check_counts(
    counts: dict[str, tuple], source: batch_files.SplitBatches, check_kept
) -> None:
  rows_by_batch = {name: rows for name, (rows, _, _) in counts.items()}
  kept = sum(k for _, k, _ in counts.values())
  examples.check_split(source, rows_by_batch, kept, check_kept)


def _split_sums(counts: dict[str, tuple]) -> pixel_statistics.PixelSums:
  """A split's pixel sums, from its batches' counts (exact in any order)."""
  return pixel_statistics.total(counts[name][2] for name in sorted(counts))


# Receives a PCollection holding the split's one PixelSums.
StatisticsSink = Callable[[beam.PCollection], None]


def examples_from_batches(
    source: batch_files.SplitBatches,
    size: int,
    selection=row_selection.EveryRow(),
    check_kept=None,
    statistics: StatisticsSink | None = None,
):
  """A PTransform: PBegin -> (key, example) pairs, one batch per task."""

  @beam.ptransform_fn
  def examples_from_batches(pipeline):
    outputs = (
        pipeline
        | 'Batches' >> beam.Create(list(source.batches))
        # Breaks fusion with Create so that batches go to different workers.
        | 'SpreadBatches' >> beam.Reshuffle()
        | 'Examples'
        >> beam.FlatMap(
            _batch_examples, size=size, source=source, selection=selection
        ).with_outputs(_COUNTS, main='examples')
    )
    # A published split must be whole, as on the generator path.
    by_batch = outputs[_COUNTS] | 'CountsByBatch' >> beam.combiners.ToDict()
    _ = by_batch | 'CheckCounts' >> beam.Map(
        _check_counts, source=source, check_kept=check_kept
    )
    if statistics is not None:
      statistics(by_batch | 'PixelSums' >> beam.Map(_split_sums))
    return outputs['examples']

  return examples_from_batches()
