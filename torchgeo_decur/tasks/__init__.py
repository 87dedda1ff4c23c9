"""Lightning tasks."""

from .base import MultimodalSSLTask
from .decur import DeCURTask

__all__ = ('DeCURTask', 'MultimodalSSLTask')
