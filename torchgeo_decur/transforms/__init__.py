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
    SSL4EO_S12_S2A_BANDS,
    ApplyToKeys,
    ClipNormalize,
    Dequantize,
    PercentileClip,
)
from .pretrained import (
    geonrw_dem_transforms,
    geonrw_rgb_transforms,
    ssl4eo_s1_transforms,
    ssl4eo_s2_transforms,
    ssl4eo_s12_normalization,
    ssl4eo_s12_scaling,
    sunrgbd_normalization,
    sunrgbd_transforms,
)
from .statistics import BandStatistics, estimate_band_statistics, valid_mask

__all__ = (
    'PRESETS',
    'SSL4EO_S12_S1_BANDS',
    'SSL4EO_S12_S1_MEAN',
    'SSL4EO_S12_S1_STD',
    'SSL4EO_S12_S2A_BANDS',
    'SSL4EO_S12_S2_BANDS',
    'SSL4EO_S12_S2_MEAN',
    'SSL4EO_S12_S2_STD',
    'ApplyToKeys',
    'AugmentationConfig',
    'BandStatistics',
    'ClipNormalize',
    'Dequantize',
    'InsertChannel',
    'ModalityAugmentation',
    'PercentileClip',
    'RepeatChannels',
    'SelectChannels',
    'estimate_band_statistics',
    'geonrw_dem_transforms',
    'geonrw_rgb_transforms',
    'resolve_config',
    'ssl4eo_s1_transforms',
    'ssl4eo_s2_transforms',
    'ssl4eo_s12_normalization',
    'ssl4eo_s12_scaling',
    'sunrgbd_normalization',
    'sunrgbd_transforms',
    'valid_mask',
)
