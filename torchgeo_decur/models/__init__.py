"""Encoders, heads and checkpoint handling."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .backbones import build_backbone, feature_dim
    from .builders import build_encoder
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
    from .mit_weights import (
        DeCURMiTB2_Weights,
        DeCURMiTB5_Weights,
        decur_mit_b2,
        decur_mit_b5,
    )
    from .rda import (
        LAYER3_SETTINGS,
        LAYER4_SETTINGS,
        DeformableAttention,
        ResNetRDA,
        deformable_attention_blocks,
        share_deformable_attention,
    )
    from .resnet import (
        DeCURResNet50_Weights,
        DeCURResNet50RDA_Weights,
        decur_resnet50,
        decur_resnet50_rda,
    )
    from .vit import DeCURViTSmall16_Weights, decur_vit_small_patch16_224
    from .weights_enum import DeCURWeightsEnum

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
            '.builders': ('build_encoder',),
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
            '.mit_weights': (
                'DeCURMiTB2_Weights',
                'DeCURMiTB5_Weights',
                'decur_mit_b2',
                'decur_mit_b5',
            ),
            '.rda': (
                'LAYER3_SETTINGS',
                'LAYER4_SETTINGS',
                'DeformableAttention',
                'ResNetRDA',
                'deformable_attention_blocks',
                'share_deformable_attention',
            ),
            '.resnet': (
                'DeCURResNet50_Weights',
                'DeCURResNet50RDA_Weights',
                'decur_resnet50',
                'decur_resnet50_rda',
            ),
            '.vit': (
                'DeCURViTSmall16_Weights',
                'decur_vit_small_patch16_224',
            ),
            '.weights_enum': ('DeCURWeightsEnum',),
        },
    )

__all__ = (
    'LAYER3_SETTINGS',
    'LAYER4_SETTINGS',
    'MIT_VARIANTS',
    'DeCURMiTB2_Weights',
    'DeCURMiTB5_Weights',
    'DeCURResNet50RDA_Weights',
    'DeCURResNet50_Weights',
    'DeCURViTSmall16_Weights',
    'DeCURWeightsEnum',
    'DeformableAttention',
    'FCNFusionSegmenter',
    'LateFusionClassifier',
    'MiTEncoder',
    'Projector',
    'ResNetRDA',
    'build_backbone',
    'build_encoder',
    'decur_mit_b2',
    'decur_mit_b5',
    'decur_resnet50',
    'decur_resnet50_rda',
    'decur_vit_small_patch16_224',
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
