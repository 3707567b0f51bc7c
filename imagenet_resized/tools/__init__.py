"""Tools around the dataset: fake archives (`fake`), captioned picture grids
(`picture_grid`), and a quiet start of the command line (`quiet_start`).

May import (besides the standard library and the leaves `common`, `resources`):
`numpy`, `PIL`, `tensorflow`, `authors/`. tensorflow for the quiet start of the
command line only; never the top of the package.
"""
