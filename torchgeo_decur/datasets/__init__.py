"""Paired multimodal datasets."""

from .ssl4eo_s12 import SSL4EOS12Pairs

__all__ = ('SSL4EOS12Pairs',)
