"""Data module for paired SSL4EO-S12 Sentinel-1/2 pretraining."""

from typing import Literal

from torch import nn
from torchgeo.datamodules import NonGeoDataModule

from ..datasets.ssl4eo_s12 import S2_L2A_BANDS, SeasonMode, SSL4EOS12Pairs
from ..datasets.ssl4eo_s12_cache import read_manifest
from ..transforms.normalize import (
    SSL4EO_S12_S1_MEAN,
    SSL4EO_S12_S1_STD,
    SSL4EO_S12_S2_BANDS,
    SSL4EO_S12_S2_MEAN,
    SSL4EO_S12_S2_STD,
    ApplyToKeys,
    ClipNormalize,
    Dequantize,
)


def ssl4eo_s12_normalization(
    s2_product: Literal['s2c', 's2a'] = 's2c', quantize: bool = False
) -> ApplyToKeys:
    """Per-band mean ± 2σ → [0, 1] scaling of the main DeCUR pipeline.

    This is the input the RN50-RDA and ViT-S/16 SSL4EO-S12 checkpoints were trained
    on (FACTS A §3.2-3.3).

    Args:
        s2_product: ``'s2c'`` (13 L1C bands) or ``'s2a'`` (12 L2A bands, B10 absent).
        quantize: Also reproduce the uint8 storage (multiples of 1/255).

    Returns:
        A transform for ``image_s1`` and ``image_s2`` of a batch dictionary.
    """
    s2_mean: tuple[float, ...] = SSL4EO_S12_S2_MEAN
    s2_std: tuple[float, ...] = SSL4EO_S12_S2_STD
    if s2_product == 's2a':
        keep = [SSL4EO_S12_S2_BANDS.index(b) for b in S2_L2A_BANDS]
        s2_mean = tuple(s2_mean[i] for i in keep)
        s2_std = tuple(s2_std[i] for i in keep)
    return ApplyToKeys(
        {
            'image_s1': ClipNormalize(
                SSL4EO_S12_S1_MEAN, SSL4EO_S12_S1_STD, quantize=quantize
            ),
            'image_s2': ClipNormalize(s2_mean, s2_std, quantize=quantize),
        }
    )


class SSL4EOS12PairsDataModule(NonGeoDataModule):
    """Lightning data module for :class:`~torchgeo_decur.datasets.SSL4EOS12Pairs`.

    Loads raw values in the workers and normalises on the device after the batch
    transfer (the DeCUR per-band mean ± 2σ window, FACTS A §3). Self-supervised
    pretraining has no validation split: validation reads the training locations
    at one fixed timestamp (see :meth:`setup`).

    With ``cache`` the samples come from a cache written by ``torchgeo-decur
    cache-ssl4eo-s12``; the normalised batches are identical to the GeoTIFF path
    (``uint8`` caches hold the quantised scaling and need ``quantize=True``).
    """

    def __init__(
        self,
        root: str = 'data',
        batch_size: int = 64,
        num_workers: int = 0,
        s2_product: Literal['s2c', 's2a'] = 's2c',
        views: Literal[1, 2] = 2,
        season_mode: SeasonMode = 'random',
        season: int = 0,
        size: int | None = 264,
        on_invalid: Literal['error', 'skip'] = 'error',
        check_files: bool = False,
        normalization: Literal['decur', 'none'] = 'decur',
        quantize: bool = False,
        cache: str | None = None,
    ) -> None:
        """Initialize a new SSL4EOS12PairsDataModule instance.

        Args:
            root: Directory holding the ``s1`` and ``s2c``/``s2a`` folders.
            batch_size: Samples per batch (per device).
            num_workers: Data loading worker processes.
            s2_product: ``'s2c'`` (L1C, 13 bands) or ``'s2a'`` (L2A, 12 bands).
            views: Views per modality in each sample (2 for pretraining).
            season_mode: ``'random'``, ``'same'``, ``'paired'`` or ``'fixed'``; see
                :class:`~torchgeo_decur.datasets.SSL4EOS12Pairs`.
            season: Timestamp index for ``season_mode='fixed'``.
            size: Side length every band is resampled to (None: native grid).
            on_invalid: ``'error'`` or ``'skip'`` unpaired/malformed locations.
            check_files: Verify every band file when the dataset is built.
            normalization: ``'decur'`` for the DeCUR input scaling, ``'none'`` to
                pass raw values on.
            quantize: Reproduce the uint8 quantisation of the reference pipeline.
            cache: Directory of a cache written by ``torchgeo-decur
                cache-ssl4eo-s12`` for the same ``s2_product`` and ``size``; read
                instead of the GeoTIFFs under ``root``.

        Raises:
            ValueError: If ``normalization`` is unknown, or a ``uint8`` cache is
                combined with ``quantize=False`` or ``normalization='none'``
                (it cannot reproduce those inputs).
        """
        super().__init__(
            SSL4EOS12Pairs,
            batch_size,
            num_workers,
            root=root,
            s2_product=s2_product,
            views=views,
            season_mode=season_mode,
            season=season,
            size=size,
            on_invalid=on_invalid,
            check_files=check_files,
            cache=cache,
        )
        if normalization not in ('decur', 'none'):
            raise ValueError(
                f"normalization must be 'decur' or 'none', got {normalization!r}"
            )
        encoding = None if cache is None else read_manifest(cache)['encoding']
        if encoding == 'uint8':
            if normalization != 'decur' or not quantize:
                raise ValueError(
                    f'cache {cache!r} stores the uint8 codes of the quantised DeCUR '
                    "scaling, so it reproduces only normalization='decur' with "
                    'quantize=True (got normalization='
                    f'{normalization!r}, quantize={quantize}); write a lossless '
                    "cache (encoding 'raw') for other settings"
                )
            self.aug: nn.Module = ApplyToKeys(
                {'image_s1': Dequantize(), 'image_s2': Dequantize()}
            )
        elif normalization == 'decur':
            self.aug = ssl4eo_s12_normalization(s2_product, quantize)
        else:
            self.aug = ApplyToKeys({})

    def setup(self, stage: str) -> None:
        """Build the dataset, and the validation view of it.

        SSL4EO-S12 has no held-out split, so validation runs over the same
        locations, with every view read at the fixed timestamp ``season``: the
        random season draws happen in the loader workers, out of reach of the
        task's seeded validation augmentations, and would make the ``val_*``
        values of different epochs incomparable.

        Args:
            stage: Either 'fit', 'validate', 'test', or 'predict'.
        """
        self.dataset = SSL4EOS12Pairs(**self.kwargs)
        if stage in ('fit', 'validate'):
            self.val_dataset = SSL4EOS12Pairs(
                **(self.kwargs | {'season_mode': 'fixed'})
            )
