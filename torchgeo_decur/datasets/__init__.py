"""Paired multimodal datasets."""

from .ssl4eo_s12 import SSL4EOS12Pairs
from .sunrgbd import SUNRGBD

__all__ = ('SUNRGBD', 'SSL4EOS12Pairs')
