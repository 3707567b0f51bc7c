"""Images computed from the ILSVRC2012 JPEGs (configs named SxS_ilsvrc2012).

Names, forms and bounds (`layout`), finding the tarballs or folders
(`finding`), reading tars (`tar_images`) and folders (`folder_images`),
labels (`class_labels`), box-resizing (`resizing`), and a split's examples
over the worker pool or on Beam (`split_examples`).

May import (besides the standard library and the leaves `common`, `resources`):
`numpy`, `PIL`, `apache_beam`, `readers/`, `pipeline/`. Never TFDS or
TensorFlow (apache_beam lazily, on the Beam path).
"""
