"""Semantic segmentation with DeCUR's multi-level FCN (GeoNRW: RGB or RGB+DEM)."""

from collections.abc import Sequence
from typing import Any

import timm
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from ..models.fusion import FCNFusionSegmenter
from .transfer import MultimodalDownstreamTask


class MultimodalSegmentationTask(MultimodalDownstreamTask):
    """Semantic segmentation with DeCUR's multi-level FCN (GeoNRW RGB / RGB+DEM).

    Every encoder is a timm feature pyramid (``features_only=True``,
    ``out_indices``; layer2/3/4 of a ResNet, with the residual deformable attention
    of ``resnet50_rda``); see :class:`~torchgeo_decur.models.FCNFusionSegmenter`.
    Loss: cross-entropy ignoring ``ignore_index``. Metrics over the whole epoch:
    ``<stage>_mIoU`` (macro Jaccard) and ``<stage>_PixelAccuracy`` (micro), both
    ignoring ``ignore_index``.
    """

    monitor = 'val_mIoU'
    mode = 'max'
    target_key = 'mask'

    def __init__(
        self,
        num_classes: int = 11,
        ignore_index: int | None = 0,
        reduce_channels: Sequence[int] = (128, 256, 512),
        out_indices: Sequence[int] = (2, 3, 4),
        **kwargs: Any,
    ) -> None:
        """Initialize a new MultimodalSegmentationTask instance.

        Args:
            num_classes: Number of classes (GeoNRW: 11 with background 0).
            ignore_index: Class excluded from loss and metrics (None: none).
            reduce_channels: Channels of the per-level 1×1 reductions.
            out_indices: Encoder stages used (timm ``out_indices``).
            **kwargs: Arguments of :class:`MultimodalDownstreamTask`.

        Raises:
            ValueError: If ``reduce_channels`` and ``out_indices`` differ in length.
        """
        if len(reduce_channels) != len(out_indices):
            raise ValueError(
                f'reduce_channels {list(reduce_channels)} and out_indices '
                f'{list(out_indices)} must have the same length'
            )
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.reduce_channels = tuple(int(c) for c in reduce_channels)
        self.out_indices = tuple(int(i) for i in out_indices)
        super().__init__(**kwargs)

    def build_encoder(self, in_chans: int, pretrained: bool) -> nn.Module:
        """A timm feature pyramid.

        Args:
            in_chans: Input channels.
            pretrained: Start from timm's ImageNet weights.

        Returns:
            The encoder.

        Raises:
            ValueError: If timm does not know the model.
        """
        spec = self.encoder_spec
        name = spec.model
        if not timm.is_model(name):
            raise ValueError(f'unknown model {name!r}: not a timm model name')
        encoder: nn.Module = timm.create_model(
            name,
            features_only=True,
            out_indices=self.out_indices,
            in_chans=in_chans,
            pretrained=pretrained,
            **spec.timm_kwargs,
        )
        return encoder

    def build_model(self, encoders: dict[str, nn.Module]) -> nn.Module:
        """Multi-level FCN.

        Args:
            encoders: One feature pyramid per modality.

        Returns:
            The model.
        """
        return FCNFusionSegmenter(
            encoders, self.num_classes, list(self.reduce_channels)
        )

    def configure_losses(self) -> None:
        """Cross-entropy ignoring ``ignore_index``."""
        ignore = self.ignore_index
        self.criterion = nn.CrossEntropyLoss(
            ignore_index=-100 if ignore is None else ignore
        )

    def make_metrics(self, prefix: str) -> MetricCollection:
        """Mean IoU and pixel accuracy over the epoch.

        Args:
            prefix: Name prefix such as ``'val_'``.

        Returns:
            The metrics.
        """
        n = self.num_classes
        ignore = self.ignore_index
        return MetricCollection(
            {
                'mIoU': MulticlassJaccardIndex(
                    num_classes=n, ignore_index=ignore, average='macro'
                ),
                'PixelAccuracy': MulticlassAccuracy(
                    num_classes=n, ignore_index=ignore, average='micro'
                ),
            },
            prefix=prefix,
        )

    def compute_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy.

        Args:
            logits: (N, classes, H, W) logits.
            target: (N, H, W) class indices.

        Returns:
            Scalar loss.
        """
        loss: Tensor = self.criterion(logits, target.long())
        return loss

    def metric_inputs(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Predicted classes and targets.

        Args:
            logits: (N, classes, H, W) logits.
            target: (N, H, W) class indices.

        Returns:
            ``(argmax classes, target)``.
        """
        return logits.argmax(dim=1), target.long()

    def predict_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        """Class probabilities per pixel.

        Args:
            batch: Batch dictionary.
            batch_idx: Index of the batch.
            dataloader_idx: Index of the loader.

        Returns:
            (N, classes, H, W) probabilities.
        """
        logits: Tensor = self(self.inputs(batch))
        return logits.softmax(dim=1)


__all__ = ('MultimodalSegmentationTask',)
