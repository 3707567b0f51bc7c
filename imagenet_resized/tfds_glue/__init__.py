"""Where the package meets TFDS's machinery, below the builder.

Every touch of TFDS's internals and its run-time checks (`tfds_touches`),
the Beam PTransforms (`beam_io`), the metadata with its statistics
(`build_metadata`), and the lock around a build (`file_lock`, `build_lock`).

May import (besides the standard library and the leaves `common`, `resources`):
`numpy`, `tensorflow_datasets`, `apache_beam`, `etils`, `google_crc32c`,
`pyarrow`, `authors/`, `formats/`, `pipeline/`. Never the top of the package.
"""
