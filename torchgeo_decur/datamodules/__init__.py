"""Lightning data modules.

The BigEarthNet, GeoNRW, SSL4EO-S12 and SUN RGB-D input scalings
(``*_normalization``) live in :mod:`torchgeo_decur.transforms` and are
re-exported here for existing imports.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ..transforms.pretrained import (
        bigearthnet_normalization,
        geonrw_normalization,
        ssl4eo_s12_normalization,
        sunrgbd_normalization,
    )
    from .bigearthnet_mm import BigEarthNetMMDataModule
    from .chips import PairedChipsDataModule
    from .eurosat import EuroSATDeCURDataModule
    from .geo import MultimodalGeoDataModule
    from .geonrw_mm import GeoNRWMMDataModule
    from .ssl4eo_s12 import SSL4EOS12PairsDataModule
    from .sunrgbd import SUNRGBDDataModule
    from .terramesh import TerraMeshDataModule, terramesh_normalization
    from .utils import sample_fraction

# Hidden from type checkers: they see the names through the TYPE_CHECKING
# imports above, so importing a name that does not exist is an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            '..transforms.pretrained': (
                'bigearthnet_normalization',
                'geonrw_normalization',
                'ssl4eo_s12_normalization',
                'sunrgbd_normalization',
            ),
            '.bigearthnet_mm': ('BigEarthNetMMDataModule',),
            '.chips': ('PairedChipsDataModule',),
            '.eurosat': ('EuroSATDeCURDataModule',),
            '.geo': ('MultimodalGeoDataModule',),
            '.geonrw_mm': ('GeoNRWMMDataModule',),
            '.ssl4eo_s12': ('SSL4EOS12PairsDataModule',),
            '.sunrgbd': ('SUNRGBDDataModule',),
            '.terramesh': (
                'TerraMeshDataModule',
                'terramesh_normalization',
            ),
            '.utils': ('sample_fraction',),
        },
    )

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
