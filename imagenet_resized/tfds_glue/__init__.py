"""Where the package meets TFDS's machinery, below the builder.

Every touch of TFDS's internals and the run-time checks that guard them
(`tfds_internals`), the deterministic example serializer, the Beam
PTransforms (`beam_io`), the prepared dataset's metadata with its statistics
(`build_metadata`), and the lock and clean-up around a build (`file_lock`,
`build_lock`).

May import (besides the standard library and the leaves `common`, `resources`):
`numpy`, `tensorflow_datasets`, `apache_beam`, `etils`, `google_crc32c`,
`pyarrow`, `authors/`, `formats/`, `pipeline/`. Never the top of the package.
"""
