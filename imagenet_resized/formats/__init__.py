"""Byte formats written and read without TensorFlow: PNG, TFRecord, Example.

PNG encoding that gives the same bytes on every machine (libdeflate, pinned)
and batched PNG decoding; TFRecord framing with CRC-32C, written and read;
the wire bytes of a flat tf.train.Example, written and parsed. A build writes
its shards, and an export reads them, without importing TensorFlow.

May import (besides the standard library and the leaves `common`, `resources`):
`numpy`, `PIL`, `deflate`, `google_crc32c`. Never TFDS or TensorFlow: worker
processes import these modules.
"""
