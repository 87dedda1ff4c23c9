"""Lightning tasks."""

from .base import MultimodalSSLTask
from .baselines import (
    CrossModalSSLTask,
    MultimodalBarlowTwinsTask,
    MultimodalCLIPTask,
    MultimodalSimCLRTask,
    MultimodalVICRegTask,
)
from .classification import MultimodalClassificationTask
from .decur import DeCURTask
from .encoders import MultiEncoderTask
from .segmentation import MultimodalSegmentationTask
from .transfer import MultimodalDownstreamTask

__all__ = (
    'CrossModalSSLTask',
    'DeCURTask',
    'MultiEncoderTask',
    'MultimodalBarlowTwinsTask',
    'MultimodalCLIPTask',
    'MultimodalClassificationTask',
    'MultimodalDownstreamTask',
    'MultimodalSSLTask',
    'MultimodalSegmentationTask',
    'MultimodalSimCLRTask',
    'MultimodalVICRegTask',
)
