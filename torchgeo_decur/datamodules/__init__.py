"""Lightning data modules.

Every data module takes the same ``normalization`` values
(:data:`~torchgeo_decur.datamodules.scaling.Normalization`); the scalings they
build live in :mod:`torchgeo_decur.transforms`.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
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
    'sample_fraction',
    'terramesh_normalization',
)
