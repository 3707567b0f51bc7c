"""Images computed from the ILSVRC2012 JPEGs (configs named SxS_ilsvrc2012).

Split by job: finding the tarballs or folders (`discovery`), reading tars
piecewise (`tars`), decoding and box-resizing (`images`), labels
(`labels`), and the work units of the worker-pool and Beam paths (`units`).

May import: the standard library, numpy, Pillow, apache_beam (lazily, on the
Beam path), `readers/`, `writing/`, `pipeline/`, and the package's leaves
(`common`, `resources`). Never TFDS or TensorFlow.
"""
