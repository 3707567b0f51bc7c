"""imagenet_resized: downsampled ImageNet (Chrabaszcz et al., 2017) for TFDS.

Importing this package registers the `imagenet_resized` builder with TFDS:

    import imagenet_resized
    ds = tfds.load('imagenet_resized/32x32', split='train', as_supervised=True)
"""

from imagenet_resized.tools import quiet_start as _quiet_start

_quiet_start.quiet_tensorflow_for_command_line()

from imagenet_resized import arrays
from imagenet_resized import labels
from imagenet_resized.common import SourceError
from imagenet_resized.configs import ImagenetResizedConfig
from imagenet_resized.imagenet_resized_dataset_builder import Builder

__all__ = [
    'Builder',
    'ImagenetResizedConfig',
    'SourceError',
    'arrays',
    'labels',
]
__version__ = '0.1.0'
