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

__all__ = (
    'CrossModalSSLTask',
    'DeCURTask',
    'MultimodalBarlowTwinsTask',
    'MultimodalCLIPTask',
    'MultimodalSSLTask',
    'MultimodalSimCLRTask',
    'MultimodalVICRegTask',
)
