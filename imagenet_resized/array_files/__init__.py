"""A prepared split as array files: export, fingerprint, views.

Exports a prepared split's examples to `.npy` files in the order of
`as_dataset(shuffle_files=False)`, reading the shards without TensorFlow in
worker processes (`shard_records`, `array_export`), ties them to the prepared
dataset with a fingerprint (`array_fingerprint`), says where they live
(`array_location`), and gives the views input libraries expect
(`array_views`: grain, tf.data). The public entry is `imagenet_resized.arrays`.

May import (besides the standard library and the leaves `common`, `resources`):
`numpy`, `google_crc32c`, `etils`, `tqdm`, `array_record`, `pyarrow`,
`tensorflow`, `readers/`, `formats/`, `pipeline/`. array_record, pyarrow and
tensorflow lazily (their shards and views), never the top of the package.
"""
