"""From a split's batches to encoded (key, example) pairs, over worker processes.

A worker process owns a whole batch: it reads, selects and PNG-encodes its
rows and streams the results back (`examples`, `worker_pool`); the per-channel
pixel sums of the statistics are made there too.

May import (besides the standard library and the leaves `common`, `resources`):
`numpy`, `authors/`, `formats/`. Never TFDS or TensorFlow: the workers are
fresh interpreters that import only what their work needs.
"""
