"""torchgeo_decur: DeCUR multimodal self-supervised learning for TorchGeo.

Importing the package registers its models and weights with torchgeo. The tasks
are imported on first use (``torchgeo_decur.DeCURTask``), so command-line tools
that need only the models or datasets start faster.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from .models.mit_weights import DeCURMiTB2_Weights, DeCURMiTB5_Weights
from .models.registry import register_with_torchgeo
from .models.resnet import DeCURResNet50_Weights, DeCURResNet50RDA_Weights
from .models.vit import DeCURViTSmall16_Weights

if TYPE_CHECKING:
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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        '.tasks': (
            'DeCURTask',
            'MultimodalBarlowTwinsTask',
            'MultimodalCLIPTask',
            'MultimodalClassificationTask',
            'MultimodalSSLTask',
            'MultimodalSegmentationTask',
            'MultimodalSimCLRTask',
            'MultimodalVICRegTask',
        )
    },
)

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
