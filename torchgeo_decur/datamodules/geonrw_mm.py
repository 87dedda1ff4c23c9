"""Data module for GeoNRW RGB + DEM: segmentation and DeCUR pretraining."""

from collections.abc import Sequence
from typing import Any, Literal

import kornia.augmentation as K
import torch
from torch import nn
from torch.utils.data import Subset
from torchgeo.datamodules import NonGeoDataModule
from torchgeo.datamodules.utils import group_shuffle_split

from ..datasets.geonrw_mm import GeoNRWMM, GeoNRWModality, check_geonrw_modalities
from ..transforms.pretrained import DEMScaling, geonrw_normalization
from .scaling import Normalization, resolve_normalization
from .utils import RenameKeys, TrainBatchCheck, sample_fraction, warn_small_fraction

#: Training augmentation options the data module takes through augment_kwargs.
AUGMENT_OPTIONS = ('crop_scale', 'image_resample', 'hflip', 'vflip')


class GeoNRWMMDataModule(TrainBatchCheck, NonGeoDataModule):
    """GeoNRW RGB + DEM for segmentation (and for DeCUR pretraining).

    * Tiles of ``tile_size`` px (250 as in the reference).
    * Validation: a city-grouped hold-out of ``val_fraction`` of the training
      cities (like torchgeo's GeoNRW data module); ``val_fraction=0`` validates on
      the test split, as the reference did.
    * Training label fraction drawn without replacement with a seed.
    * On the device: :func:`~torchgeo_decur.transforms.geonrw_normalization`
      (``normalization``), then, in training only, one
      RandomResizedCrop (``crop_size``) + flips applied jointly to ``image_rgb``,
      ``image_dem`` and ``mask`` (nearest for the mask), tuned by
      ``augment_kwargs``. Validation
      and test tiles are not augmented (the reference cropped its test set too);
      ``eval_size`` optionally resizes them.

    For DeCUR pretraining set ``augment: false`` (the task draws its own views per
    modality) and ``normalization: decur_pretraining``; batches then hold one view per
    modality, which :meth:`~torchgeo_decur.MultimodalSSLTask.split_views` accepts.
    """

    # Images are already scaled to [0, 1]; torchgeo tasks "denormalise" with these
    # before plotting, which is then a no-op.
    mean = torch.tensor(0.0)
    std = torch.tensor(1.0)

    def __init__(
        self,
        root: str = 'data',
        modalities: Sequence[GeoNRWModality] = ('rgb', 'dem'),
        batch_size: int = 64,
        num_workers: int = 0,
        tile_size: int | None = 250,
        train_fraction: float = 1.0,
        fraction_seed: int = 42,
        val_fraction: float = 0.2,
        channel_order: Literal['bgr', 'rgb'] = 'bgr',
        normalization: Normalization = 'decur',
        dem_channels: int = 3,
        augment: bool = True,
        crop_size: int = 224,
        augment_kwargs: dict[str, Any] | None = None,
        eval_size: int | None = None,
        plain_image_key: bool = False,
        download: bool = False,
    ) -> None:
        """Initialize a new GeoNRWMMDataModule instance.

        Args:
            root: Directory holding the city folders.
            modalities: Which of ``'rgb'`` and ``'dem'`` to load.
            batch_size: Samples per batch (per device).
            num_workers: Data loading worker processes.
            tile_size: Tile side in pixels (None: whole 1000 px images).
            train_fraction: Share of the training tiles to use, in (0, 1].
            fraction_seed: Seed of the label-fraction draw.
            val_fraction: Share of training cities held out for validation
                (0: validate on the test split).
            channel_order: ``'bgr'`` (DeCUR checkpoints) or ``'rgb'``.
            normalization: ``'decur'`` (RGB [0, 1], DEM min-max to [0, 1] per
                tile, as the downstream reference), ``'decur_pretraining'`` (DEM
                clipped to its 1st-99th percentiles and rescaled, as the
                pretraining reference) or ``'none'`` (DEM in metres).
            dem_channels: DEM channels after replication (3 for the checkpoints).
            augment: Apply the joint training augmentation.
            crop_size: Output size of the training crop in pixels.
            augment_kwargs: Further options of the training augmentation:
                ``crop_scale`` (area range of the RandomResizedCrop, default
                ``[0.2, 1.0]``), ``image_resample`` (interpolation of RGB and DEM
                in the crop, ``'bilinear'`` (default) or ``'nearest'``; the mask is
                always resampled nearest), ``hflip`` / ``vflip`` (random
                horizontal / vertical flips, default true / false).
            eval_size: Resize validation/test tiles to this size (bilinear for
                images, nearest for the mask), e.g. 256 for decoders that need
                multiples of 32; None keeps them as they are.
            plain_image_key: With one modality, name its tensor ``image`` (for
                torchgeo's own SemanticSegmentation task).
            download: Download the dataset.

        Raises:
            ValueError: For invalid options.
        """
        options = dict(augment_kwargs or {})
        unknown = sorted(set(options) - set(AUGMENT_OPTIONS))
        if unknown:
            raise ValueError(
                f'augment_kwargs has unknown keys {unknown}; known: '
                f'{list(AUGMENT_OPTIONS)}'
            )
        scaling = resolve_normalization(
            normalization,
            type(self).__name__,
            ('decur', 'decur_pretraining', 'none'),
        )
        dem_scaling: DEMScaling = (
            'none'
            if not scaling.scale
            else 'percentile'
            if scaling.pretraining
            else 'minmax'
        )
        crop_scale: tuple[float, float] = options.get('crop_scale', (0.2, 1.0))
        image_resample: str = options.get('image_resample', 'bilinear')
        hflip: bool = options.get('hflip', True)
        vflip: bool = options.get('vflip', False)
        mods = check_geonrw_modalities(modalities)
        if plain_image_key and len(mods) != 1:
            raise ValueError('plain_image_key needs exactly one modality')
        if image_resample not in ('bilinear', 'nearest'):
            raise ValueError(
                "image_resample must be 'bilinear' or 'nearest', got "
                f'{image_resample!r}'
            )
        if not 0 <= val_fraction < 1:
            raise ValueError(f'val_fraction must be in [0, 1), got {val_fraction}')
        super().__init__(
            GeoNRWMM,
            batch_size,
            num_workers,
            root=root,
            modalities=mods,
            tile_size=tile_size,
            download=download,
        )
        self.modalities = mods
        self.train_fraction = train_fraction
        self.fraction_seed = fraction_seed
        self.val_fraction = val_fraction
        sample_fraction(1, train_fraction, fraction_seed)  # validate early

        norm = geonrw_normalization(mods, channel_order, dem_scaling, dem_channels)
        rename: nn.Module = (
            RenameKeys({f'image_{mods[0]}': 'image'})
            if plain_image_key
            else nn.Identity()
        )
        train: list[nn.Module] = [norm]
        if augment:
            ops: list[Any] = [
                K.RandomResizedCrop(
                    (crop_size, crop_size),
                    scale=tuple(crop_scale),
                    resample=image_resample.upper(),
                )
            ]
            if hflip:
                ops.append(K.RandomHorizontalFlip())
            if vflip:
                ops.append(K.RandomVerticalFlip())
            # Keys named image* and mask share one set of parameters per sample.
            train.append(K.AugmentationSequential(*ops, data_keys=None, keepdim=True))
        self.train_aug = nn.Sequential(*train, rename)
        evaluation: list[nn.Module] = [norm]
        if eval_size is not None:
            evaluation.append(
                K.AugmentationSequential(
                    K.Resize((eval_size, eval_size)), data_keys=None, keepdim=True
                )
            )
        self.aug = nn.Sequential(*evaluation, rename)

    def setup(self, stage: str) -> None:
        """Build the datasets.

        Args:
            stage: Either 'fit', 'validate', 'test', or 'predict'.
        """
        if stage in ('fit', 'validate'):
            full = GeoNRWMM(split='train', **self.kwargs)
            if self.val_fraction > 0:
                cities = [full.city(i) for i in range(len(full))]
                train_idx, val_idx = group_shuffle_split(
                    cities, test_size=self.val_fraction, random_state=0
                )
                self.val_dataset = Subset(full, val_idx)
            else:
                train_idx = list(range(len(full)))
                self.val_dataset = GeoNRWMM(split='test', **self.kwargs)
            chosen = sample_fraction(
                len(train_idx), self.train_fraction, self.fraction_seed
            )
            self.train_dataset = Subset(full, [train_idx[i] for i in chosen])
            warn_small_fraction(
                len(chosen), len(train_idx), self.train_fraction, self.batch_size
            )
        if stage in ('test', 'predict'):
            self.test_dataset = GeoNRWMM(split='test', **self.kwargs)
            self.predict_dataset = self.test_dataset


__all__ = ('GeoNRWMMDataModule',)
