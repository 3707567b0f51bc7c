"""Bytes out: PNG images and TFRecord files, without TensorFlow.

PNG encoding that gives the same bytes on every machine (libdeflate, pinned),
and TFRecord framing with CRC-32C, so that a build writes shards without
importing TensorFlow.

May import: the standard library, numpy, deflate, google_crc32c, and the
package's leaves (`common`).
"""
