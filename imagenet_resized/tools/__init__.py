"""Tools around the dataset: fake archives, picture grids, a quiet start.

`fake` writes sources in the authors' exact layout (dummy_data, tests,
benchmarks), `picture_grid` draws a captioned grid of examples, and
`quiet_start` keeps TensorFlow's start-up logs off the command line.

May import: the standard library, numpy, Pillow, `readers/`, `authors/`,
`writing/`, and the package's leaves. Never the builder module.
"""
