"""Normalisation and augmentation transforms."""

from .augmentations import (
    PRESETS,
    AugmentationConfig,
    ModalityAugmentation,
    resolve_config,
)
from .bands import InsertChannel, RepeatChannels, SelectChannels
from .normalize import (
    SSL4EO_S12_S1_BANDS,
    SSL4EO_S12_S1_MEAN,
    SSL4EO_S12_S1_STD,
    SSL4EO_S12_S2_BANDS,
    SSL4EO_S12_S2_MEAN,
    SSL4EO_S12_S2_STD,
    ApplyToKeys,
    ClipNormalize,
    PercentileClip,
)

__all__ = (
    'PRESETS',
    'SSL4EO_S12_S1_BANDS',
    'SSL4EO_S12_S1_MEAN',
    'SSL4EO_S12_S1_STD',
    'SSL4EO_S12_S2_BANDS',
    'SSL4EO_S12_S2_MEAN',
    'SSL4EO_S12_S2_STD',
    'ApplyToKeys',
    'AugmentationConfig',
    'ClipNormalize',
    'InsertChannel',
    'ModalityAugmentation',
    'PercentileClip',
    'RepeatChannels',
    'SelectChannels',
    'resolve_config',
)
