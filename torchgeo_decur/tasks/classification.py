"""Multi-label scene classification with late fusion (BigEarthNet-MM: S1, S2, S1+S2)."""

from typing import Any, Literal

from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MultilabelAveragePrecision, MultilabelF1Score

from ..models.backbones import build_backbone
from ..models.fusion import LateFusionClassifier
from .transfer import MultimodalDownstreamTask


class MultimodalClassificationTask(MultimodalDownstreamTask):
    """Multi-label scene classification with late fusion (BigEarthNet-MM).

    Pooled features of every encoder are concatenated and mapped by one linear layer
    (initialised N(0, 0.01), bias 0) to ``num_classes`` logits. Loss:
    multi-label soft margin (the reference) or BCE with logits (numerically the
    same mean). Metrics, over the whole epoch: ``<stage>_mAP_micro``,
    ``<stage>_mAP_macro`` (average precision) and ``<stage>_F1_micro``,
    ``<stage>_F1_macro`` at ``threshold``.
    """

    monitor = 'val_mAP_micro'
    mode = 'max'
    target_key = 'label'

    def __init__(
        self,
        num_classes: int = 19,
        loss: Literal['soft_margin', 'bce'] = 'soft_margin',
        threshold: float = 0.5,
        **kwargs: Any,
    ) -> None:
        """Initialize a new MultimodalClassificationTask instance.

        Args:
            num_classes: Number of labels.
            loss: ``'soft_margin'`` (MultiLabelSoftMarginLoss) or ``'bce'``.
            threshold: Probability threshold of the F1 scores.
            **kwargs: Arguments of :class:`MultimodalDownstreamTask`.

        Raises:
            ValueError: For an unknown loss.
        """
        if loss not in ('soft_margin', 'bce'):
            raise ValueError(f"loss must be 'soft_margin' or 'bce', got {loss!r}")
        self.num_classes = int(num_classes)
        self.loss_name = loss
        self.threshold = float(threshold)
        super().__init__(**kwargs)

    def build_encoder(self, in_chans: int, pretrained: bool) -> nn.Module:
        """A timm encoder returning pooled features (no classifier).

        Args:
            in_chans: Input channels.
            pretrained: Start from timm's ImageNet weights.

        Returns:
            The encoder.
        """
        spec = self.encoder_spec
        return build_backbone(spec.model, in_chans, pretrained, **spec.timm_kwargs)

    def build_model(self, encoders: dict[str, nn.Module]) -> nn.Module:
        """Late-fusion classifier.

        Args:
            encoders: One encoder per modality.

        Returns:
            The model.
        """
        return LateFusionClassifier(encoders, self.num_classes)

    def configure_losses(self) -> None:
        """Multi-label loss."""
        self.criterion: nn.Module = (
            nn.MultiLabelSoftMarginLoss()
            if self.loss_name == 'soft_margin'
            else nn.BCEWithLogitsLoss()
        )

    def make_metrics(self, prefix: str) -> MetricCollection:
        """Micro/macro mAP and F1 over the epoch.

        Args:
            prefix: Name prefix such as ``'val_'``.

        Returns:
            The metrics.
        """
        n = self.num_classes
        t = self.threshold
        return MetricCollection(
            {
                'mAP_micro': MultilabelAveragePrecision(num_labels=n, average='micro'),
                'mAP_macro': MultilabelAveragePrecision(num_labels=n, average='macro'),
                'F1_micro': MultilabelF1Score(
                    num_labels=n, threshold=t, average='micro'
                ),
                'F1_macro': MultilabelF1Score(
                    num_labels=n, threshold=t, average='macro'
                ),
            },
            prefix=prefix,
        )

    def compute_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """Multi-label loss.

        Args:
            logits: (N, classes) logits.
            target: (N, classes) multi-hot labels.

        Returns:
            Scalar loss.
        """
        loss: Tensor = self.criterion(logits, target.float())
        return loss

    def metric_inputs(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Probabilities and integer labels.

        Args:
            logits: (N, classes) logits.
            target: (N, classes) multi-hot labels.

        Returns:
            ``(sigmoid(logits), target)``.
        """
        return logits.sigmoid(), target.long()

    def predict_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        """Label probabilities.

        Args:
            batch: Batch dictionary.
            batch_idx: Index of the batch.
            dataloader_idx: Index of the loader.

        Returns:
            (N, classes) probabilities.
        """
        logits: Tensor = self(self.inputs(batch))
        return logits.sigmoid()


__all__ = ('MultimodalClassificationTask',)
