"""Encoders, heads and checkpoint handling."""

from .backbones import build_backbone, feature_dim
from .checkpoints import (
    load_exact,
    read_checkpoint,
    remap_backbone_state_dict,
    split_joint_state_dict,
    strip_prefix,
    unwrap_state_dict,
)
from .fusion import FCNFusionSegmenter, LateFusionClassifier
from .heads import Projector
from .mit import MIT_VARIANTS, MiTEncoder

__all__ = (
    'MIT_VARIANTS',
    'FCNFusionSegmenter',
    'LateFusionClassifier',
    'MiTEncoder',
    'Projector',
    'build_backbone',
    'feature_dim',
    'load_exact',
    'read_checkpoint',
    'remap_backbone_state_dict',
    'split_joint_state_dict',
    'strip_prefix',
    'unwrap_state_dict',
)
