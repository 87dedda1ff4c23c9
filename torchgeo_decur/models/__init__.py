"""Encoders, heads and checkpoint handling."""

from .backbones import build_backbone, feature_dim
from .checkpoints import load_exact, read_checkpoint, strip_prefix, unwrap_state_dict
from .heads import Projector

__all__ = (
    'Projector',
    'build_backbone',
    'feature_dim',
    'load_exact',
    'read_checkpoint',
    'strip_prefix',
    'unwrap_state_dict',
)
