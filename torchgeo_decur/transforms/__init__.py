"""Normalisation and augmentation transforms."""

from .augmentations import (
    PRESETS,
    AugmentationConfig,
    ModalityAugmentation,
    resolve_config,
)
from .normalize import (
    SSL4EO_S12_S1_BANDS,
    SSL4EO_S12_S1_MEAN,
    SSL4EO_S12_S1_STD,
    SSL4EO_S12_S2_BANDS,
    SSL4EO_S12_S2_MEAN,
    SSL4EO_S12_S2_STD,
    ApplyToKeys,
    ClipNormalize,
    Dequantize,
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
    'Dequantize',
    'ModalityAugmentation',
    'PercentileClip',
    'resolve_config',
)
