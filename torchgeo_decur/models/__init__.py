"""Architectures (encoders, heads, fusion models) and checkpoint handling.

The released DeCUR weights live in :mod:`torchgeo_decur.weights`.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .backbones import build_backbone, feature_dim
    from .checkpoints import (
        load_encoder_state,
        load_exact,
        read_checkpoint,
        remap_backbone_state_dict,
        select_encoder_state_dict,
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

# Hidden from type checkers: they see the names through the TYPE_CHECKING
# imports above, so importing a name that does not exist is an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            '.backbones': (
                'build_backbone',
                'feature_dim',
            ),
            '.checkpoints': (
                'load_encoder_state',
                'load_exact',
                'read_checkpoint',
                'remap_backbone_state_dict',
                'select_encoder_state_dict',
                'split_joint_state_dict',
                'strip_prefix',
                'unwrap_state_dict',
            ),
            '.fusion': (
                'FCNFusionSegmenter',
                'LateFusionClassifier',
            ),
            '.heads': ('Projector',),
            '.mit': (
                'MIT_VARIANTS',
                'MiTEncoder',
            ),
            '.rda': (
                'LAYER3_SETTINGS',
                'LAYER4_SETTINGS',
                'DeformableAttention',
                'ResNetRDA',
                'deformable_attention_blocks',
                'share_deformable_attention',
            ),
        },
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
    'load_encoder_state',
    'load_exact',
    'read_checkpoint',
    'remap_backbone_state_dict',
    'select_encoder_state_dict',
    'share_deformable_attention',
    'split_joint_state_dict',
    'strip_prefix',
    'unwrap_state_dict',
)
