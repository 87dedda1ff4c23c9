"""Lightning data modules."""

from .ssl4eo_s12 import SSL4EOS12PairsDataModule, ssl4eo_s12_normalization
from .sunrgbd import SUNRGBDDataModule, sunrgbd_normalization

__all__ = (
    'SSL4EOS12PairsDataModule',
    'SUNRGBDDataModule',
    'ssl4eo_s12_normalization',
    'sunrgbd_normalization',
)
