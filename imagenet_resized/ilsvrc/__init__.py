"""Images computed from the ILSVRC2012 JPEGs (configs named SxS_ilsvrc2012).

Split by job: the files' names, forms and bounds (`layout`), finding the
tarballs or folders (`finding`), reading images out of tars (`tar_images`)
and folders (`folder_images`), labels (`class_labels`), decoding and
box-resizing (`resizing`), and a split's examples over the worker pool or as
Beam work units (`split_examples`).

May import (besides the standard library and the leaves `common`, `resources`):
`numpy`, `PIL`, `apache_beam`, `readers/`, `pipeline/`. Never TFDS or
TensorFlow (apache_beam lazily, on the Beam path).
"""
