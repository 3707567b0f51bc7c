"""The authors' published layout: names, discovery, completeness, rows kept.

What the authors published (archive and batch names, sizes and row counts,
download URLs), finding a split's batches in a manual folder in any of the
published forms, checking that a split is complete, which rows a config keeps
(`row_selection`), ImageNet16-120's published sizes and splits, and asking
the download site whether it serves the archives (`download_probe`).

May import (besides the standard library and the leaves `common`, `resources`):
`numpy`, `readers/`. Never TFDS or TensorFlow.
"""
