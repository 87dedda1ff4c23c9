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
from ..transforms.bands import RepeatChannels, SelectChannels
from ..transforms.normalize import ApplyToKeys, PercentileClip
from .utils import RenameKeys, TrainBatchCheck, sample_fraction, warn_small_fraction

DEMScaling = Literal['minmax', 'percentile', 'none']


def geonrw_normalization(
    modalities: Sequence[str] = ('rgb', 'dem'),
    channel_order: Literal['bgr', 'rgb'] = 'bgr',
    dem_scaling: DEMScaling = 'minmax',
    dem_channels: int = 3,
) -> ApplyToKeys:
    """Input scaling of the DeCUR GeoNRW checkpoints.

    RGB stays in [0, 1] (no mean/std) and is flipped to B, G, R, the order OpenCV
    gave the reference code. The DEM is scaled per image: ``'minmax'`` maps min-max
    to [0, 1] (the downstream FCN code), ``'percentile'`` clips to the 1st-99th
    percentiles and rescales with ``/(p99 - p1 + 1e-5)`` (pretraining); then it is
    replicated to ``dem_channels`` channels (3 for the released DEM encoders).

    Args:
        modalities: Modalities present in the batch.
        channel_order: ``'bgr'`` (checkpoints) or ``'rgb'`` (as read).
        dem_scaling: ``'minmax'``, ``'percentile'`` or ``'none'`` (metres).
        dem_channels: Channels of the DEM after replication.

    Returns:
        A transform for the ``image_rgb`` / ``image_dem`` entries of a batch.

    Raises:
        ValueError: For unknown options.
    """
    if channel_order not in ('bgr', 'rgb'):
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    transforms: dict[str, nn.Module] = {}
    if 'rgb' in modalities and channel_order == 'bgr':
        transforms['image_rgb'] = SelectChannels([2, 1, 0])
    if 'dem' in modalities:
        steps: list[nn.Module] = []
        if dem_scaling == 'minmax':
            # eps keeps a perfectly flat tile finite (the reference divides by 0).
            steps.append(PercentileClip(0.0, 100.0, rescale=True, eps=1e-5))
        elif dem_scaling == 'percentile':
            steps.append(PercentileClip(1.0, 99.0, rescale=True, eps=1e-5))
        elif dem_scaling != 'none':
            raise ValueError(
                "dem_scaling must be 'minmax', 'percentile' or 'none', got "
                f'{dem_scaling!r}'
            )
        if dem_channels != 1:
            steps.append(RepeatChannels(dem_channels))
        if steps:
            transforms['image_dem'] = nn.Sequential(*steps)
    return ApplyToKeys(transforms)


class GeoNRWMMDataModule(TrainBatchCheck, NonGeoDataModule):
    """GeoNRW RGB + DEM for segmentation (and for DeCUR pretraining).

    * Tiles of ``tile_size`` px (250 as in the reference).
    * Validation: a city-grouped hold-out of ``val_fraction`` of the training
      cities (like torchgeo's GeoNRW data module); ``val_fraction=0`` validates on
      the test split, as the reference did.
    * Training label fraction drawn without replacement with a seed.
    * On the device: :func:`geonrw_normalization`, then, in training only, one
      RandomResizedCrop (``crop_size``, ``crop_scale``) + flips applied jointly to
      ``image_rgb``, ``image_dem`` and ``mask`` (nearest for the mask). Validation
      and test tiles are not augmented (the reference cropped its test set too);
      ``eval_size`` optionally resizes them.

    For DeCUR pretraining set ``augment: false`` (the task draws its own views per
    modality) and ``dem_scaling: percentile``; batches then hold one view per
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
        dem_scaling: DEMScaling = 'minmax',
        dem_channels: int = 3,
        augment: bool = True,
        crop_size: int = 224,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        image_resample: Literal['bilinear', 'nearest'] = 'bilinear',
        hflip: bool = True,
        vflip: bool = False,
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
            dem_scaling: ``'minmax'`` (downstream), ``'percentile'``
                (pretraining) or ``'none'``.
            dem_channels: DEM channels after replication (3 for the checkpoints).
            augment: Apply the joint training augmentation.
            crop_size: Output size of the training crop in pixels.
            crop_scale: Area range of the training RandomResizedCrop.
            image_resample: Interpolation of RGB and DEM in the training crop;
                the reference used ``'nearest'`` for all three keys (the mask is
                always resampled nearest).
            hflip: Random horizontal flips in training.
            vflip: Random vertical flips in training.
            eval_size: Resize validation/test tiles to this size (bilinear for
                images, nearest for the mask), e.g. 256 for decoders that need
                multiples of 32; None keeps them as they are.
            plain_image_key: With one modality, name its tensor ``image`` (for
                torchgeo's own SemanticSegmentation task).
            download: Download the dataset.

        Raises:
            ValueError: For invalid options.
        """
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
