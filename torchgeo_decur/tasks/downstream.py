"""Downstream tasks, kept importable from their former module.

The tasks now live in :mod:`.transfer` (shared base), :mod:`.classification`
and :mod:`.segmentation`.
"""

from .classification import MultimodalClassificationTask
from .segmentation import MultimodalSegmentationTask
from .transfer import MissingMode, MultimodalDownstreamTask

__all__ = (
    'MissingMode',
    'MultimodalClassificationTask',
    'MultimodalDownstreamTask',
    'MultimodalSegmentationTask',
)
