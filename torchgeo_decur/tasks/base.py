"""Shared machinery of two-encoder (multimodal) self-supervised tasks."""

import warnings
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import lightning.pytorch.utilities.types
import torch
from lightly.utils.debug import std_of_l2_normalized
from torch import Tensor, nn
from torchvision.models._api import WeightsEnum

from ..checkpoints.layouts import (
    CLASSIFIER_PREFIXES,
    RDASemantics,
    load_encoder_state,
    load_exact,
    remap_backbone_state_dict,
)
from ..models.backbones import build_backbone, feature_dim
from ..models.heads import Projector
from ..models.rda import share_deformable_attention
from ..transforms.augmentations import ModalityAugmentation, resolve_config
from ..weights.loading import (
    MappingHint,
    ResolvedWeights,
    WeightSpec,
    member_modalities,
)
from .encoders import MultiEncoderTask, modality_image
from .finite import check_batch_size, check_finite_checkpoint, check_finite_outputs
from .optim import (
    OptimizerOptions,
    ScheduleOptions,
    build_optimizer,
    check_optimizer_options,
    check_schedule,
    parameter_groups,
    schedule_lengths,
    warmup_cosine,
    warmup_cosine_scheduler,
)

#: Default augmentation presets of well-known modality names.
DEFAULT_AUGMENTATIONS = {
    's1': 'sar',
    's2': 'optical',
    'rgb': 'optical',
    'dem': 'elevation',
    'hha': 'depth',
}


def check_projector_dims(dims: Sequence[int]) -> list[int]:
    """Validate the projector's output sizes.

    Args:
        dims: Output sizes of the projector's Linear layers.

    Returns:
        The sizes as ints.

    Raises:
        ValueError: If ``dims`` is empty or a size is not a positive integer.
    """
    out = list(dims)
    if not out:
        raise ValueError(
            'projector_dims must name at least one layer size (the last is the '
            'embedding size K), got an empty list'
        )
    bad = [d for d in out if isinstance(d, bool) or not isinstance(d, int) or d < 1]
    if bad:
        raise ValueError(f'projector_dims must be positive integers, got {out}')
    return out


@dataclass(frozen=True)
class PretrainingOptions:
    """The pretraining options of :class:`MultimodalSSLTask`, parsed once.

    Attributes:
        projector_dims: Output sizes of the projector's Linear layers.
        shared_projector: One projector for all modalities.
        augmentations: Augmentation per modality as given (preset or mapping).
        crop_size: Side length of the augmented crops in pixels.
        aligned_crops: Share crop and flips between the modalities.
        optimizer: ``'adamw'`` or ``'lars'``.
        lr: Learning rate of the weights.
        weight_decay: Weight decay of the weights.
        optimizer_options: The checked optimiser options, every key set.
        lr_schedule: The checked schedule, every key set.
    """

    projector_dims: tuple[int, ...]
    shared_projector: bool
    augmentations: dict[str, str | dict[str, Any]]
    crop_size: int
    aligned_crops: bool
    optimizer: str
    lr: float
    weight_decay: float
    optimizer_options: OptimizerOptions
    lr_schedule: ScheduleOptions


class MultimodalSSLTask(MultiEncoderTask):
    """Base task: one encoder and one projector per modality, two views each.

    A training step takes a batch ``{'image_<m>': (N, V x C_m, H, W)}`` (raw views
    stacked on the channel axis, already normalised by the data module), draws an
    augmented view per stored view with the modality's kornia pipeline on the
    device, embeds every view with the modality's backbone and projector, and hands
    the embeddings to :meth:`compute_loss`. Subclasses only define the loss (and,
    if needed, their heads). ``backbones`` and ``projectors`` are
    :class:`~torch.nn.ModuleDict` objects keyed by modality, modality 1 first.
    The optimiser and its schedule are those of :mod:`.optim`.
    """

    monitor = 'train_loss'

    #: Number of augmented views per modality the loss needs.
    num_views = 2

    min_modalities = 2
    modality_hint = '; DeCURTask pretrains any number of modalities'
    follow_member_model = True
    keep_encoder_head = True

    def __init__(
        self,
        modalities: Sequence[str] = ('s1', 's2'),
        model: str | None = None,
        in_channels: dict[str, int] | None = None,
        weights: WeightSpec | dict[str, WeightSpec] = None,
        backbone_kwargs: dict[str, Any] | None = None,
        projector_dims: Sequence[int] = (8192, 8192, 8192),
        shared_projector: bool = False,
        augmentations: dict[str, str | dict[str, Any]] | None = None,
        crop_size: int = 224,
        aligned_crops: bool = False,
        optimizer: Literal['adamw', 'lars'] = 'adamw',
        lr: float = 1e-4,
        weight_decay: float = 0.01,
        optimizer_options: OptimizerOptions | None = None,
        lr_schedule: ScheduleOptions | None = None,
    ) -> None:
        """Initialize a new MultimodalSSLTask instance.

        Args:
            modalities: The modality names (two or more, as the loss allows),
                modality 1 first; batches must hold ``image_<name>`` for each.
            model: timm name of the encoder architecture (same for both); by
                default the architecture of ``weights`` (a member, an export, a
                task checkpoint: see :func:`~torchgeo_decur.weights.loading.
                weights_architecture`), else ``resnet50``. Naming another
                architecture than the weights' is an error.
            in_channels: Channels per modality (defaults for s1=2, s2=13, rgb=3,
                dem=3, hha=3).
            weights: Initial weights, for both encoders at once (a joint file or
                member, a checkpoint of this task, or True for ImageNet) or per
                modality as ``{modality: spec}``. A DeCUR Weights member (or its
                name) also sets the architecture: ``model``, the channels and
                ``backbone_kwargs`` follow its ``meta``, modality i of the task
                taking modality i of a joint member whatever the names (a
                UserWarning names both when they differ: augmentation presets
                follow the task's names). Its projectors load when their shapes
                match ``projector_dims``, else they are skipped with a warning.
            backbone_kwargs: Extra arguments for
                :func:`~torchgeo_decur.models.build_backbone` (``fresh_stem: true``
                re-initialises 2- and 13-channel stems after ImageNet loading)
                and ``timm.create_model``, plus the RDA options ``rda_semantics``
                and ``shared_rda`` (see
                :func:`~torchgeo_decur.models.backbones.split_rda_options`).
            projector_dims: Output sizes of the projector's Linear layers; the last
                is the embedding size K.
            shared_projector: Use one projector for both modalities (as the
                reference code did). Default: one per modality (the paper).
            augmentations: Augmentation per modality: a preset name (``sar``,
                ``optical``, ``elevation``, ``rgb``, ``depth``) or a mapping with
                ``preset`` and option overrides (see
                :class:`~torchgeo_decur.transforms.AugmentationConfig`).
            crop_size: Side length of the augmented crops in pixels.
            aligned_crops: Share crop and flips between the modalities (pixel-aligned
                cross-modal pairs) instead of drawing them independently.
            optimizer: ``'adamw'`` (decoupled weight decay) or ``'lars'``
                (lightly's :class:`~lightly.utils.lars.LARS`; see
                :func:`~torchgeo_decur.tasks.optim.build_optimizer`).
            lr: Learning rate of weights (parameters with 2+ dims).
            weight_decay: Weight decay of the weights.
            optimizer_options: ``lr_biases``, ``decay_biases`` and ``momentum``
                (see :class:`~torchgeo_decur.tasks.optim.OptimizerOptions`).
            lr_schedule: ``warmup_epochs``, ``epochs`` and ``interval`` of the
                warm-up + cosine schedule (see
                :class:`~torchgeo_decur.tasks.optim.ScheduleOptions`).

        Raises:
            ValueError: For an unknown modality default or invalid option.

        Warns:
            UserWarning: For ``optimizer='lars'`` with ``weight_decay=0``, which
                lightly's LARS runs as plain SGD with momentum.
        """
        self.parse_encoder_options(
            weights, modalities, model, in_channels, backbone_kwargs, modalities
        )
        self.options = PretrainingOptions(
            tuple(check_projector_dims(projector_dims)),
            bool(shared_projector),
            dict(augmentations or {}),
            int(crop_size),
            bool(aligned_crops),
            optimizer,
            float(lr),
            float(weight_decay),
            check_optimizer_options(optimizer, lr, weight_decay, optimizer_options),
            check_schedule(lr_schedule),
        )
        super().__init__()

    # ------------------------------------------------------------------ setup
    def _mapping_hint(self, member: WeightsEnum, mapping: Mapping[int, str]) -> str:
        """What the modality-name warning adds for SSL tasks (augmentations)."""
        names = member_modalities(member) or ('?',)
        specs = self.options.augmentations
        presets = {}
        for m in mapping.values():
            spec = specs.get(m, DEFAULT_AUGMENTATIONS.get(m))
            presets[m] = spec.get('preset') if isinstance(spec, Mapping) else spec
        if len(names) > 1:
            rename = f'modalities: {list(names)}'
        else:
            rename = ', '.join(f'{m!r} -> {names[0]!r}' for m in mapping.values())
        return (
            'Augmentation presets and other per-modality settings follow '
            f"the task's modality names ({presets}), not the member's. Name the "
            f'task modalities after the member ({rename}) unless this pairing is '
            'intended, or set augmentations explicitly.'
        )

    def weights_hint(self) -> MappingHint:
        """The modality-name warning names the augmentation presets."""
        return self._mapping_hint

    def weights_rda_semantics(self) -> RDASemantics:
        """With ``shared_rda`` modality 2 runs through modality 1's blocks.

        Whatever the file holds for it: that is the pretraining semantics already.
        """
        options = self.encoder_options
        return 'transfer' if options.shared_rda else options.rda_semantics

    def build_encoders(self, weights: ResolvedWeights) -> None:
        """Build encoders, projectors and augmentations; load the weights.

        Args:
            weights: The resolved weights.
        """
        spec = self.encoder_spec
        self.backbones = nn.ModuleDict(
            {
                m: build_backbone(
                    spec.model,
                    spec.in_channels[m],
                    pretrained=m in weights.imagenet,
                    **spec.timm_kwargs,
                )
                for m in self.modalities
            }
        )
        self.configure_heads()
        self.configure_augmentations(spec.in_channels)
        for m, enc in weights.encoders.items():
            self.load_backbone_state(m, enc.state_dict, enc.source)
            self.load_projector_state(m, enc.projector, enc.source)
        if spec.shared_rda:
            # After loading, so modality 1's weights are the ones all use.
            first, *others = self.backbones.values()
            for other in others:
                share_deformable_attention(first, other)

    def configure_heads(self) -> None:
        """Build one projector per modality (or one shared projector)."""
        dims = list(self.options.projector_dims)
        in_dims = {m: feature_dim(self.backbones[m]) for m in self.modalities}
        if self.options.shared_projector:
            if len(set(in_dims.values())) != 1:
                raise ValueError(
                    f'shared_projector needs equal feature sizes, got {in_dims}'
                )
            shared = Projector(in_dims[self.modalities[0]], dims)
            self.projectors = nn.ModuleDict({m: shared for m in self.modalities})
        else:
            self.projectors = nn.ModuleDict(
                {m: Projector(in_dims[m], dims) for m in self.modalities}
            )

    def configure_augmentations(self, channels: Mapping[str, int]) -> None:
        """Build the per-modality augmentation pipelines."""
        specs = self.options.augmentations
        unknown = sorted(set(specs) - set(self.modalities))
        if unknown:
            raise ValueError(
                f'augmentations names unknown modalities {unknown}; '
                f'modalities are {list(self.modalities)}'
            )
        size = self.options.crop_size
        augs = {}
        for m in self.modalities:
            spec = specs.get(m, DEFAULT_AUGMENTATIONS.get(m))
            if spec is None:
                raise ValueError(
                    f'no augmentation given for modality {m!r} and no default; pass '
                    f"augmentations={{{m!r}: '<preset>'}}"
                )
            augs[m] = ModalityAugmentation(resolve_config(spec), size, channels[m])
        self.augmentations = nn.ModuleDict(augs)
        # Geometric transform shared by both modalities for aligned crops.
        first = self.augmentation(self.modalities[0])
        self.shared_geometric = ModalityAugmentation.build_geometric(first.config, size)

    def augmentation(self, modality: str) -> ModalityAugmentation:
        """The augmentation pipeline of one modality."""
        return cast(ModalityAugmentation, self.augmentations[modality])

    # --------------------------------------------------------------- weights
    def load_backbone_state(
        self, modality: str, state_dict: Mapping[str, Tensor], source: str
    ) -> None:
        """Load a single-encoder state dict into one modality's backbone.

        Classifier keys (``fc.*``, ``head.*``, ...) are dropped, with a
        UserWarning naming the ``backbone_kwargs`` that would keep them, when the
        backbone has no such layer (or one of another shape). When it has one
        (DeCUR's MiT keeps a 512→2048 ``head`` inside the backbone), the file's
        head is loaded if present (joint files) and otherwise left at its
        initialisation (released backbone-only files carry no head), like the
        projectors.

        Args:
            modality: Target modality.
            state_dict: Encoder weights (any single-encoder layout).
            source: Where the weights came from, for error messages.

        Raises:
            ValueError: If the weights do not fit the backbone.
        """
        remapped = remap_backbone_state_dict(state_dict, source)
        self._warn_about_dropped_head(modality, remapped, source)
        load_encoder_state(
            self.backbones[modality],
            remapped,
            what=f'backbone {modality!r} ({self.encoder_spec.model}) from {source}',
        )

    def load_projector_state(
        self, modality: str, state_dict: Mapping[str, Tensor], source: str
    ) -> None:
        """Load a joint file's projector, or keep the initial one if it differs.

        Args:
            modality: Target modality.
            state_dict: Projector weights (empty when the file has none).
            source: Where the weights came from, for messages.

        Warns:
            UserWarning: When the shapes do not match ``projector_dims``.
        """
        own = self.projectors[modality].state_dict()
        mismatch = sorted(
            f'{k} {tuple(v.shape)} vs {tuple(own[k].shape)}'
            if k in own
            else f'{k} (not in the projector)'
            for k, v in state_dict.items()
            if k not in own or v.shape != own[k].shape
        )
        if mismatch:
            warnings.warn(
                f'projector {modality!r} not loaded from {source}: its shapes do not '
                f'match projector_dims={list(self.options.projector_dims)} '
                f'({", ".join(mismatch[:3])}); it keeps its initial weights',
                stacklevel=3,
            )
        elif state_dict:
            load_exact(
                self.projectors[modality],
                state_dict,
                what=f'projector {modality!r} from {source}',
            )

    def _warn_about_dropped_head(
        self, modality: str, state_dict: Mapping[str, Tensor], source: str
    ) -> None:
        """Warn when a checkpoint's encoder head cannot be loaded into the backbone.

        In pretraining a head inside the encoder (DeCUR's MiT: Linear 512 → 2048)
        feeds the projector, so dropping it (the backbone was built without one,
        or with another size) changes what the projector sees.

        Args:
            modality: Target modality.
            state_dict: Encoder weights with the backbone's key names.
            source: Where the weights came from.
        """
        own = self.backbones[modality].state_dict()
        dropped = {
            k: v
            for k, v in state_dict.items()
            if k.startswith(CLASSIFIER_PREFIXES)
            and (k not in own or own[k].shape != v.shape)
        }
        if not dropped:
            return
        shapes = ', '.join(f'{k} {tuple(v.shape)}' for k, v in sorted(dropped.items()))
        out_dims = [int(v.shape[0]) for v in dropped.values() if v.ndim == 2]
        size = out_dims[0] if out_dims else '<head output size>'
        has_head = any(k in own for k in dropped)
        warnings.warn(
            f'backbone {modality!r}: {source} holds an encoder head ({shapes}) that '
            f'the {self.encoder_spec.model} backbone built here '
            f'{"has with another shape" if has_head else "lacks"}, so it is not '
            'loaded and the projector is fed the backbone output '
            f'({feature_dim(self.backbones[modality])}-d) instead of the pretrained '
            "head's. DeCUR's MiT joint files keep such a head (512 -> 2048) that "
            'feeds the projector; to build and load it set backbone_kwargs: '
            f'{{num_classes: {size}}}.',
            UserWarning,
            stacklevel=2,
        )

    # ----------------------------------------------------------------- steps
    def embed(self, modality: str, x: Tensor) -> tuple[Tensor, Tensor]:
        """Encode and project one batch of one modality.

        Args:
            modality: Modality name.
            x: Images of shape (N, C, H, W).

        Returns:
            Pooled features (N, D) and projector embeddings (N, K).
        """
        # Under precision '*-true' the weights are half precision while the
        # augmentations run in float32: feed the encoder its own dtype.
        x = x.to(next(self.backbones[modality].parameters()).dtype)
        h = self.backbones[modality](x)
        return h, self.projectors[modality](h)

    def forward(self, x: Tensor, modality: str | None = None) -> Tensor:
        """Pooled features of one modality (modality 1 by default).

        Args:
            x: Images of shape (N, C, H, W).
            modality: Which encoder to use.

        Returns:
            Features of shape (N, D).
        """
        return self.backbones[modality or self.modalities[0]](x)  # type: ignore[no-any-return]

    def split_views(self, batch: Mapping[str, Tensor]) -> dict[str, list[Tensor]]:
        """Split each modality's stacked views and validate channel counts.

        Args:
            batch: ``{'image_<m>': (N, V x C_m, H, W)}`` with V = 1 or 2.

        Returns:
            For every modality a list of ``num_views`` raw views (N, C_m, H, W);
            a single stored view is reused for every augmented view.

        Raises:
            ValueError: If a modality key is missing or its channels are not
                C_m or 2 x C_m.
        """
        out: dict[str, list[Tensor]] = {}
        for m in self.modalities:
            key, x = modality_image(batch, m)
            c = self.in_channels[m]
            if x.ndim != 4 or x.shape[1] not in (c, 2 * c):
                raise ValueError(
                    f'{key}: expected (N, {c} or {2 * c}, H, W) for {c}-channel '
                    f'modality {m!r} (one or two stacked views), got {tuple(x.shape)}'
                )
            stored = list(torch.split(x, c, dim=1))
            out[m] = [stored[i % len(stored)] for i in range(self.num_views)]
        return out

    @torch.no_grad()
    def augment(self, views: Mapping[str, list[Tensor]]) -> dict[str, list[Tensor]]:
        """Draw the augmented views of every modality.

        Args:
            views: Raw views per modality from :meth:`split_views`.

        Returns:
            Augmented views per modality, each (N, C_m, crop, crop).
        """
        names = self.modalities
        out: dict[str, list[Tensor]] = {m: [] for m in names}
        for v in range(self.num_views):
            xs = [views[m][v].float() for m in names]
            if self.options.aligned_crops:
                grids = [tuple(x.shape[-2:]) for x in xs]
                if len(set(grids)) != 1:
                    which = 'both' if len(names) == 2 else 'all'
                    raise ValueError(
                        f'aligned_crops needs {which} modalities on the same grid, '
                        f'got {" and ".join(str(g) for g in grids)} ({list(names)})'
                    )
                joint = self.shared_geometric(torch.cat(xs, dim=1))
                xs = list(torch.split(joint, [x.shape[1] for x in xs], dim=1))
            else:
                xs = [
                    self.augmentation(m).geometric(x)
                    for m, x in zip(names, xs, strict=True)
                ]
            for m, x in zip(names, xs, strict=True):
                out[m].append(self.augmentation(m).photometric(x))
        return out

    @abstractmethod
    def compute_loss(self, embeddings: Mapping[str, list[Tensor]]) -> dict[str, Tensor]:
        """Compute the loss from the embeddings.

        Args:
            embeddings: For every modality, ``num_views`` embeddings (N, K).

        Returns:
            A dictionary with the scalar ``'loss'`` to optimise and any further
            scalars to log as ``train_<name>``.
        """

    def training_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        """Augment, embed, compute and log the loss.

        Args:
            batch: Batch dictionary (see :meth:`split_views`).
            batch_idx: Index of the batch.
            dataloader_idx: Index of the loader.

        Returns:
            The loss.

        Raises:
            NonFiniteError: If the loss or a logged term is NaN or infinite.
        """
        views = self.augment(self.split_views(batch))
        check_batch_size(views[self.modalities[0]][0].shape[0], type(self).__name__)
        embeddings: dict[str, list[Tensor]] = {}
        for m in self.modalities:
            embeddings[m] = [self.embed(m, x)[1] for x in views[m]]
        outputs = self.compute_loss(embeddings)
        check_finite_outputs(self.global_step, outputs, embeddings, batch)
        batch_size = views[self.modalities[0]][0].shape[0]
        loss = outputs['loss']
        self.log('train_loss', loss, prog_bar=True, batch_size=batch_size)
        for name, value in outputs.items():
            if name != 'loss':
                self.log(f'train_{name}', value, batch_size=batch_size)
        # Collapse monitor: ~1/sqrt(K) for healthy embeddings, 0 when collapsed.
        for m in self.modalities:
            std = std_of_l2_normalized(embeddings[m][0].detach().float())
            self.log(f'train_std_{m}', std, batch_size=batch_size)
        return loss

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to write non-finite weights (see :mod:`.finite`); record the spec.

        Args:
            checkpoint: The dictionary about to be saved.
        """
        check_finite_checkpoint(checkpoint, self.global_step)
        super().on_save_checkpoint(checkpoint)

    def predict_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Tensor]:
        """Pooled features of every modality present in the batch.

        Args:
            batch: Batch dictionary with ``image_<m>`` entries of C_m channels.
            batch_idx: Index of the batch.
            dataloader_idx: Index of the loader.

        Returns:
            ``{'features_<m>': (N, D)}``.
        """
        return {
            f'features_{m}': self.backbones[m](batch[f'image_{m}'])
            for m in self.modalities
            if f'image_{m}' in batch
        }

    # ------------------------------------------------------------ validation
    #: Base seed of the validation augmentations: batch i is augmented with seed
    #: ``VALIDATION_SEED + i`` in every epoch, so ``val_*`` values of different
    #: epochs compare the same views.
    VALIDATION_SEED = 20240917

    def validation_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Any]:
        """Loss, its terms and the collapse monitors on a validation batch.

        The views are drawn like in training but from a generator seeded with
        :attr:`VALIDATION_SEED` + ``batch_idx`` inside :func:`torch.random.fork_rng`,
        so every epoch sees the same views and the training randomness after the
        validation loop is what it would have been without it. Logged per epoch
        as ``val_loss``, ``val_<term>`` and ``val_std_<m>``.

        Args:
            batch: Batch dictionary (see :meth:`split_views`).
            batch_idx: Index of the batch.
            dataloader_idx: Index of the loader.

        Returns:
            ``{'loss': scalar, 'embeddings': {m: [(N, K) per view]}}``: the
            projector outputs of every view of every modality (detached), which
            callbacks such as
            :class:`~torchgeo_decur.callbacks.CorrelationPicture` collect in
            ``on_validation_batch_end``; training never computes them twice.
        """
        cuda = self.device.type == 'cuda'
        with torch.random.fork_rng(devices=[self.device] if cuda else []):
            torch.manual_seed(self.VALIDATION_SEED + batch_idx)
            views = self.augment(self.split_views(batch))
        embeddings = {
            m: [self.embed(m, x)[1] for x in views[m]] for m in self.modalities
        }
        outputs = self.compute_loss(embeddings)
        batch_size = views[self.modalities[0]][0].shape[0]
        for name, value in outputs.items():
            self.log(
                f'val_{name}',
                value,
                prog_bar=name == 'loss',
                on_epoch=True,
                batch_size=batch_size,
                sync_dist=True,
            )
        for m in self.modalities:
            std = std_of_l2_normalized(embeddings[m][0].float())
            self.log(
                f'val_std_{m}',
                std,
                on_epoch=True,
                batch_size=batch_size,
                sync_dist=True,
            )
        return {
            'loss': outputs['loss'].detach(),
            'embeddings': {
                m: [z.detach() for z in embeddings[m]] for m in self.modalities
            },
        }

    # ------------------------------------------------------------- optimiser
    def parameter_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups (see :func:`.optim.parameter_groups`).

        Returns:
            ``[weights, biases]`` or ``[weights, biases, scalars]``.
        """
        options = self.options
        return parameter_groups(
            self.parameters(),
            options.optimizer,
            options.lr,
            options.weight_decay,
            options.optimizer_options,
        )

    def build_optimizer(self) -> torch.optim.Optimizer:
        """AdamW or LARS over :meth:`parameter_groups` (no schedule attached).

        Returns:
            The optimizer; each group's ``lr`` is its peak learning rate.
        """
        options = self.options
        return build_optimizer(
            self.parameter_groups(),
            options.optimizer,
            options.lr,
            options.optimizer_options['momentum'],
        )

    def configure_optimizers(
        self,
    ) -> 'lightning.pytorch.utilities.types.OptimizerLRScheduler':
        """The optimizer of :meth:`build_optimizer` and a warm-up + cosine schedule.

        See :func:`~torchgeo_decur.tasks.optim.warmup_cosine_scheduler`.

        Returns:
            The optimizer and its scheduler.

        Raises:
            ValueError: If the schedule's length cannot be known.
        """
        optimizer = self.build_optimizer()
        per_epoch, total = schedule_lengths(self.trainer)
        scheduler = warmup_cosine_scheduler(
            optimizer, self.options.lr_schedule, per_epoch, total
        )
        return {'optimizer': optimizer, 'lr_scheduler': cast(Any, scheduler)}


__all__ = ('MultimodalSSLTask', 'PretrainingOptions', 'warmup_cosine')
