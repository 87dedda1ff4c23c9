"""Shared machinery of two-encoder (multimodal) self-supervised tasks."""

import math
import os
import warnings
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias, cast

import lightning.pytorch.utilities.types
import torch
from lightly.utils.debug import std_of_l2_normalized
from lightly.utils.lars import LARS
from torch import Tensor, nn
from torch.optim import AdamW
from torch.optim.lr_scheduler import LambdaLR
from torchgeo.tasks import BaseTask
from torchvision.models._api import WeightsEnum

from ..losses.common import check_non_negative
from ..models.backbones import build_backbone, feature_dim
from ..models.checkpoints import (
    CLASSIFIER_PREFIXES,
    RDASemantics,
    check_rda_semantics,
    load_encoder_state,
    load_exact,
    read_checkpoint,
    remap_backbone_state_dict,
    split_joint_state_dict,
    unwrap_state_dict,
)
from ..models.heads import Projector
from ..models.rda import share_deformable_attention
from ..models.weights import (
    DeCURWeightsEnum,
    as_decur_member,
    modality_mapping_note,
)
from ..transforms.augmentations import ModalityAugmentation, resolve_config
from .finite import check_batch_size, check_finite_checkpoint, check_finite_outputs

#: Initial weights of one encoder: None/False (random), True (timm ImageNet), a
#: Weights enum member, its string name, or a path to a checkpoint file.
# A plain alias (not `type X = ...`) so jsonargparse reads it in signatures.
WeightSpec: TypeAlias = WeightsEnum | str | bool | None  # noqa: UP040

#: Default channel counts and augmentation presets of well-known modality names.
DEFAULT_IN_CHANNELS = {'s1': 2, 's2': 13, 'rgb': 3, 'dem': 3, 'hha': 3}
DEFAULT_AUGMENTATIONS = {
    's1': 'sar',
    's2': 'optical',
    'rgb': 'optical',
    'dem': 'elevation',
    'hha': 'depth',
}


def resolve_in_channels(
    modalities: Sequence[str], given: Mapping[str, int] | None
) -> dict[str, int]:
    """Channel count of every modality: given values, else the defaults.

    Args:
        modalities: Modality names.
        given: Explicit channel counts (may be None or partial).

    Returns:
        ``{modality: channels}`` in modality order.

    Raises:
        ValueError: If a modality has neither a given nor a default count, or
            ``given`` names a modality that is not used.
    """
    given = dict(given or {})
    out = {}
    for m in modalities:
        if m in given:
            out[m] = int(given[m])
        elif m in DEFAULT_IN_CHANNELS:
            out[m] = DEFAULT_IN_CHANNELS[m]
        else:
            raise ValueError(
                f'in_channels has no entry for modality {m!r} and there is no '
                f'default for it; pass in_channels={{{m!r}: <C>}}'
            )
    unknown = sorted(set(given) - set(modalities))
    if unknown:
        raise ValueError(
            f'in_channels names unknown modalities {unknown}; '
            f'modalities are {list(modalities)}'
        )
    return out


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


def check_optimization_args(
    optimizer: str,
    lr: float,
    lr_biases: float | None,
    weight_decay: float,
    warmup_epochs: float,
    lr_schedule_interval: str,
    lr_schedule_epochs: int | None,
) -> None:
    """Validate the optimizer and schedule arguments of :class:`MultimodalSSLTask`.

    Args:
        optimizer: ``'adamw'`` or ``'lars'``.
        lr: Learning rate of the weights.
        lr_biases: Learning rate of the 1-D parameters, or None.
        weight_decay: Weight decay.
        warmup_epochs: Warm-up length in epochs.
        lr_schedule_interval: ``'step'`` or ``'epoch'``.
        lr_schedule_epochs: Schedule length in epochs, or None.

    Raises:
        ValueError: For an unknown optimizer or interval, a negative rate, decay or
            warm-up, a fractional warm-up with ``'epoch'`` steps, or a schedule
            length below 1.

    Warns:
        UserWarning: For LARS with ``weight_decay == 0``.
    """
    if optimizer not in ('adamw', 'lars'):
        raise ValueError(f"optimizer must be 'adamw' or 'lars', got {optimizer!r}")
    if lr_schedule_interval not in ('step', 'epoch'):
        raise ValueError(
            "lr_schedule_interval must be 'step' or 'epoch', got "
            f'{lr_schedule_interval!r}'
        )
    values = {'lr': lr, 'weight_decay': weight_decay, 'warmup_epochs': warmup_epochs}
    if lr_biases is not None:
        values['lr_biases'] = lr_biases
    check_non_negative(**values)
    if lr_schedule_interval == 'epoch' and warmup_epochs != int(warmup_epochs):
        raise ValueError(
            "with lr_schedule_interval='epoch' the learning rate changes once per "
            f'epoch, so warmup_epochs must be a whole number, got {warmup_epochs}'
        )
    if lr_schedule_epochs is not None and (
        isinstance(lr_schedule_epochs, bool)
        or not isinstance(lr_schedule_epochs, int)
        or lr_schedule_epochs < 1
    ):
        raise ValueError(
            f'lr_schedule_epochs must be a positive integer or None, got '
            f'{lr_schedule_epochs!r}'
        )
    if optimizer == 'lars' and weight_decay == 0:
        warnings.warn(
            "optimizer='lars' with weight_decay=0: lightly's LARS skips the "
            'layer-wise adaptation of every parameter group without weight decay, '
            'so this trains with plain SGD + momentum; set a weight_decay > 0 '
            '(the reference used 1e-6) for LARS',
            UserWarning,
            stacklevel=3,
        )


def warmup_cosine(t: int, warmup: int, length: int) -> float:
    """Learning-rate factor of a linear warm-up followed by a cosine decay.

    Args:
        t: Index of the step or epoch, from 0.
        warmup: Number of warm-up steps/epochs.
        length: Total number of steps/epochs of the schedule (warm-up included).

    Returns:
        ``(t + 1) / warmup`` during the warm-up, then
        ``0.5 * (1 + cos(pi * (t - warmup) / (length - warmup)))``, held at 0 past
        ``length``. Without warm-up this is the reference's
        ``0.5 * (1 + cos(pi * epoch / epochs))`` (its ``adjust_learning_rate``).
    """
    # Not lightly's cosine_warmup_schedule: it divides by (max_steps - 1) and so
    # reaches 0 at the last epoch, while the reference's per-epoch cosine divides
    # by the epoch count and never does.
    if t < warmup:
        return (t + 1) / warmup
    progress = min(1.0, (t - warmup) / max(1, length - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class MultimodalSSLTask(BaseTask):
    """Base task: one encoder and one projector per modality, two views each.

    A training step takes a batch ``{'image_<m>': (N, V x C_m, H, W)}`` (raw views
    stacked on the channel axis, already normalised by the data module), draws an
    augmented view per stored view with the modality's kornia pipeline on the
    device, embeds every view with the modality's backbone and projector, and hands
    the embeddings to :meth:`compute_loss`. Subclasses only define the loss (and,
    if needed, their heads). ``backbones`` and ``projectors`` are
    :class:`~torch.nn.ModuleDict` objects keyed by modality, modality 1 first.
    """

    ignore = 'weights'
    monitor = 'train_loss'

    #: Number of augmented views per modality the loss needs.
    num_views = 2

    #: Most modalities the loss is defined for (None: any number >= 2).
    max_modalities: int | None = None

    def __init__(
        self,
        modalities: Sequence[str] = ('s1', 's2'),
        model: str = 'resnet50',
        in_channels: dict[str, int] | None = None,
        weights: WeightSpec | dict[str, WeightSpec] = None,
        backbone_kwargs: dict[str, Any] | None = None,
        projector_dims: Sequence[int] = (8192, 8192, 8192),
        shared_projector: bool = False,
        shared_rda: bool = False,
        optimizer: Literal['adamw', 'lars'] = 'adamw',
        lr: float = 1e-4,
        lr_biases: float | None = None,
        weight_decay: float = 0.01,
        decay_biases: bool | None = None,
        momentum: float = 0.9,
        warmup_epochs: float = 0.0,
        lr_schedule_interval: Literal['step', 'epoch'] = 'step',
        lr_schedule_epochs: int | None = None,
        augmentations: dict[str, str | dict[str, Any]] | None = None,
        crop_size: int = 224,
        aligned_crops: bool = False,
        gather_distributed: bool = True,
        rda_semantics: RDASemantics = 'transfer',
        channels_last: bool = False,
    ) -> None:
        """Initialize a new MultimodalSSLTask instance.

        Args:
            modalities: The modality names (two or more, as the loss allows),
                modality 1 first; batches must hold ``image_<name>`` for each.
            model: timm name of the encoder architecture (same for both).
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
                re-initialises 2- and 13-channel stems after ImageNet loading, as
                the reference did) and ``timm.create_model``.
            projector_dims: Output sizes of the projector's Linear layers; the last
                is the embedding size K.
            shared_projector: Use one projector for both modalities, like the
                reference code (it built both from the same layers). Default: one per modality (paper).
            shared_rda: For RDA encoders (``model='resnet50_rda'``): run modality 2
                through modality 1's deformable-attention blocks (the same module
                objects), as the reference pretraining forward did (its ``da2_*`` never trained).
                Modality 2's own blocks, and any weights loaded into them, are
                dropped. Default: one pair of blocks per modality (paper).
            optimizer: ``'adamw'`` (decoupled weight decay) or ``'lars'``
                (lightly's :class:`~lightly.utils.lars.LARS`; see
                :meth:`configure_optimizers` for how it differs from the
                reference's LARS).
            lr: Learning rate of weights (parameters with 2+ dims).
            lr_biases: Learning rate of biases and norm parameters (1-D parameters,
                and any 0-D ones); defaults to ``lr``.
            weight_decay: Weight decay of the weights (and of the 1-D parameters
                when ``decay_biases``).
            decay_biases: Whether the 1-D parameters (biases, norms) get
                ``weight_decay`` too. ``None`` (default) does what the reference's
                optimizers did: AdamW decays them (``AdamW(groups,
                weight_decay=wd)`` without a per-group override), LARS excludes
                them from decay and from the layer-wise adaptation (its
                ``weight_decay_filter`` / ``lars_adaptation_filter``). ``False``
                excludes them for either optimizer; ``True`` with LARS decays
                them and, as lightly's LARS ties the adaptation to a non-zero
                decay, adapts them too. 0-D parameters (CLIP's learnable
                temperature) are never decayed.
            momentum: LARS momentum.
            warmup_epochs: Length of the linear warm-up before the cosine decay,
                in epochs (≥ 0; a whole number with
                ``lr_schedule_interval='epoch'``).
            lr_schedule_interval: ``'step'``: the learning rate changes after
                every optimizer step (a smooth cosine that equals the reference's
                value at each epoch start); ``'epoch'``: once per epoch, exactly
                the reference's ``lr * 0.5 * (1 + cos(pi * epoch / epochs))``
                (its ``adjust_learning_rate``). See :meth:`configure_optimizers`.
            lr_schedule_epochs: Length of the warm-up + cosine schedule in epochs;
                ``None`` (default): the whole run (the Trainer's ``max_epochs`` /
                ``max_steps``). Longer than the run trains only the start of a
                longer schedule: e.g. ``max_epochs=100`` with
                ``lr_schedule_epochs=200`` follows epochs 0-99 of a 200-epoch
                cosine, the path of the released ViT-S/16 file (epoch 100 of a 200-epoch run).
            augmentations: Augmentation per modality: a preset name (``sar``,
                ``optical``, ``elevation``, ``rgb``, ``depth``) or a mapping with
                ``preset`` and option overrides (see
                :class:`~torchgeo_decur.transforms.AugmentationConfig`).
            crop_size: Side length of the augmented crops in pixels.
            aligned_crops: Share crop and flips between the modalities (pixel-aligned
                cross-modal pairs) instead of drawing them independently.
            gather_distributed: Compute the loss over the global batch of all
                ranks (no effect on a single process).
            rda_semantics: Which deformable-attention blocks modality 2 of an RDA
                joint checkpoint gets: ``'transfer'`` (``da2_*``) or
                ``'pretraining'`` (``da1_*``, what the reference pretraining ran). A backbone-only file
                with ``da2_*`` blocks (the released MS / DEM files) cannot give
                ``'pretraining'`` (a ValueError says to load the joint file),
                unless ``shared_rda`` replaces those blocks anyway.
            channels_last: Keep the encoders' weights and their input images in
                the channels-last (NHWC) memory format, which tensor-core GPUs
                run faster (convolutions especially under bf16). Values unchanged.

        Raises:
            ValueError: For an unknown modality default or invalid option.

        Warns:
            UserWarning: For ``optimizer='lars'`` with ``weight_decay=0``, which
                lightly's LARS runs as plain SGD with momentum.
        """
        self.weights = weights
        modalities = tuple(modalities)
        if len(modalities) < 2 or len(set(modalities)) != len(modalities):
            raise ValueError(
                f'need at least two distinct modalities, got {list(modalities)}'
            )
        if self.max_modalities is not None and len(modalities) > self.max_modalities:
            raise ValueError(
                f'{type(self).__name__} is defined for {self.max_modalities} '
                f'modalities, got {len(modalities)}: {list(modalities)}; '
                'DeCURTask pretrains any number of modalities'
            )
        check_projector_dims(projector_dims)
        check_optimization_args(
            optimizer=optimizer,
            lr=lr,
            lr_biases=lr_biases,
            weight_decay=weight_decay,
            warmup_epochs=warmup_epochs,
            lr_schedule_interval=lr_schedule_interval,
            lr_schedule_epochs=lr_schedule_epochs,
        )
        check_rda_semantics(rda_semantics)
        super().__init__()

    # ------------------------------------------------------------------ setup
    @property
    def modalities(self) -> tuple[str, ...]:
        """The modality names, modality 1 first."""
        return tuple(self.hparams['modalities'])

    def _in_channels(self) -> dict[str, int]:
        """Resolve the channel count of every modality."""
        return resolve_in_channels(self.modalities, self.hparams['in_channels'])

    def _weight_spec(self, modality: str) -> WeightSpec:
        """The initial-weights spec that applies to one modality's encoder."""
        if isinstance(self.weights, Mapping):
            unknown = sorted(set(self.weights) - set(self.modalities))
            if unknown:
                raise ValueError(
                    f'weights names unknown modalities {unknown}; '
                    f'modalities are {list(self.modalities)}'
                )
            return self.weights.get(modality)
        return self.weights

    def _apply_weights_meta(self) -> None:
        """Let DeCUR Weights members choose the architecture and channels.

        Updates ``hparams`` (so a saved checkpoint rebuilds the same model).

        Raises:
            ValueError: If the members disagree with each other or with explicit
                ``in_channels``, or a member does not fit where it is given.
        """
        members: dict[str, tuple[DeCURWeightsEnum, int]] = {}
        if isinstance(self.weights, Mapping):
            for m in self.modalities:
                member = as_decur_member(self._weight_spec(m))
                if member is None:
                    continue
                if member.is_joint:
                    raise ValueError(
                        f'{member} holds both encoders; pass it as weights={member!s} '
                        f'instead of for modality {m!r} only'
                    )
                members[m] = (member, 1)
        else:
            member = as_decur_member(self.weights)
            if member is None:
                return
            if not member.is_joint:
                raise ValueError(
                    f'{member} holds one encoder ({member.modalities[0]}); pass '
                    f'weights={{<modality>: {member!s}}} to load it into one encoder'
                )
            if len(self.modalities) != 2:
                raise ValueError(
                    f'{member} holds two encoders, but the task has '
                    f'{len(self.modalities)} modalities {list(self.modalities)}; load '
                    'backbone files per modality (weights={modality: ...}) instead'
                )
            members = {m: (member, i) for i, m in enumerate(self.modalities, start=1)}
        if not members:
            return
        self._warn_about_modality_names(members)
        models = {member.meta['model'] for member, _ in members.values()}
        if len(models) > 1:
            raise ValueError(
                f'weights are for different architectures {sorted(models)}'
            )
        (model,) = models
        if self.hparams['model'] != model:
            warnings.warn(
                f'model={self.hparams["model"]!r} replaced by {model!r}, the '
                'architecture of the given weights',
                stacklevel=2,
            )
            self.hparams['model'] = model
        given = dict(self.hparams['in_channels'] or {})
        for m, (member, position) in members.items():
            channels = member.in_chans_for(position)
            if m in given and int(given[m]) != channels:
                raise ValueError(
                    f'in_channels[{m!r}]={given[m]} but {member} expects {channels} '
                    f'channels ({", ".join(member.bands_for(position))})'
                )
            given[m] = channels
        self.hparams['in_channels'] = given
        kwargs = dict(self.hparams['backbone_kwargs'] or {})
        for member, _ in members.values():
            for key, value in member.meta['backbone_kwargs'].items():
                kwargs.setdefault(key, value)
        self.hparams['backbone_kwargs'] = kwargs

    def _warn_about_modality_names(
        self, members: Mapping[str, tuple[DeCURWeightsEnum, int]]
    ) -> None:
        """Warn when members' encoders go to task modalities of other names.

        Encoders are mapped by position (a joint member's modality i to task
        modality i), which is right for deliberately renamed modalities but hides
        mistakes such as a GeoNRW RGB + DEM member in an S1 + S2 task, whose
        augmentations would then be the SAR / optical presets.

        Args:
            members: Task modality → (member, 1-based position in its file).
        """
        targets: dict[DeCURWeightsEnum, dict[int, str]] = {}
        for m, (member, position) in members.items():
            targets.setdefault(member, {})[position] = m
        specs = dict(self.hparams['augmentations'] or {})
        for member, mapping in targets.items():
            note = modality_mapping_note(str(member), member.modalities, mapping)
            if note is None:
                continue
            presets = {}
            for m in mapping.values():
                spec = specs.get(m, DEFAULT_AUGMENTATIONS.get(m))
                presets[m] = spec.get('preset') if isinstance(spec, Mapping) else spec
            if member.is_joint:
                rename = f'modalities: {list(member.modalities)}'
            else:
                rename = ', '.join(
                    f'{m!r} -> {member.modalities[0]!r}' for m in mapping.values()
                )
            warnings.warn(
                f'{note} Augmentation presets and other per-modality settings follow '
                f"the task's modality names ({presets}), not the member's. Name the "
                f'task modalities after the member ({rename}) unless this pairing is '
                'intended, or set augmentations explicitly.',
                UserWarning,
                stacklevel=3,
            )

    def configure_models(self) -> None:
        """Build the encoders, projectors and augmentations."""
        self._apply_weights_meta()
        channels = self._in_channels()
        self.in_channels = channels
        kwargs = dict(self.hparams['backbone_kwargs'] or {})
        self.backbones = nn.ModuleDict(
            {
                m: build_backbone(
                    self.hparams['model'],
                    channels[m],
                    pretrained=self._weight_spec(m) is True,
                    **kwargs,
                )
                for m in self.modalities
            }
        )
        if self.hparams['channels_last']:
            self.backbones.to(memory_format=torch.channels_last)
        self.configure_heads()
        self.configure_augmentations(channels)
        self.load_initial_weights()
        if self.hparams['shared_rda']:
            # After loading, so modality 1's weights are the ones all use.
            first, *others = self.backbones.values()
            for other in others:
                share_deformable_attention(first, other)

    def configure_heads(self) -> None:
        """Build one projector per modality (or one shared projector)."""
        dims = [int(d) for d in self.hparams['projector_dims']]
        in_dims = {m: feature_dim(self.backbones[m]) for m in self.modalities}
        if self.hparams['shared_projector']:
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
        specs = dict(self.hparams['augmentations'] or {})
        unknown = sorted(set(specs) - set(self.modalities))
        if unknown:
            raise ValueError(
                f'augmentations names unknown modalities {unknown}; '
                f'modalities are {list(self.modalities)}'
            )
        size = int(self.hparams['crop_size'])
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
    def load_initial_weights(self) -> None:
        """Load ``weights`` (joint or per modality) into the encoders/projectors."""
        if isinstance(self.weights, Mapping):
            for m in self.modalities:
                spec = self._weight_spec(m)
                if spec is None or isinstance(spec, bool):
                    continue
                state = self.resolve_state_dict(spec)
                self.load_backbone_state(m, state, source=str(spec))
            return
        spec = self.weights
        if spec is None or isinstance(spec, bool):
            return
        self.load_joint_state(self.resolve_state_dict(spec), source=str(spec))

    @staticmethod
    def resolve_state_dict(spec: WeightsEnum | str) -> dict[str, Tensor]:
        """Read the state dict that a weights spec points to.

        Args:
            spec: A Weights enum member, its string name, or a file path.

        Returns:
            The state dict (unwrapped from ``model``/``state_dict`` wrappers); for
            DeCUR members the file as released.

        Raises:
            ValueError: If ``spec`` is neither an existing file nor a known member.
        """
        decur = as_decur_member(spec)
        if decur is not None:
            return decur.get_raw_state_dict()
        if isinstance(spec, WeightsEnum):
            member = spec
        elif os.path.exists(spec):
            return read_checkpoint(spec)
        else:
            from torchgeo.models import get_weight

            try:
                member = get_weight(spec)
            except ValueError:
                raise ValueError(
                    f'weights={spec!r} is neither an existing file nor a registered '
                    'Weights enum member name'
                ) from None
        # Released file names carry no hash suffix, so there is no hash to check.
        obj = member.get_state_dict(progress=True, check_hash=False, weights_only=True)
        return unwrap_state_dict(obj, source=str(member))

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
            state_dict: Encoder weights.
            source: Where the weights came from, for error messages.

        Raises:
            ValueError: If the weights do not fit the backbone, or hold ``da2_*``
                blocks while ``rda_semantics='pretraining'`` (without
                ``shared_rda``).
        """
        # With shared_rda, modality 2 runs through modality 1's blocks whatever
        # this file holds, which is the pretraining semantics already.
        semantics: RDASemantics = (
            'transfer' if self.hparams['shared_rda'] else self.hparams['rda_semantics']
        )
        remapped = remap_backbone_state_dict(state_dict, source, semantics)
        self._warn_about_dropped_head(modality, remapped, source)
        load_encoder_state(
            self.backbones[modality],
            remapped,
            what=f'backbone {modality!r} ({self.hparams["model"]}) from {source}',
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
            f'the {self.hparams["model"]} backbone built here '
            f'{"has with another shape" if has_head else "lacks"}, so it is not '
            'loaded and the projector is fed the backbone output '
            f'({feature_dim(self.backbones[modality])}-d) instead of the pretrained '
            "head's. DeCUR's MiT joint files keep such a head (512 -> 2048) that "
            'feeds the projector; to build and load it set backbone_kwargs: '
            f'{{num_classes: {size}}}.',
            UserWarning,
            stacklevel=2,
        )

    def load_joint_state(self, state_dict: Mapping[str, Tensor], source: str) -> None:
        """Load a checkpoint holding both encoders (and optionally projectors).

        The layout is resolved by
        :func:`~torchgeo_decur.models.checkpoints.split_joint_state_dict`.

        Args:
            state_dict: The checkpoint's state dict.
            source: Where the weights came from, for error messages.

        Raises:
            ValueError: If the layout is not recognised or keys do not match.
        """
        backbones, projectors = split_joint_state_dict(
            state_dict, self.modalities, source, self.hparams['rda_semantics']
        )
        for m in self.modalities:
            self.load_backbone_state(m, backbones[m], source)
            own = self.projectors[m].state_dict()
            mismatch = sorted(
                f'{k} {tuple(v.shape)} vs {tuple(own[k].shape)}'
                if k in own
                else f'{k} (not in the projector)'
                for k, v in projectors[m].items()
                if k not in own or v.shape != own[k].shape
            )
            if mismatch:
                warnings.warn(
                    f'projector {m!r} not loaded from {source}: its shapes do not '
                    f'match projector_dims={list(self.hparams["projector_dims"])} '
                    f'({", ".join(mismatch[:3])}); it keeps its initial weights',
                    stacklevel=2,
                )
            elif projectors[m]:
                load_exact(
                    self.projectors[m],
                    projectors[m],
                    what=f'projector {m!r} from {source}',
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
        if self.hparams['channels_last']:
            x = x.contiguous(memory_format=torch.channels_last)
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
            key = f'image_{m}'
            if key not in batch:
                raise ValueError(
                    f'batch has no {key!r} for modality {m!r}; keys: {sorted(batch)}'
                )
            x = batch[key]
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
            if self.hparams['aligned_crops']:
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
        """Refuse to write non-finite weights (see :mod:`.finite`).

        Args:
            checkpoint: The dictionary about to be saved.
        """
        check_finite_checkpoint(checkpoint, self.global_step)

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
        """The optimizer's parameter groups.

        Like the reference, parameters are split by shape: the
        weights (2+ dims: convolution and linear kernels, ViT tokens and position
        embeddings) use ``lr`` and ``weight_decay``; the 1-D parameters (biases,
        norm scales and shifts) use ``lr_biases`` and ``weight_decay`` only when
        ``decay_biases`` resolves to True (see :meth:`__init__`). A third group,
        only when such parameters exist, holds 0-D parameters (CLIP's learnable
        temperature) with ``lr_biases`` and no weight decay. A parameter shared by
        two modules (``shared_projector``) appears once.

        Returns:
            ``[weights, biases]`` or ``[weights, biases, scalars]``, each a dict
            with ``params``, ``lr`` and ``weight_decay``.
        """
        lr = float(self.hparams['lr'])
        lr_biases = self.hparams['lr_biases']
        lr_biases = lr if lr_biases is None else float(lr_biases)
        weight_decay = float(self.hparams['weight_decay'])
        decay_biases = self.hparams['decay_biases']
        if decay_biases is None:
            decay_biases = self.hparams['optimizer'] == 'adamw'
        weights: list[nn.Parameter] = []
        biases: list[nn.Parameter] = []
        scalars: list[nn.Parameter] = []
        seen: set[int] = set()
        for p in self.parameters():
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (weights if p.ndim > 1 else biases if p.ndim == 1 else scalars).append(p)
        groups: list[dict[str, Any]] = [
            {'params': weights, 'lr': lr, 'weight_decay': weight_decay},
            {
                'params': biases,
                'lr': lr_biases,
                'weight_decay': weight_decay if decay_biases else 0.0,
            },
        ]
        if scalars:
            groups.append({'params': scalars, 'lr': lr_biases, 'weight_decay': 0.0})
        return groups

    def build_optimizer(self) -> torch.optim.Optimizer:
        """AdamW or LARS over :meth:`parameter_groups` (no schedule attached).

        Returns:
            The optimizer; each group's ``lr`` is its peak learning rate.
        """
        groups = self.parameter_groups()
        lr = float(self.hparams['lr'])
        optimizer: torch.optim.Optimizer
        if self.hparams['optimizer'] == 'lars':
            optimizer = LARS(groups, lr=lr, momentum=float(self.hparams['momentum']))
        else:
            optimizer = AdamW(groups, lr=lr)
        return optimizer

    def _schedule_lengths(self) -> tuple[float, float]:
        """Optimizer steps per epoch and in the whole run, from the Trainer.

        Returns:
            ``(per_epoch, total)``: ``ceil(training batches / accumulation)`` and
            Lightning's ``estimated_stepping_batches`` (which honours both
            ``max_epochs`` and ``max_steps``); ``inf`` where unknown (a loader
            without a length; a run without either limit).
        """
        trainer = self.trainer
        total = float(trainer.estimated_stepping_batches)
        if trainer.train_dataloader is None:
            # estimated_stepping_batches returns max_steps without loading the data
            # when max_epochs is unset; the epoch length still needs the loader.
            trainer.fit_loop.setup_data()
        batches = float(trainer.num_training_batches)
        if not math.isfinite(batches):
            return math.inf, total
        return max(1, math.ceil(batches / trainer.accumulate_grad_batches)), total

    def configure_optimizers(
        self,
    ) -> 'lightning.pytorch.utilities.types.OptimizerLRScheduler':
        """The optimizer of :meth:`build_optimizer` and a warm-up + cosine schedule.

        The learning rate of every group is its peak value times
        :func:`warmup_cosine` of the step or epoch index:

        * ``lr_schedule_interval='step'`` (default): updated after every optimizer
          step; the warm-up lasts ``round(warmup_epochs x steps per epoch)``
          steps (steps per epoch = ``ceil(batches / accumulate_grad_batches)``)
          and the cosine runs to the end of the schedule (the run's last step, or
          ``lr_schedule_epochs``). Without warm-up it equals the reference's
          value at the start of every epoch and falls smoothly in between.
        * ``'epoch'``: updated once per epoch, ``0.5 * (1 + cos(pi * e / E))`` for
          epoch e of E (epochs of the run, or ``lr_schedule_epochs``), after a
          warm-up of ``warmup_epochs`` epochs — without warm-up exactly the
          reference's ``adjust_learning_rate`` with ``--cos``,
          which never reaches 0 (its last epoch runs at 0.5 (1 + cos(pi (E-1)/E))).

        LARS is lightly's (reused, not copied from the reference), which differs
        from the reference's LARS (Barlow Twins') in two ways:

        * lightly decides per GROUP: a group with ``weight_decay == 0`` gets
          neither decay nor the layer-wise adaptation, whereas the reference
          excludes 1-D parameters by shape and adapts every other parameter even
          without decay. With the default groups (1-D parameters undecayed) this
          is the reference's behaviour, but ``weight_decay=0`` turns LARS into
          plain SGD with momentum for all parameters (warned at construction).
        * lightly's trust ratio is ``eta ||p|| / (||g|| + wd ||p||)`` (plus an
          1e-8 guard), the reference's ``eta ||p|| / ||g + wd p||``; by the
          triangle inequality lightly's is never larger (equal when ``g`` is
          parallel to ``p``). With wd = 1e-6 the difference is negligible. Where
          ``||p||`` or ``||g||`` is 0, lightly also skips the decay (the
          reference decays with ratio 1).

        Both use ``eta = 0.001`` and ``v = momentum * v + update``.

        Returns:
            The optimizer and its scheduler (``interval`` = the schedule's).

        Raises:
            ValueError: If the schedule's length cannot be known: a run without
                ``max_epochs`` or ``max_steps``, or a loader without a length
                while the schedule is set in epochs.
        """
        optimizer = self.build_optimizer()
        per_epoch, total = self._schedule_lengths()
        interval = self.hparams['lr_schedule_interval']
        warmup_epochs = float(self.hparams['warmup_epochs'])
        horizon = self.hparams['lr_schedule_epochs']
        in_epochs = interval == 'epoch' or horizon is not None or warmup_epochs > 0
        if in_epochs and not math.isfinite(per_epoch):
            raise ValueError(
                'the training loader has no length, so the epoch-based parts of the '
                'learning-rate schedule (warmup_epochs, lr_schedule_epochs, '
                "lr_schedule_interval='epoch') are undefined; use a sized dataset "
                'or set them to 0 / None / step with Trainer(max_steps=...)'
            )
        if horizon is None and not math.isfinite(total):
            raise ValueError(
                'the cosine learning-rate schedule needs a finite run: set '
                'Trainer(max_epochs=...) or Trainer(max_steps=...), or '
                'lr_schedule_epochs'
            )
        if interval == 'epoch':
            length = int(horizon or math.ceil(total / per_epoch))
            warmup = min(length, int(warmup_epochs))
        else:
            length = int(horizon * per_epoch if horizon else max(1, total))
            warmup = (
                min(length, round(warmup_epochs * per_epoch)) if warmup_epochs else 0
            )

        def factor(t: int) -> float:
            return warmup_cosine(t, warmup, length)

        scheduler = LambdaLR(optimizer, factor)
        return {
            'optimizer': optimizer,
            'lr_scheduler': {'scheduler': scheduler, 'interval': interval},
        }
