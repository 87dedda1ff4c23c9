"""Architectures: encoders (ResNet-RDA, MiT), projector heads, fusion models.

Reading and writing checkpoint files is :mod:`torchgeo_decur.checkpoints`; the
released DeCUR weights and every other weights source are
:mod:`torchgeo_decur.weights`.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .backbones import build_backbone, feature_dim
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
    'share_deformable_attention',
)
