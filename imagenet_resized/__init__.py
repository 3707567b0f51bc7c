"""imagenet_resized: downsampled ImageNet (Chrabaszcz et al., 2017) for TFDS.

Importing this package registers the `imagenet_resized` builder with TFDS:

    import imagenet_resized
    ds = tfds.load('imagenet_resized/32x32', split='train', as_supervised=True)
"""

from imagenet_resized.imagenet_resized_dataset_builder import Builder
from imagenet_resized.imagenet_resized_dataset_builder import ImagenetResizedConfig
from imagenet_resized import labels

__all__ = ['Builder', 'ImagenetResizedConfig', 'labels']
__version__ = '0.1.0'
