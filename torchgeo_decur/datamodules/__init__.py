"""Lightning data modules."""

from .bigearthnet_mm import BigEarthNetMMDataModule, bigearthnet_normalization
from .chips import PairedChipsDataModule
from .eurosat import EuroSATDeCURDataModule
from .geo import MultimodalGeoDataModule
from .geonrw_mm import GeoNRWMMDataModule, geonrw_normalization
from .ssl4eo_s12 import SSL4EOS12PairsDataModule, ssl4eo_s12_normalization
from .sunrgbd import SUNRGBDDataModule, sunrgbd_normalization
from .terramesh import TerraMeshDataModule, terramesh_normalization
from .utils import sample_fraction

__all__ = (
    'BigEarthNetMMDataModule',
    'EuroSATDeCURDataModule',
    'GeoNRWMMDataModule',
    'MultimodalGeoDataModule',
    'PairedChipsDataModule',
    'SSL4EOS12PairsDataModule',
    'SUNRGBDDataModule',
    'TerraMeshDataModule',
    'bigearthnet_normalization',
    'geonrw_normalization',
    'sample_fraction',
    'ssl4eo_s12_normalization',
    'sunrgbd_normalization',
    'terramesh_normalization',
)
