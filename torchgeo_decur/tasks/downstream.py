"""Downstream evaluation of (multimodal) pretrained encoders.

Two torchgeo tasks over one encoder per modality:

* :class:`MultimodalClassificationTask`: multi-label classification with late
  fusion (BigEarthNet-MM: S1, S2 or S1+S2);
* :class:`MultimodalSegmentationTask`: semantic segmentation with DeCUR's
  multi-level FCN (GeoNRW: RGB or RGB+DEM).

Both load the encoders from a DeCUR joint checkpoint (a Weights member, its name,
a released file or a :class:`~torchgeo_decur.DeCURTask` checkpoint) or from one
backbone file/member per modality, can freeze them for linear probing, run with a
single modality, and evaluate with one modality missing at test time. Metrics are
accumulated over the whole epoch (torchmetrics states), not averaged per batch.
"""

import os
import warnings
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Self, cast

import lightning.pytorch.utilities.types
import timm
import torch
from torch import Tensor, nn
from torch.optim import SGD, AdamW
from torch.optim.lr_scheduler import MultiStepLR
from torchgeo.tasks import BaseTask
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassJaccardIndex,
    MultilabelAveragePrecision,
    MultilabelF1Score,
)
from torchvision.models._api import WeightsEnum

from ..models.backbones import build_backbone, weights_module
from ..models.checkpoints import (
    RDASemantics,
    check_rda_semantics,
    load_encoder_state,
    remap_backbone_state_dict,
    split_joint_state_dict,
)
from ..models.fusion import FCNFusionSegmenter, LateFusionClassifier
from ..models.weights import modality_mapping_note
from .base import MultimodalSSLTask, WeightSpec, resolve_in_channels

#: How a modality is removed in modality-missing evaluation: ``'zero'`` feeds an
#: all-zero (normalised) input to its encoder, ``'drop'`` replaces its features by
#: zeros (the encoder is not run).
MissingMode = Literal['zero', 'drop']


def _weights_member(spec: WeightSpec) -> WeightsEnum | None:
    """The Weights member a spec names, or None for files and unknown names."""
    if isinstance(spec, WeightsEnum):
        return spec
    if isinstance(spec, str) and not os.path.exists(spec):
        from torchgeo.models import get_weight

        try:
            return get_weight(spec)
        except ValueError:
            return None  # resolve_state_dict raises the explanatory error
    return None


class MultimodalDownstreamTask(BaseTask):
    """Shared machinery: encoders per modality, weights, freezing, optimiser.

    Subclasses define the encoder type, the head, the loss and the metrics.
    """

    ignore = 'weights'

    #: Batch key of the target.
    target_key = 'label'

    def __init__(
        self,
        modalities: Sequence[str] = ('s1', 's2'),
        model: str = 'resnet50',
        in_channels: dict[str, int] | None = None,
        weights: WeightSpec | dict[str, WeightSpec] = None,
        joint_modalities: Sequence[str] | None = None,
        rda_semantics: RDASemantics = 'transfer',
        backbone_kwargs: dict[str, Any] | None = None,
        freeze_backbone: bool = False,
        frozen_encoder_train_mode: bool = False,
        optimizer: Literal['sgd', 'adamw'] = 'adamw',
        lr: float = 1e-4,
        momentum: float = 0.9,
        weight_decay: float = 0.01,
        lr_milestones: Sequence[int] = (),
        lr_gamma: float = 0.1,
        missing_modality_modes: Sequence[MissingMode] = (),
    ) -> None:
        """Initialize a new MultimodalDownstreamTask instance.

        Args:
            modalities: One or more modality names, modality 1 first; batches hold
                ``image_<name>`` for each.
            model: timm name of the encoder architecture (same for all).
            in_channels: Channels per modality (defaults: s1=2, s2=13, rgb=3,
                dem=3, hha=3).
            weights: Initial encoder weights. One spec for all encoders: a joint
                checkpoint (Weights member or its name, a released joint file, a
                :class:`~torchgeo_decur.DeCURTask` checkpoint) or True for ImageNet;
                with one modality a file path is a backbone file unless
                ``joint_modalities`` is given. Or ``{modality: spec}`` with one
                backbone file/member per encoder.
            joint_modalities: Modality order of a joint checkpoint (modality 1
                first), e.g. ``[s1, s2]``; defaults to the member's
                ``meta['modality']`` or to ``modalities``. Names that differ from a
                member's ``meta['modality']`` (renamed or reordered) give a
                UserWarning naming which encoder goes where; so does a backbone
                member given for a modality of another name.
            rda_semantics: Which deformable-attention blocks the modality-2 encoder
                of an RDA joint checkpoint gets (see
                :data:`~torchgeo_decur.models.checkpoints.RDASemantics`). A
                backbone-only file with ``da2_*`` blocks (the released MS / DEM
                files) cannot give ``'pretraining'``: a ValueError says to load
                the joint file.
            backbone_kwargs: Extra arguments for ``timm.create_model``.
            freeze_backbone: Train only the head (linear probing).
            frozen_encoder_train_mode: Keep frozen encoders in training mode so
                their BatchNorm statistics still adapt, like the reference linear
                probe; default: frozen encoders run in eval mode.
            optimizer: ``'sgd'`` (BigEarthNet protocol) or ``'adamw'`` (GeoNRW).
            lr: Learning rate.
            momentum: SGD momentum.
            weight_decay: Weight decay.
            lr_milestones: Epochs at which the learning rate is multiplied by
                ``lr_gamma`` (empty: constant).
            lr_gamma: Factor of each learning-rate step.
            missing_modality_modes: At test time, also evaluate with each modality
                missing, per mode (``'zero'``, ``'drop'``); logged as
                ``test_missing_<modality>_<mode>_<metric>``.

        Raises:
            ValueError: For an invalid modality list or option.
        """
        self.weights = weights
        mods = tuple(modalities)
        if not mods or len(set(mods)) != len(mods):
            raise ValueError(f'need one or more distinct modalities, got {list(mods)}')
        if missing_modality_modes:
            if len(mods) != 2:
                raise ValueError('missing_modality_modes needs two modalities')
            bad = sorted(set(missing_modality_modes) - {'zero', 'drop'})
            if bad:
                raise ValueError(
                    f"missing_modality_modes must be 'zero'/'drop', got {bad}"
                )
        if optimizer not in ('sgd', 'adamw'):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {optimizer!r}")
        check_rda_semantics(rda_semantics)
        super().__init__()

    # ------------------------------------------------------------------ setup
    @property
    def modalities(self) -> tuple[str, ...]:
        """The modality names, modality 1 first."""
        return tuple(self.hparams['modalities'])

    def _pretrained(self, modality: str) -> bool:
        """Whether a modality's encoder starts from timm's ImageNet weights."""
        spec = self.weights
        if isinstance(spec, Mapping):
            return spec.get(modality) is True
        return spec is True

    @abstractmethod
    def build_encoder(self, in_chans: int, pretrained: bool) -> nn.Module:
        """Build one encoder.

        Args:
            in_chans: Input channels.
            pretrained: Start from timm's ImageNet weights.

        Returns:
            The encoder.
        """

    @abstractmethod
    def build_model(self, encoders: dict[str, nn.Module]) -> nn.Module:
        """Build the model (encoders + head).

        Args:
            encoders: One encoder per modality, in modality order.

        Returns:
            A module with an ``encoders`` ModuleDict, called as
            ``model(inputs, drop=())``.
        """

    @abstractmethod
    def make_metrics(self, prefix: str) -> MetricCollection:
        """The metric collection of one stage.

        Args:
            prefix: Name prefix such as ``'val_'``.

        Returns:
            The metrics.
        """

    def configure_models(self) -> None:
        """Build the encoders, load their weights and build the head."""
        channels = resolve_in_channels(self.modalities, self.hparams['in_channels'])
        self.in_channels = channels
        encoders = {
            m: self.build_encoder(channels[m], self._pretrained(m))
            for m in self.modalities
        }
        states = self.encoder_states()
        random = [
            m for m in self.modalities if m not in states and not self._pretrained(m)
        ]
        if random and self.hparams['freeze_backbone']:
            warnings.warn(
                f'freeze_backbone=True but no weights for encoder(s) {random}: the '
                'linear probe runs on randomly initialised, frozen features (a '
                'random-init baseline). Set weights: to a DeCUR member, a released '
                'file or a DeCURTask checkpoint to probe pretrained encoders.',
                UserWarning,
                stacklevel=2,
            )
        for m, (state, source) in states.items():
            load_encoder_state(
                weights_module(encoders[m]),
                remap_backbone_state_dict(state, source, self.hparams['rda_semantics']),
                what=f'encoder {m!r} ({self.hparams["model"]}) from {source}',
            )
        self.model = self.build_model(encoders)
        if self.hparams['freeze_backbone']:
            self.encoders.requires_grad_(False)

    @property
    def encoders(self) -> nn.ModuleDict:
        """The encoders, keyed by modality."""
        return cast(nn.ModuleDict, self.model.encoders)

    def encoder_states(self) -> dict[str, tuple[dict[str, Tensor], str]]:
        """Resolve ``weights`` into a state dict per modality.

        Returns:
            ``{modality: (encoder state dict, source name)}`` for every encoder
            that gets weights from a checkpoint.

        Raises:
            ValueError: If the spec does not fit the modalities or the model.
        """
        spec = self.weights
        mods = self.modalities
        if isinstance(spec, Mapping):
            unknown = sorted(set(spec) - set(mods))
            if unknown:
                raise ValueError(
                    f'weights names unknown modalities {unknown}; modalities are '
                    f'{list(mods)}'
                )
            out = {}
            for m, s in spec.items():
                if s is None or isinstance(s, bool):
                    continue
                member = _weights_member(s)
                self._check_member(member, str(s))
                self._warn_about_modality_names(member, str(s), {1: m})
                out[m] = (MultimodalSSLTask.resolve_state_dict(s), str(s))
            return out
        if spec is None or isinstance(spec, bool):
            return {}
        source = str(spec)
        member = _weights_member(spec)
        self._check_member(member, source)
        meta_modality = member.meta.get('modality') if member is not None else None
        joint = self.hparams['joint_modalities']
        state = MultimodalSSLTask.resolve_state_dict(spec)
        if isinstance(meta_modality, str) or (
            member is None and joint is None and len(mods) == 1
        ):
            if len(mods) != 1:
                raise ValueError(
                    f'weights {source} hold one encoder; pass one spec per modality '
                    'as {modality: weights}'
                )
            self._warn_about_modality_names(member, source, {1: mods[0]})
            return {mods[0]: (state, source)}
        if joint is None:
            joint = meta_modality if meta_modality is not None else mods
        joint = tuple(joint)
        if len(joint) < 2 or not set(mods) <= set(joint):
            raise ValueError(
                f'joint checkpoint {source} has modalities {list(joint)} (modality 1 '
                f'first), which do not include {list(mods)}; set joint_modalities'
            )
        self._warn_about_modality_names(
            member,
            source,
            {i: m for i, m in enumerate(joint, start=1) if m in mods},
        )
        backbones, _ = split_joint_state_dict(
            state,
            joint,
            source,
            rda_semantics=self.hparams['rda_semantics'],
        )
        return {m: (backbones[m], source) for m in mods}

    def _warn_about_modality_names(
        self, member: WeightsEnum | None, source: str, targets: Mapping[int, str]
    ) -> None:
        """Warn when a member's encoders go to task modalities of other names.

        Args:
            member: The Weights member, or None for files (nothing to compare).
            source: Its name, for the message.
            targets: 1-based position in the file → task modality that gets it.
        """
        modality = member.meta.get('modality') if member is not None else None
        if modality is None:
            return
        names = (modality,) if isinstance(modality, str) else tuple(modality)
        note = modality_mapping_note(source, names, targets)
        if note is not None:
            warnings.warn(
                f"{note} The task's channel defaults and batch keys (image_<name>) "
                "follow its own modality names; name the task's modalities (or "
                'joint_modalities) after the member unless this pairing is '
                'intended.',
                UserWarning,
                stacklevel=3,
            )

    def _check_member(self, member: WeightsEnum | None, source: str) -> None:
        """Reject a Weights member made for another architecture."""
        if member is None:
            return
        expected = member.meta.get('model')
        if expected and expected != self.hparams['model']:
            raise ValueError(
                f'weights {source} are for model {expected!r}, but the task builds '
                f'{self.hparams["model"]!r}; set model: {expected}'
            )

    def configure_metrics(self) -> None:
        """Epoch-level metrics for every stage and modality-missing setting."""
        self.train_metrics = self.make_metrics('train_')
        self.val_metrics = self.make_metrics('val_')
        self.test_metrics = self.make_metrics('test_')
        self.missing_metrics = nn.ModuleDict(
            {
                f'{m}_{mode}': self.make_metrics(f'test_missing_{m}_{mode}_')
                for m in self.modalities
                for mode in self.hparams['missing_modality_modes']
            }
        )

    def train(self, mode: bool = True) -> Self:
        """Set training mode; frozen encoders stay in eval mode unless asked not to.

        Args:
            mode: Training (True) or evaluation (False) mode.

        Returns:
            This task.
        """
        super().train(mode)
        if mode:
            self._hold_frozen_encoders_in_eval()
        return self

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Put frozen encoders in eval mode before every training batch.

        Lightning never calls :meth:`train` on the task during ``fit`` (it saves
        and restores each submodule's mode around validation instead), so the
        override above alone would leave freshly built encoders in training mode,
        their BatchNorm layers normalising with batch statistics and updating
        their running statistics.

        Args:
            batch: The batch (unused).
            batch_idx: Its index (unused).
        """
        self._hold_frozen_encoders_in_eval()

    def _hold_frozen_encoders_in_eval(self) -> None:
        """Eval mode for frozen encoders, unless ``frozen_encoder_train_mode``."""
        if (
            hasattr(self, 'model')
            and self.hparams['freeze_backbone']
            and not self.hparams['frozen_encoder_train_mode']
        ):
            self.encoders.eval()

    # ----------------------------------------------------------------- steps
    def inputs(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Pick and check the images of every modality from a batch.

        Args:
            batch: Batch with ``image_<modality>`` entries (``image`` is accepted
                for a single modality).

        Returns:
            ``{modality: (N, C_m, H, W)}``.

        Raises:
            ValueError: If a modality is missing or has the wrong channel count.
        """
        out = {}
        for m in self.modalities:
            key = f'image_{m}'
            if key not in batch and len(self.modalities) == 1 and 'image' in batch:
                key = 'image'
            if key not in batch:
                raise ValueError(
                    f'batch has no image_{m} for modality {m!r}; keys: {sorted(batch)}'
                )
            x = batch[key]
            c = self.in_channels[m]
            if x.ndim != 4 or x.shape[1] != c:
                hint = (
                    ' (12-band BigEarthNet patches: set insert_b10 in the data module '
                    'or in_channels {s2: 12})'
                    if m == 's2' and x.ndim == 4 and x.shape[1] == 12
                    else ''
                )
                raise ValueError(
                    f'{key}: expected (N, {c}, H, W) for modality {m!r}, got '
                    f'{tuple(x.shape)}{hint}'
                )
            out[m] = x.float()
        return out

    def forward(self, inputs: Mapping[str, Tensor], drop: Sequence[str] = ()) -> Tensor:
        """Logits for a dictionary of images.

        Args:
            inputs: ``{modality: (N, C_m, H, W)}``.
            drop: Modalities whose features are replaced by zeros.

        Returns:
            Model output (logits).
        """
        out: Tensor = self.model(inputs, drop=drop)
        return out

    @abstractmethod
    def compute_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """Loss of a batch.

        Args:
            logits: Model output.
            target: Batch target.

        Returns:
            Scalar loss.
        """

    @abstractmethod
    def metric_inputs(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Turn logits and target into what the metrics take.

        Args:
            logits: Model output.
            target: Batch target.

        Returns:
            ``(preds, target)`` for ``MetricCollection.update``.
        """

    def _step(self, batch: Mapping[str, Tensor], stage: str) -> Tensor:
        """Loss and metric update of one batch; logs ``<stage>_loss``."""
        x = self.inputs(batch)
        target = batch[self.target_key]
        logits = self(x)
        loss = self.compute_loss(logits, target)
        metrics = cast(MetricCollection, getattr(self, f'{stage}_metrics'))
        metrics.update(*self.metric_inputs(logits.detach(), target))
        n = target.shape[0]
        evaluating = stage != 'train'
        # Epoch-level losses are averaged over all ranks (metrics sync by themselves).
        self.log(
            f'{stage}_loss',
            loss,
            batch_size=n,
            prog_bar=evaluating,
            sync_dist=evaluating,
        )
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def training_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        """Training loss.

        Args:
            batch: Batch dictionary.
            batch_idx: Index of the batch.
            dataloader_idx: Index of the loader.

        Returns:
            The loss.
        """
        return self._step(batch, 'train')

    def validation_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Validation loss and metrics.

        Args:
            batch: Batch dictionary.
            batch_idx: Index of the batch.
            dataloader_idx: Index of the loader.
        """
        self._step(batch, 'val')

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Test loss and metrics, also with each modality missing if configured.

        Args:
            batch: Batch dictionary.
            batch_idx: Index of the batch.
            dataloader_idx: Index of the loader.
        """
        self._step(batch, 'test')
        if not self.hparams['missing_modality_modes']:
            return
        x = self.inputs(batch)
        target = batch[self.target_key]
        n = target.shape[0]
        for m in self.modalities:
            for mode in self.hparams['missing_modality_modes']:
                if mode == 'zero':
                    logits = self({**x, m: torch.zeros_like(x[m])})
                else:
                    logits = self(x, drop=(m,))
                name = f'test_missing_{m}_{mode}_'
                metrics = cast(MetricCollection, self.missing_metrics[f'{m}_{mode}'])
                metrics.update(*self.metric_inputs(logits, target))
                self.log(
                    f'{name}loss',
                    self.compute_loss(logits, target),
                    batch_size=n,
                    sync_dist=True,
                )
                self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=n)

    # ------------------------------------------------------------- optimiser
    def configure_optimizers(
        self,
    ) -> 'lightning.pytorch.utilities.types.OptimizerLRScheduler':
        """SGD or AdamW over the trainable parameters, optional step schedule.

        Returns:
            Optimizer (and an epoch-wise MultiStepLR when milestones are given).
        """
        params = [p for p in self.parameters() if p.requires_grad]
        lr = float(self.hparams['lr'])
        wd = float(self.hparams['weight_decay'])
        optimizer: torch.optim.Optimizer
        if self.hparams['optimizer'] == 'sgd':
            optimizer = SGD(
                params, lr=lr, momentum=float(self.hparams['momentum']), weight_decay=wd
            )
        else:
            optimizer = AdamW(params, lr=lr, weight_decay=wd)
        milestones = [int(e) for e in self.hparams['lr_milestones']]
        if not milestones:
            return optimizer
        scheduler = MultiStepLR(optimizer, milestones, gamma=self.hparams['lr_gamma'])
        return {
            'optimizer': optimizer,
            'lr_scheduler': {'scheduler': scheduler, 'interval': 'epoch'},
        }


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
        super().__init__(**kwargs)

    def build_encoder(self, in_chans: int, pretrained: bool) -> nn.Module:
        """A timm encoder returning pooled features (no classifier).

        Args:
            in_chans: Input channels.
            pretrained: Start from timm's ImageNet weights.

        Returns:
            The encoder.
        """
        kwargs = dict(self.hparams['backbone_kwargs'] or {})
        return build_backbone(self.hparams['model'], in_chans, pretrained, **kwargs)

    def build_model(self, encoders: dict[str, nn.Module]) -> nn.Module:
        """Late-fusion classifier.

        Args:
            encoders: One encoder per modality.

        Returns:
            The model.
        """
        return LateFusionClassifier(encoders, self.hparams['num_classes'])

    def configure_losses(self) -> None:
        """Multi-label loss."""
        self.criterion: nn.Module = (
            nn.MultiLabelSoftMarginLoss()
            if self.hparams['loss'] == 'soft_margin'
            else nn.BCEWithLogitsLoss()
        )

    def make_metrics(self, prefix: str) -> MetricCollection:
        """Micro/macro mAP and F1 over the epoch.

        Args:
            prefix: Name prefix such as ``'val_'``.

        Returns:
            The metrics.
        """
        n = self.hparams['num_classes']
        t = self.hparams['threshold']
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
        name = self.hparams['model']
        if not timm.is_model(name):
            raise ValueError(f'unknown model {name!r}: not a timm model name')
        encoder: nn.Module = timm.create_model(
            name,
            features_only=True,
            out_indices=tuple(self.hparams['out_indices']),
            in_chans=in_chans,
            pretrained=pretrained,
            **dict(self.hparams['backbone_kwargs'] or {}),
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
            encoders, self.hparams['num_classes'], self.hparams['reduce_channels']
        )

    def configure_losses(self) -> None:
        """Cross-entropy ignoring ``ignore_index``."""
        ignore = self.hparams['ignore_index']
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
        n = self.hparams['num_classes']
        ignore = self.hparams['ignore_index']
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
