"""torchgeo_decur: DeCUR multimodal self-supervised learning for TorchGeo.

Importing the package registers its models and weights with torchgeo.
"""

from .models import (
    DeCURMiTB2_Weights,
    DeCURMiTB5_Weights,
    DeCURResNet50_Weights,
    DeCURResNet50RDA_Weights,
    DeCURViTSmall16_Weights,
)
from .models.registry import register_with_torchgeo
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

register_with_torchgeo()

__version__ = '0.1.0.dev0'

__all__ = (
    'DeCURMiTB2_Weights',
    'DeCURMiTB5_Weights',
    'DeCURResNet50RDA_Weights',
    'DeCURResNet50_Weights',
    'DeCURTask',
    'DeCURViTSmall16_Weights',
    'MultimodalBarlowTwinsTask',
    'MultimodalCLIPTask',
    'MultimodalClassificationTask',
    'MultimodalSSLTask',
    'MultimodalSegmentationTask',
    'MultimodalSimCLRTask',
    'MultimodalVICRegTask',
    '__version__',
)
