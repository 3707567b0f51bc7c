"""A prepared split as array files: export, fingerprint, views.

Exports a prepared split's examples to `.npy` files in the order of
`as_dataset(shuffle_files=False)`, reading the shards without TensorFlow in
worker processes (`shard_records`, `array_export`), ties them to the prepared
dataset with a fingerprint (`array_fingerprint`), says where they live
(`array_location`), and gives the views input libraries expect
(`array_views`: grain, tf.data). The public entry is `imagenet_resized.arrays`.

May import: the standard library, numpy, Pillow, google_crc32c, etils,
array_record and tensorflow (lazily, for their views and remote shards),
`writing/`, `pipeline/`, `tfds_glue/`, and the package's leaves. Never the
builder module.
"""
