"""The authors' published layout: names, discovery, completeness, rows kept.

What the authors published (`publication`), finding a split's batches in any
published form (`discovery`), checking it is complete (`completeness`), which
rows a config keeps (`row_selection`), ImageNet16-120 (`imagenet16_120`) and
asking the site whether it serves the archives (`download_probe`).

May import (besides the standard library and the leaves `common`, `resources`):
`numpy`, `readers/`. Never TFDS or TensorFlow.
"""
