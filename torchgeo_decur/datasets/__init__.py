"""Paired multimodal datasets."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .bigearthnet_mm import BigEarthNetMM, BigEarthNetV2MM, pairs_from_s1_metadata
    from .chips import PairedChips
    from .geonrw_mm import GeoNRWMM
    from .ssl4eo_s12 import SSL4EOS12Pairs
    from .ssl4eo_s12_cache import SSL4EOS12Cache
    from .sunrgbd import SUNRGBD
    from .terramesh import TerraMeshFormatError, TerraMeshStream

# Hidden from type checkers: they see the names through the TYPE_CHECKING
# imports above, so importing a name that does not exist is an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            '.bigearthnet_mm': (
                'BigEarthNetMM',
                'BigEarthNetV2MM',
                'pairs_from_s1_metadata',
            ),
            '.chips': ('PairedChips',),
            '.geonrw_mm': ('GeoNRWMM',),
            '.ssl4eo_s12': ('SSL4EOS12Pairs',),
            '.ssl4eo_s12_cache': ('SSL4EOS12Cache',),
            '.sunrgbd': ('SUNRGBD',),
            '.terramesh': (
                'TerraMeshFormatError',
                'TerraMeshStream',
            ),
        },
    )

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
