"""Paired multimodal datasets."""

from .bigearthnet_mm import BigEarthNetMM, BigEarthNetV2MM, pairs_from_s1_metadata
from .chips import PairedChips
from .geonrw_mm import GeoNRWMM
from .ssl4eo_s12 import SSL4EOS12Pairs
from .ssl4eo_s12_cache import SSL4EOS12Cache
from .sunrgbd import SUNRGBD
from .terramesh import TerraMeshFormatError, TerraMeshStream

__all__ = (
    'SUNRGBD',
    'BigEarthNetMM',
    'BigEarthNetV2MM',
    'GeoNRWMM',
    'PairedChips',
    'SSL4EOS12Cache',
    'SSL4EOS12Pairs',
    'TerraMeshFormatError',
    'TerraMeshStream',
    'pairs_from_s1_metadata',
)
