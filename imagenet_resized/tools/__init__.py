"""Tools around the dataset: fake archives, picture grids, a quiet start.

`fake` writes sources in the authors' exact layout (dummy_data, tests,
benchmarks), `picture_grid` draws a captioned grid of examples, and
`quiet_start` keeps TensorFlow's start-up logs off the command line.

May import (besides the standard library and the leaves `common`, `resources`):
`numpy`, `PIL`, `tensorflow`, `authors/`. tensorflow for the quiet start of the
command line only; never the top of the package.
"""
