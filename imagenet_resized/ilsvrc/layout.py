"""The ILSVRC2012 files: names, forms, bounds on one image, the method."""

from __future__ import annotations

import re

import PIL

from imagenet_resized.common import TRAIN
from imagenet_resized.common import VALIDATION

TRAIN_TAR = 'ILSVRC2012_img_train.tar'
VAL_TAR = 'ILSVRC2012_img_val.tar'
TARBALLS = {TRAIN: TRAIN_TAR, VALIDATION: VAL_TAR}
# Folder names of the extracted splits.
FOLDER_NAMES = {
    TRAIN: ('train', 'ILSVRC2012_img_train'),
    VALIDATION: ('val', 'validation', 'ILSVRC2012_img_val'),
}
FORM_TARBALL = 'ILSVRC2012 tarballs'
FORM_FOLDERS = 'ILSVRC2012 folders'
METHOD = (
    "computed from the ILSVRC2012 JPEGs by the authors' documented method:"
    " Pillow, convert('RGB'), resize((S, S), Image.BOX); not compared with the"
    " authors' files, whose exact JPEGs and Pillow version are unknown"
)
METHOD_DRAFT = (
    'computed from the ILSVRC2012 JPEGs decoded at reduced scale (JPEG draft'
    " mode, not pixel-identical to the full decode), then the authors'"
    " documented method: Pillow, convert('RGB'), resize((S, S), Image.BOX)"
)
NUM_VALIDATION_IMAGES = 50_000
# The ground truth as tensorflow-datasets ships it, relative to its package.
VALIDATION_LABELS = 'datasets/imagenet2012/validation_labels.txt'

CLASS_TAR_RE = re.compile(r'^(n\d{8})\.tar$')
VAL_NAME_RE = re.compile(r'^ILSVRC2012_val_(\d{8})\.JPEG$')
# How deep under the searched folder the tarballs / split folders may sit
# (Kaggle's layout puts them at ILSVRC/Data/CLS-LOC/train).
MAX_SEARCH_DEPTH = 5
# Images made at a time in a worker (one message to the caller).
DECODE_CHUNK_IMAGES = 64
# Validation images per work unit (a class is one unit of the train split).
VAL_IMAGES_PER_UNIT = 1000
# Image formats accepted under a .JPEG name (ImageNet holds one PNG).
IMAGE_FORMATS = ('JPEG', 'PNG')
# Bounds on one image, checked before it is read or decoded (whatever Pillow's
# Image.MAX_IMAGE_PIXELS), far above ILSVRC2012's JPEGs.
MAX_IMAGE_BYTES = 64 << 20
MAX_IMAGE_PIXELS = 8192 * 8192
IMAGE_SUFFIXES = ('.jpeg', '.jpg', '.png')


def method(draft: bool = False) -> str:
  """How the images were made, for the dataset metadata (Pillow's version too)."""
  return f'{METHOD_DRAFT if draft else METHOD} (made with Pillow {PIL.__version__})'
