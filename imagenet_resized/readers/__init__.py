"""Untrusted bytes to arrays: the authors' npz and pickle batches.

Parses npz members (npy headers, bounded inflation, spooling of members that
cannot be streamed) and Python 2 pickles (an inert parser: nothing in a file
is ever unpickled or run) into row chunks and 0-based labels, checking every
declared size against the bytes that back it before allocating. Opens only
regular files (`regular_files`).

May import (besides the standard library and the leaves `common`, `resources`):
`numpy`, `zlib_ng`. Never TFDS or TensorFlow: worker processes import these
modules.
"""
