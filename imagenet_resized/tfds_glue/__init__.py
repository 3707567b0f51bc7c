"""Where the package meets TFDS's machinery, below the builder.

Every touch of TFDS's internals and the run-time checks that guard them
(`tfds_internals`), the deterministic example serializer, the Beam
PTransforms (`beam_io`), the prepared dataset's metadata with its statistics
(`build_metadata`), and the lock and clean-up around a build (`file_lock`,
`build_lock`).

May import: the standard library, numpy, tensorflow_datasets, apache_beam,
etils, google_crc32c, every wing below it (`readers/`, `authors/`,
`writing/`, `pipeline/`, `ilsvrc/`), and the package's leaves. Never the
builder module.
"""
