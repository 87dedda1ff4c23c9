"""torchgeo_decur: DeCUR multimodal self-supervised learning for TorchGeo.

Importing the package registers its models and weights with torchgeo.
"""

from .tasks import (
    DeCURTask,
    MultimodalBarlowTwinsTask,
    MultimodalClassificationTask,
    MultimodalCLIPTask,
    MultimodalSegmentationTask,
    MultimodalSimCLRTask,
    MultimodalSSLTask,
    MultimodalVICRegTask,
)

__version__ = '0.1.0.dev0'

__all__ = (
    'DeCURTask',
    'MultimodalBarlowTwinsTask',
    'MultimodalCLIPTask',
    'MultimodalClassificationTask',
    'MultimodalSSLTask',
    'MultimodalSegmentationTask',
    'MultimodalSimCLRTask',
    'MultimodalVICRegTask',
    '__version__',
)
