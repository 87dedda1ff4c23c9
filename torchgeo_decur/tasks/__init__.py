"""Lightning tasks."""

from .base import MultimodalSSLTask
from .decur import DeCURTask
from .downstream import (
    MultimodalClassificationTask,
    MultimodalDownstreamTask,
    MultimodalSegmentationTask,
)

__all__ = (
    'DeCURTask',
    'MultimodalClassificationTask',
    'MultimodalDownstreamTask',
    'MultimodalSSLTask',
    'MultimodalSegmentationTask',
)
