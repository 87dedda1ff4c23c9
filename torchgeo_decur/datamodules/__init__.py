"""Lightning data modules."""

from .eurosat import EuroSATDeCURDataModule
from .ssl4eo_s12 import SSL4EOS12PairsDataModule, ssl4eo_s12_normalization

__all__ = (
    'EuroSATDeCURDataModule',
    'SSL4EOS12PairsDataModule',
    'ssl4eo_s12_normalization',
)
