"""Lightning tasks."""

from .base import MultimodalSSLTask
from .baselines import (
    CrossModalSSLTask,
    MultimodalBarlowTwinsTask,
    MultimodalCLIPTask,
    MultimodalSimCLRTask,
    MultimodalVICRegTask,
)
from .decur import DeCURTask
from .downstream import (
    MultimodalClassificationTask,
    MultimodalDownstreamTask,
    MultimodalSegmentationTask,
)

__all__ = (
    'CrossModalSSLTask',
    'DeCURTask',
    'MultimodalBarlowTwinsTask',
    'MultimodalCLIPTask',
    'MultimodalClassificationTask',
    'MultimodalDownstreamTask',
    'MultimodalSSLTask',
    'MultimodalSegmentationTask',
    'MultimodalSimCLRTask',
    'MultimodalVICRegTask',
)
