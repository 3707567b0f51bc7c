"""From a split's batches to encoded (key, example) pairs, over worker processes.

A worker process reads, selects, PNG-encodes and sums the pixels of a whole
batch, and streams the results back (`examples`, `worker_pool`).

May import (besides the standard library and the leaves `common`, `resources`):
`numpy`, `authors/`, `formats/`. Never TFDS or TensorFlow: the workers are
fresh interpreters that import only what their work needs.
"""
