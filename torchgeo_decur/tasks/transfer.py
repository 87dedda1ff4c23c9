"""Shared base of the downstream tasks: pretrained encoders per modality + a head.

:class:`MultimodalDownstreamTask` loads one encoder per modality from a DeCUR
joint checkpoint (a Weights member, its name, a released file or a
:class:`~torchgeo_decur.DeCURTask` checkpoint) or from one backbone file/member
per modality, can freeze them for linear probing, runs with one or more
modalities, evaluates with one modality missing at test time, and trains with
SGD or AdamW under an optional step schedule. Metrics are accumulated over the
whole epoch (torchmetrics states), not averaged per batch. The heads are in
:mod:`.classification` and :mod:`.segmentation`.
"""

import warnings
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self, cast

import lightning.pytorch.utilities.types
import torch
from torch import Tensor, nn
from torch.optim import SGD, AdamW
from torch.optim.lr_scheduler import MultiStepLR
from torchmetrics import MetricCollection

from ..checkpoints.layouts import load_encoder_state
from ..models.backbones import weights_module
from ..weights.loading import MappingHint, ResolvedWeights, WeightSpec
from .encoders import MultiEncoderTask, modality_image

#: How a modality is removed in modality-missing evaluation: ``'zero'`` feeds an
#: all-zero (normalised) input to its encoder, ``'drop'`` replaces its features by
#: zeros (the encoder is not run).
MissingMode = Literal['zero', 'drop']


@dataclass(frozen=True)
class DownstreamOptions:
    """The training options of :class:`MultimodalDownstreamTask`, parsed once.

    Attributes:
        freeze_backbone: Train only the head.
        frozen_encoder_train_mode: Frozen encoders stay in training mode.
        optimizer: ``'sgd'`` or ``'adamw'``.
        lr: Learning rate.
        momentum: SGD momentum.
        weight_decay: Weight decay.
        lr_milestones: Epochs of the learning-rate steps.
        lr_gamma: Factor of each step.
        missing_modality_modes: Modality-missing evaluations at test time.
    """

    freeze_backbone: bool
    frozen_encoder_train_mode: bool
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    lr_milestones: tuple[int, ...]
    lr_gamma: float
    missing_modality_modes: tuple[MissingMode, ...]


class MultimodalDownstreamTask(MultiEncoderTask):
    """Shared machinery: encoders per modality, weights, freezing, optimiser.

    Subclasses define the encoder type, the head, the loss and the metrics.
    """

    #: Batch key of the target.
    target_key = 'label'

    def __init__(
        self,
        modalities: Sequence[str] = ('s1', 's2'),
        model: str | None = None,
        in_channels: dict[str, int] | None = None,
        weights: WeightSpec | dict[str, WeightSpec] = None,
        joint_modalities: Sequence[str] | None = None,
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
            modalities: One or two modality names, modality 1 first; batches hold
                ``image_<name>`` for each.
            model: timm name of the encoder architecture (same for all); by
                default the architecture of ``weights`` (a member, an export, a
                task checkpoint), else ``resnet50``. Naming another architecture
                than the weights' is an error.
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
            backbone_kwargs: Extra arguments for ``timm.create_model``, plus
                ``rda_semantics``: which deformable-attention blocks the
                modality-2 encoder of an RDA joint checkpoint gets (see
                :func:`~torchgeo_decur.models.backbones.split_rda_options`).
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
        self.parse_encoder_options(
            weights, modalities, model, in_channels, backbone_kwargs, joint_modalities
        )
        if missing_modality_modes:
            if len(self.modalities) != 2:
                raise ValueError('missing_modality_modes needs two modalities')
            bad = sorted(set(missing_modality_modes) - {'zero', 'drop'})
            if bad:
                raise ValueError(
                    f"missing_modality_modes must be 'zero'/'drop', got {bad}"
                )
        if optimizer not in ('sgd', 'adamw'):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {optimizer!r}")
        self.options = DownstreamOptions(
            bool(freeze_backbone),
            bool(frozen_encoder_train_mode),
            optimizer,
            float(lr),
            float(momentum),
            float(weight_decay),
            tuple(int(e) for e in lr_milestones),
            float(lr_gamma),
            tuple(missing_modality_modes),
        )
        super().__init__()

    # ------------------------------------------------------------------ setup
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

    def weights_hint(self) -> MappingHint:
        """The modality-name warning names the channel defaults and batch keys."""
        return (
            "The task's channel defaults and batch keys (image_<name>) follow "
            "its own modality names; name the task's modalities (or "
            'joint_modalities) after the member unless this pairing is '
            'intended.'
        )

    def build_encoders(self, weights: ResolvedWeights) -> None:
        """Build the encoders, load the weights, add the head.

        Args:
            weights: The resolved weights.

        Warns:
            UserWarning: For ``freeze_backbone`` with randomly initialised
                encoders.
        """
        spec = self.encoder_spec
        encoders = {
            m: self.build_encoder(spec.in_channels[m], m in weights.imagenet)
            for m in self.modalities
        }
        random = [
            m
            for m in self.modalities
            if m not in weights.encoders and m not in weights.imagenet
        ]
        if random and self.options.freeze_backbone:
            warnings.warn(
                f'freeze_backbone=True but no weights for encoder(s) {random}: the '
                'linear probe runs on randomly initialised, frozen features (a '
                'random-init baseline). Set weights: to a DeCUR member, a released '
                'file or a DeCURTask checkpoint to probe pretrained encoders.',
                UserWarning,
                stacklevel=2,
            )
        for m, enc in weights.encoders.items():
            load_encoder_state(
                weights_module(encoders[m]),
                enc.state_dict,
                what=f'encoder {m!r} ({spec.model}) from {enc.source}',
            )
        self.model = self.build_model(encoders)
        if self.options.freeze_backbone:
            self.encoders.requires_grad_(False)

    @property
    def encoders(self) -> nn.ModuleDict:
        """The encoders, keyed by modality."""
        return cast(nn.ModuleDict, self.model.encoders)

    def configure_metrics(self) -> None:
        """Epoch-level metrics for every stage and modality-missing setting."""
        self.train_metrics = self.make_metrics('train_')
        self.val_metrics = self.make_metrics('val_')
        self.test_metrics = self.make_metrics('test_')
        self.missing_metrics = nn.ModuleDict(
            {
                f'{m}_{mode}': self.make_metrics(f'test_missing_{m}_{mode}_')
                for m in self.modalities
                for mode in self.options.missing_modality_modes
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
            and self.options.freeze_backbone
            and not self.options.frozen_encoder_train_mode
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
        single = 'image' if len(self.modalities) == 1 else None
        for m in self.modalities:
            key, x = modality_image(batch, m, alias=single)
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
        modes = self.options.missing_modality_modes
        if not modes:
            return
        x = self.inputs(batch)
        target = batch[self.target_key]
        n = target.shape[0]
        for m in self.modalities:
            for mode in modes:
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
        options = self.options
        optimizer: torch.optim.Optimizer
        if options.optimizer == 'sgd':
            optimizer = SGD(
                params,
                lr=options.lr,
                momentum=options.momentum,
                weight_decay=options.weight_decay,
            )
        else:
            optimizer = AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
        if not options.lr_milestones:
            return optimizer
        scheduler = MultiStepLR(
            optimizer, list(options.lr_milestones), gamma=options.lr_gamma
        )
        return {
            'optimizer': optimizer,
            'lr_scheduler': {'scheduler': scheduler, 'interval': 'epoch'},
        }


__all__ = ('DownstreamOptions', 'MissingMode', 'MultimodalDownstreamTask')
