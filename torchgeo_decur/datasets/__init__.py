"""Paired multimodal datasets."""

from .ssl4eo_s12 import SSL4EOS12Pairs
from .ssl4eo_s12_cache import SSL4EOS12Cache, write_cache

__all__ = ('SSL4EOS12Cache', 'SSL4EOS12Pairs', 'write_cache')
