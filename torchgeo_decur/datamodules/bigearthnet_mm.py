"""Data module for BigEarthNet-MM multi-label classification (S1, S2, S1+S2)."""

from collections.abc import Sequence
from typing import Any, Literal

import kornia.augmentation as K
import torch
from torch import nn
from torch.utils.data import Subset
from torchgeo.datamodules import NonGeoDataModule

from ..datasets.bigearthnet_mm import (
    BigEarthNetMM,
    BigEarthNetV2MM,
    Modality,
    check_modalities,
)
from ..transforms.pretrained import bigearthnet_normalization
from .scaling import Normalization, resolve_normalization
from .utils import RenameKeys, TrainBatchCheck, sample_fraction, warn_small_fraction

#: Options of the v1 dataset the data module passes on through dataset_kwargs.
V1_DATASET_OPTIONS = ('s1_dir', 's2_dir', 'split_dir', 'check_pairs')


class BigEarthNetMMDataModule(TrainBatchCheck, NonGeoDataModule):
    """BigEarthNet-MM with the DeCUR evaluation protocol, fixed where it leaked.

    * a seeded label fraction of the training split drawn without replacement
      (:func:`~torchgeo_decur.datamodules.utils.sample_fraction`);
    * on-device scaling
      (:func:`~torchgeo_decur.transforms.bigearthnet_normalization`), then geometric
      transforms applied jointly to all modalities: training RandomResizedCrop
      (``crop_size``, scale ``crop_scale``) + horizontal and vertical flips;
      validation/test Resize(``eval_resize``) + CenterCrop(``crop_size``), no
      randomness.

    Batches hold ``image_<modality>`` (N, C, crop, crop) and ``label`` (N, classes);
    with ``plain_image_key`` and one modality the image is named ``image`` so
    torchgeo's own :class:`~torchgeo.tasks.Classification` can consume it.
    """

    # Images are already scaled to [0, 1]; torchgeo tasks "denormalise" with these
    # before plotting, which is then a no-op.
    mean = torch.tensor(0.0)
    std = torch.tensor(1.0)

    def __init__(
        self,
        root: str = 'data',
        modalities: Sequence[Modality] = ('s1', 's2'),
        version: Literal['v1', 'v2'] = 'v1',
        batch_size: int = 64,
        num_workers: int = 0,
        num_classes: int = 19,
        image_size: int = 120,
        train_fraction: float = 1.0,
        fraction_seed: int = 42,
        normalization: Normalization = 'decur',
        insert_b10: bool = False,
        crop_size: int = 224,
        crop_scale: tuple[float, float] = (0.8, 1.0),
        eval_resize: int = 256,
        plain_image_key: bool = False,
        dataset_kwargs: dict[str, Any] | None = None,
        download: bool = False,
    ) -> None:
        """Initialize a new BigEarthNetMMDataModule instance.

        Args:
            root: Dataset directory.
            modalities: Which of ``'s1'`` and ``'s2'`` to load (order kept).
            version: ``'v1'`` (:class:`~torchgeo_decur.datasets.BigEarthNetMM`) or
                ``'v2'`` (:class:`~torchgeo_decur.datasets.BigEarthNetV2MM`).
            batch_size: Samples per batch (per device).
            num_workers: Data loading worker processes.
            num_classes: 19 or 43 (v1 only; v2 has 19).
            image_size: Side length bands are read at (120 = native 10 m grid).
            train_fraction: Share of the training split to use, in (0, 1].
            fraction_seed: Seed of the label-fraction draw.
            normalization: ``'decur'``/``'decur_pretraining'`` (reference
                scaling), ``'decur_uint8'`` (the same, rounded down to the
                reference's uint8 steps) or ``'none'`` (raw dB / DN).
            insert_b10: Insert a zero B10 channel so S2 has 13 channels.
            crop_size: Network input size in pixels.
            crop_scale: Area range of the training RandomResizedCrop.
            eval_resize: Resize before the validation/test centre crop.
            plain_image_key: With one modality, name its tensor ``image``.
            dataset_kwargs: Further arguments of the v1 dataset
                (:class:`~torchgeo_decur.datasets.BigEarthNetMM`): ``s1_dir`` /
                ``s2_dir`` (folder names, e.g. ``BigEarthNet-S1-Example``),
                ``split_dir`` (default ``root``), ``check_pairs`` (default true).
            download: Download the dataset.

        Raises:
            ValueError: For invalid modalities, options or sizes.
        """
        extra = dict(dataset_kwargs or {})
        unknown = sorted(set(extra) - set(V1_DATASET_OPTIONS))
        if unknown:
            raise ValueError(
                f'dataset_kwargs has unknown keys {unknown}; known: '
                f'{list(V1_DATASET_OPTIONS)}'
            )
        scaling = resolve_normalization(normalization, type(self).__name__)
        mods = check_modalities(modalities)
        if plain_image_key and len(mods) != 1:
            raise ValueError('plain_image_key needs exactly one modality')
        if eval_resize < crop_size:
            raise ValueError(
                f'eval_resize ({eval_resize}) must be at least crop_size ({crop_size})'
            )
        kwargs: dict[str, Any] = {
            'root': root,
            'modalities': mods,
            'image_size': image_size,
            'download': download,
        }
        dataset_class: type[BigEarthNetMM] | type[BigEarthNetV2MM]
        if version == 'v1':
            dataset_class = BigEarthNetMM
            kwargs.update(num_classes=num_classes, **extra)
        elif version == 'v2':
            if num_classes != 19 or extra:
                raise ValueError(
                    'BigEarthNet v2 has 19 classes and its own layout; num_classes '
                    'and dataset_kwargs (s1_dir, s2_dir, split_dir, check_pairs) '
                    'are v1 options'
                )
            dataset_class = BigEarthNetV2MM
        else:
            raise ValueError(f"version must be 'v1' or 'v2', got {version!r}")
        super().__init__(dataset_class, batch_size, num_workers, **kwargs)
        self.dataset_cls = dataset_class
        self.modalities = mods
        self.train_fraction = train_fraction
        self.fraction_seed = fraction_seed
        sample_fraction(1, train_fraction, fraction_seed)  # validate early

        norm = bigearthnet_normalization(
            mods,
            'decur' if scaling.scale else 'none',
            quantize=scaling.quantize,
            insert_b10=insert_b10,
        )
        rename: nn.Module = (
            RenameKeys({f'image_{mods[0]}': 'image'})
            if plain_image_key
            else nn.Identity()
        )
        train_geometry = K.AugmentationSequential(
            K.RandomResizedCrop((crop_size, crop_size), scale=tuple(crop_scale)),
            K.RandomHorizontalFlip(),
            K.RandomVerticalFlip(),
            data_keys=None,
            keepdim=True,
        )
        eval_geometry = K.AugmentationSequential(
            K.Resize(eval_resize),
            K.CenterCrop(crop_size),
            data_keys=None,
            keepdim=True,
        )
        self.train_aug = nn.Sequential(norm, train_geometry, rename)
        self.aug = nn.Sequential(norm, eval_geometry, rename)

    def setup(self, stage: str) -> None:
        """Build the datasets; the training split is cut to ``train_fraction``.

        Args:
            stage: Either 'fit', 'validate', 'test', or 'predict'.
        """
        if stage == 'fit':
            train = self.dataset_cls(split='train', **self.kwargs)
            indices = sample_fraction(
                len(train), self.train_fraction, self.fraction_seed
            )
            self.train_dataset = Subset(train, indices)
            warn_small_fraction(
                len(indices), len(train), self.train_fraction, self.batch_size
            )
        if stage in ('fit', 'validate'):
            self.val_dataset = self.dataset_cls(split='val', **self.kwargs)
        if stage in ('test', 'predict'):
            self.test_dataset = self.dataset_cls(split='test', **self.kwargs)
            self.predict_dataset = self.test_dataset


__all__ = ('BigEarthNetMMDataModule',)
