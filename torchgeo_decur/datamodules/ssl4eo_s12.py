"""Data module for paired SSL4EO-S12 Sentinel-1/2 pretraining."""

import warnings
from typing import Any, Literal

import torch
import torchvision.transforms.v2 as T
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchgeo.datamodules import NonGeoDataModule

from ..datasets.ssl4eo_s12 import SeasonMode, SSL4EOS12Pairs
from ..datasets.ssl4eo_s12_cache import read_manifest
from ..datasets.utils import collate_batch_rows
from ..transforms.normalize import ApplyToKeys, Dequantize
from ..transforms.pretrained import ssl4eo_s12_normalization, ssl4eo_s12_statistics
from ..transforms.statistics import BandStats
from .scaling import Normalization, resolve_normalization
from .utils import PinMemoryOnCuda, TrainBatchCheck, tune_worker_memory


class WarnNonFinite(nn.Module):
    """Pass a batch on unchanged; warn once if an image holds NaN or inf values.

    Used with ``normalization='none'``: raw Sentinel-1 dB is -inf where the
    backscatter is zero (the DeCUR scaling clips those to the bottom of its
    window), and a network fed -inf produces a NaN loss. Batches are checked
    only until the first warning, so later batches cost nothing.
    """

    def __init__(self, keys: tuple[str, ...] = ('image_s1', 'image_s2')) -> None:
        """Initialize a new WarnNonFinite instance.

        Args:
            keys: Batch keys to check (those present in a batch).
        """
        super().__init__()
        self.keys = keys
        self.warned = False

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Check the images (until the first warning) and return the batch.

        Args:
            batch: Batch dictionary with ``image_*`` tensors of any shape.

        Returns:
            ``batch`` itself.
        """
        for key in self.keys:
            x = batch.get(key)
            if self.warned or not isinstance(x, Tensor):
                continue
            if not bool(torch.isfinite(x).all()):
                self.warned = True
                n = int((~torch.isfinite(x)).sum())
                warnings.warn(
                    f"normalization='none': {key} holds {n} NaN or infinite "
                    'values (raw Sentinel-1 dB is -inf where the backscatter is '
                    'zero); a network fed them gives a NaN loss. Use '
                    "normalization='decur', which maps them to the bottom of its "
                    'window, or clean the data.',
                    UserWarning,
                    stacklevel=2,
                )
        return batch


class SSL4EOS12PairsDataModule(PinMemoryOnCuda, TrainBatchCheck, NonGeoDataModule):
    """Lightning data module for :class:`~torchgeo_decur.datasets.SSL4EOS12Pairs`.

    Loads raw values in the workers and normalises on the device after the batch
    transfer (the DeCUR per-band mean ± 2σ window). Self-supervised
    pretraining has no validation split: validation reads the training locations
    at one fixed timestamp (see :meth:`setup`).

    Batches leave the workers in the samples' storage types, so the fewest bytes
    cross the workers' shared memory and the host-to-device copy:

    * ``image_s1``: (N, views x 2, size, size) float32 dB (uint8 codes from a
      ``uint8`` cache);
    * ``image_s2``: (N, views x 13 (L1C) or 12 (L2A), size, size) uint16 DN
      (float32 from a ``float32`` cache, uint8 codes from a ``uint8`` cache).

    After the transfer (``on_after_batch_transfer``) both are float32 on the
    device: scaled to [0, 1], or raw values in their units with
    ``normalization='none'``; the conversion is exact, so the tensors equal those
    of a float32 loader bit for bit. On a CUDA trainer the loaders pin their
    batches (``pin_memory``), so the copy to the GPU runs asynchronously.

    Its DataLoader workers raise glibc's malloc thresholds when they start
    (:func:`~torchgeo_decur.datamodules.utils.tune_worker_memory` as
    ``worker_init_fn``), so freed sample buffers are reused rather than faulted
    in again for every sample.

    With ``cache`` the samples come from a cache written by ``torchgeo-decur
    cache-ssl4eo-s12``; the normalised batches are identical to the GeoTIFF path
    (``uint8`` caches hold the quantised scaling and need
    ``normalization='decur_uint8'``).
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
        normalization: Normalization = 'decur',
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
            normalization: ``'decur'``/``'decur_pretraining'`` for the DeCUR
                input scaling, ``'decur_uint8'`` for the same with the uint8
                quantisation of the reference pipeline, ``'none'`` to pass raw
                values on (as float32).
            cache: Directory of a cache written by ``torchgeo-decur
                cache-ssl4eo-s12`` for the same ``s2_product`` and ``size``; read
                instead of the GeoTIFFs under ``root``.

        Raises:
            ValueError: If ``normalization`` is unknown, or a ``uint8`` cache is
                combined with another ``normalization`` than ``'decur_uint8'``
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
        # Cached batches are read into one buffer per key (the dataset's
        # __getitems__); this collate hands that buffer on instead of copying it.
        self.collate_fn = collate_batch_rows
        #: Per-modality statistics of the scaling (raw units), if it has them.
        self.statistics: dict[str, BandStats] = {}
        scaling = resolve_normalization(normalization, type(self).__name__)
        encoding = None if cache is None else read_manifest(cache)['encoding']
        if encoding == 'uint8':
            if not scaling.quantize:
                raise ValueError(
                    f'cache {cache!r} stores the uint8 codes of the quantised DeCUR '
                    "scaling, so it reproduces only normalization='decur_uint8' "
                    f'(got normalization={normalization!r}); write a lossless '
                    "cache (encoding 'raw') for other settings"
                )
            self.aug: nn.Module = ApplyToKeys(
                {'image_s1': Dequantize(), 'image_s2': Dequantize()}
            )
        elif scaling.scale:
            # ClipNormalize converts to float32 first (exact for uint16 DN).
            self.aug = ssl4eo_s12_normalization(s2_product, scaling.quantize)
            if not scaling.quantize:
                self.statistics = {
                    's1': ssl4eo_s12_statistics('s1'),
                    's2': ssl4eo_s12_statistics(s2_product),
                }
        else:
            self.aug = nn.Sequential(
                ApplyToKeys(
                    {
                        'image_s1': T.ToDtype(torch.float32),
                        'image_s2': T.ToDtype(torch.float32),
                    }
                ),
                WarnNonFinite(),
            )

    def state_dict(self) -> dict[str, Any]:
        """The band statistics of the input scaling, for the checkpoint.

        Exports and ``torchgeo-decur info`` read them from there (see
        :func:`~torchgeo_decur.checkpoints.architecture.data_statistics`), so an
        encoder pretrained here carries the scaling it expects.

        Returns:
            ``{'statistics': {'s1': {'mean', 'std'}, 's2': {...}}}`` with
            ``normalization='decur'`` or ``'decur_pretraining'``; ``{}`` otherwise
            (raw values, or the uint8 steps the formula does not describe).
        """
        return {'statistics': self.statistics} if self.statistics else {}

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

    def _dataloader_factory(self, split: str) -> DataLoader[dict[str, Tensor]]:
        """The torchgeo loader, with the worker memory tuning as ``worker_init_fn``.

        Args:
            split: Either 'train', 'val', 'test', or 'predict'.

        Returns:
            The data loader.
        """
        loader: DataLoader[dict[str, Tensor]] = super()._dataloader_factory(split)
        # Not a constructor argument of torchgeo's factory; DataLoader allows
        # setting it before the first iteration starts the workers.
        loader.worker_init_fn = tune_worker_memory
        return loader
