"""torchgeo_decur: DeCUR multimodal self-supervised learning for TorchGeo.

Importing the package registers its models and weights with torchgeo, and the
encoders timm does not have (``resnet50_rda``, ``mit_b2``, ``mit_b5``) with timm.
The tasks are imported on first use (``torchgeo_decur.DeCURTask``), so
command-line tools that need only the models or datasets start faster.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._torchgeo_cli import install as _one_line_errors

# mit and rda are imported for their side effect: they register the encoders
# timm lacks (resnet50_rda, mit_b2, mit_b5) with timm, so that timm.create_model
# and every model name of the tasks and configs work after `import
# torchgeo_decur`. They cost milliseconds: the weights load timm and smp anyway.
from .models import mit as _mit  # noqa: F401
from .models import rda as _rda  # noqa: F401
from .weights.enums import (
    DeCURMiTB2_Weights,
    DeCURMiTB5_Weights,
    DeCURResNet50_Weights,
    DeCURResNet50RDA_Weights,
    DeCURViTSmall16_Weights,
)
from .weights.registry import register_with_torchgeo

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
# Under the `torchgeo` command only: this package's bad-input errors end it in
# one line instead of a jsonargparse traceback (see _torchgeo_cli).
_one_line_errors()

__version__ = '0.1.0.dev0'

# Hidden from type checkers: they see the names through the TYPE_CHECKING
# imports above, so importing a name that does not exist is an error.
if not TYPE_CHECKING:
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
