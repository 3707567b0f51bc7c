"""The prepared dataset's metadata (info.metadata), statistics included.

`BuildMetadata` is TFDS's `MetadataDict` (saved as metadata.json) that also
takes each split's pixel statistics: on the generator path when the split's
generator has run out (`set_statistics`); on Beam as a PCollection of one
`PixelSums` (`add_beam_statistics`), written as JSON under the build's
data_dir and read back by `save_metadata` (TFDS's own `BeamMetadataDict`
keeps top-level keys only, in a local folder that remote workers miss).

`info.metadata['statistics'][split] == {'mean': [r, g, b], 'std': [r, g, b]}`.
"""

from __future__ import annotations

import json

from etils import epath
import tensorflow_datasets as tfds

from imagenet_resized.pipeline import pixel_statistics

# Folder of the build's data_dir where Beam writes the splits' sums.
PENDING_FOLDER = 'pixel_sums_pending'


def _write_sums(sums: pixel_statistics.PixelSums, path: str) -> None:
  """Beam: writes a split's sums as JSON (runs on a worker)."""
  target = epath.Path(path)
  target.parent.mkdir(parents=True, exist_ok=True)
  target.write_text(json.dumps(sums.as_json()))


class BuildMetadata(tfds.core.MetadataDict):
  """metadata.json's dict, with per-split pixel statistics."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self._pending: dict[str, str] = {}  # split -> JSON written by Beam.

  def set_statistics(
      self, split: str, sums: pixel_statistics.PixelSums
  ) -> None:
    """Stores a split's mean and std from its exact sums."""
    statistics = self.setdefault(pixel_statistics.METADATA_KEY, {})
    statistics[split] = sums.as_metadata()

  def add_beam_statistics(self, split: str, sums, data_dir) -> None:
    """Stores, once the pipeline has run, the one PixelSums in `sums` (a
    PCollection), written meanwhile under `data_dir`."""
    import apache_beam as beam

    path = str(epath.Path(data_dir) / PENDING_FOLDER / f'{split}.json')
    self._pending[split] = path
    _ = sums | f'WriteSums_{split}' >> beam.Map(_write_sums, path=path)

  def save_metadata(self, data_dir):
    for split, path in sorted(self._pending.items()):
      written = epath.Path(path)
      if written.exists():
        self.set_statistics(
            split,
            pixel_statistics.PixelSums.from_json(
                json.loads(written.read_text())
            ),
        )
    folders = {epath.Path(p).parent for p in self._pending.values()}
    self._pending = {}
    for folder in folders:
      if folder.exists():
        folder.rmtree()
    super().save_metadata(data_dir)
