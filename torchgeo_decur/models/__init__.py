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
from .rda import (
    LAYER3_SETTINGS,
    LAYER4_SETTINGS,
    DeformableAttention,
    ResNetRDA,
    deformable_attention_blocks,
    share_deformable_attention,
)

__all__ = (
    'LAYER3_SETTINGS',
    'LAYER4_SETTINGS',
    'MIT_VARIANTS',
    'DeformableAttention',
    'FCNFusionSegmenter',
    'LateFusionClassifier',
    'MiTEncoder',
    'Projector',
    'ResNetRDA',
    'build_backbone',
    'deformable_attention_blocks',
    'feature_dim',
    'load_exact',
    'read_checkpoint',
    'remap_backbone_state_dict',
    'share_deformable_attention',
    'split_joint_state_dict',
    'strip_prefix',
    'unwrap_state_dict',
)
