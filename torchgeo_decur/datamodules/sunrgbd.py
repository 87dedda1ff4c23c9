"""Data module for SUN RGB-D RGB + HHA pretraining (and segmentation data)."""

from typing import Literal

from torch import nn
from torchgeo.datamodules import NonGeoDataModule

from ..datasets.sunrgbd import SUNRGBD, SUNRGBDSplit
from ..transforms.normalize import ApplyToKeys
from ..transforms.pretrained import sunrgbd_normalization
from .scaling import Normalization, resolve_normalization
from .utils import OptionalValidation, TrainBatchCheck


class SUNRGBDDataModule(OptionalValidation, TrainBatchCheck, NonGeoDataModule):
    """Lightning data module for :class:`~torchgeo_decur.datasets.SUNRGBD`.

    Decodes and resizes in the workers and normalises on the device after the
    batch transfer (:func:`~torchgeo_decur.transforms.sunrgbd_normalization`). The task then draws its
    augmented views from the normalised batch; for the ``rgb`` preset give the
    augmentation the same ImageNet ``mean``/``std`` so its photometric part runs on
    [0, 1] values (see :class:`~torchgeo_decur.transforms.AugmentationConfig`).

    Fitting uses ``split`` (default ``'all'``: every image, like the DeCUR
    pretraining); testing uses the ``test`` list.
    """

    def __init__(
        self,
        root: str = 'data',
        split: SUNRGBDSplit = 'all',
        batch_size: int = 32,
        num_workers: int = 0,
        size: int | tuple[int, int] | None = (480, 640),
        load_mask: bool = False,
        hha_dir: str = 'HHA',
        on_invalid: Literal['error', 'skip'] = 'error',
        normalization: Normalization = 'decur',
    ) -> None:
        """Initialize a new SUNRGBDDataModule instance.

        Args:
            root: Dataset folder (``RGB/``, ``HHA/``, ``Label/``, list files).
            split: Split used for fitting: ``'train'``, ``'test'`` or ``'all'``.
            batch_size: Samples per batch (per device).
            num_workers: Data loading worker processes.
            size: (height, width) every sample is resized to (None: native).
            load_mask: Also load the label images as ``mask``.
            hha_dir: Folder of the HHA maps, relative to ``root``.
            on_invalid: ``'error'`` or ``'skip'`` unpaired samples.
            normalization: ``'decur'``/``'decur_pretraining'`` for the
                DeCUR/CMX input scaling (``x / 255``, then ImageNet mean/std),
                ``'none'`` to pass 0-255 values on.

        Raises:
            ValueError: If ``normalization`` is unknown.
        """
        super().__init__(
            SUNRGBD,
            batch_size,
            num_workers,
            root=root,
            load_mask=load_mask,
            size=size,
            hha_dir=hha_dir,
            on_invalid=on_invalid,
        )
        self.split = split
        scaling = resolve_normalization(
            normalization,
            type(self).__name__,
            ('decur', 'decur_pretraining', 'none'),
        )
        self.aug: nn.Module = (
            sunrgbd_normalization() if scaling.scale else ApplyToKeys({})
        )

    def setup(self, stage: str) -> None:
        """Build the datasets.

        Args:
            stage: Either 'fit', 'validate', 'test', or 'predict'.
        """
        if stage == 'fit':
            self.train_dataset = SUNRGBD(split=self.split, **self.kwargs)
        elif stage in ('validate', 'test'):
            dataset = SUNRGBD(split='test', **self.kwargs)
            self.val_dataset = self.test_dataset = dataset
        elif stage == 'predict':
            self.predict_dataset = SUNRGBD(split=self.split, **self.kwargs)
