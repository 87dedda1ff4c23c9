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
        momentum: float = 0.9,
        warmup_epochs: float = 0.0,
        augmentations: dict[str, str | dict[str, Any]] | None = None,
        crop_size: int = 224,
        aligned_crops: bool = False,
        gather_distributed: bool = True,
        rda_semantics: RDASemantics = 'transfer',
        channels_last: bool = False,
    ) -> None:
        """Initialize a new MultimodalSSLTask instance.

        Args:
            modalities: The two modality names, modality 1 first; batches must hold
                ``image_<name>`` for each.
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
            backbone_kwargs: Extra arguments for ``timm.create_model``.
            projector_dims: Output sizes of the projector's Linear layers; the last
                is the embedding size K.
            shared_projector: Use one projector for both modalities, like the
                reference code (FACTS B §6.1). Default: one per modality (paper).
            shared_rda: For RDA encoders (``model='resnet50_rda'``): run modality 2
                through modality 1's deformable-attention blocks (the same module
                objects), as the reference pretraining forward did (FACTS A §2.5).
                Modality 2's own blocks, and any weights loaded into them, are
                dropped. Default: one pair of blocks per modality (paper).
            optimizer: ``'adamw'`` or ``'lars'`` (lightly's LARS).
            lr: Learning rate of weights (parameters with 2+ dims).
            lr_biases: Learning rate of biases and norm parameters (1-D), which get
                no weight decay (and no LARS adaptation); defaults to ``lr``.
            weight_decay: Weight decay of the weights.
            momentum: LARS momentum.
            warmup_epochs: Linear warm-up length before the cosine decay (per step).
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
                ``'pretraining'`` (``da1_*``), FACTS A §2.5. A backbone-only file
                with ``da2_*`` blocks (the released MS / DEM files) cannot give
                ``'pretraining'`` (a ValueError says to load the joint file),
                unless ``shared_rda`` replaces those blocks anyway.
            channels_last: Keep the encoders' weights and their input images in
                the channels-last (NHWC) memory format, which tensor-core GPUs
                run faster (convolutions especially under bf16). Values unchanged.

        Raises:
            ValueError: For an unknown modality default or invalid option.
        """
        self.weights = weights
        modalities = tuple(modalities)
        if len(modalities) != 2 or len(set(modalities)) != 2:
            raise ValueError(f'need exactly two distinct modalities, got {modalities}')
        check_rda_semantics(rda_semantics)
        super().__init__()

    # ------------------------------------------------------------------ setup
    @property
    def modalities(self) -> tuple[str, str]:
        """The modality names, modality 1 first."""
        m1, m2 = self.hparams['modalities']
        return m1, m2

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
            # After loading, so modality 1's weights are the ones both use.
            share_deformable_attention(*self.backbones.values())

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
        """Draw the augmented views of both modalities.

        Args:
            views: Raw views per modality from :meth:`split_views`.

        Returns:
            Augmented views per modality, each (N, C_m, crop, crop).
        """
        m1, m2 = self.modalities
        out: dict[str, list[Tensor]] = {m1: [], m2: []}
        for v in range(self.num_views):
            x1, x2 = views[m1][v].float(), views[m2][v].float()
            if self.hparams['aligned_crops']:
                if x1.shape[-2:] != x2.shape[-2:]:
                    raise ValueError(
                        'aligned_crops needs both modalities on the same grid, got '
                        f'{tuple(x1.shape[-2:])} and {tuple(x2.shape[-2:])}'
                    )
                both = self.shared_geometric(torch.cat([x1, x2], dim=1))
                x1, x2 = torch.split(both, [x1.shape[1], x2.shape[1]], dim=1)
            else:
                x1 = self.augmentation(m1).geometric(x1)
                x2 = self.augmentation(m2).geometric(x2)
            out[m1].append(self.augmentation(m1).photometric(x1))
            out[m2].append(self.augmentation(m2).photometric(x2))
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
        """
        views = self.augment(self.split_views(batch))
        embeddings: dict[str, list[Tensor]] = {}
        for m in self.modalities:
            embeddings[m] = [self.embed(m, x)[1] for x in views[m]]
        outputs = self.compute_loss(embeddings)
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

    # ------------------------------------------------------------- optimiser
    def configure_optimizers(
        self,
    ) -> 'lightning.pytorch.utilities.types.OptimizerLRScheduler':
        """AdamW or LARS with two groups, and a per-step warm-up + cosine schedule.

        Weights (parameters with two or more dimensions) use ``lr`` and
        ``weight_decay``; biases and norm parameters use ``lr_biases`` and no weight
        decay (for LARS this also excludes them from the layer-wise adaptation, as
        in Barlow Twins / the reference). The learning rate rises linearly over
        ``warmup_epochs`` and then follows a cosine to zero at the last step.

        Returns:
            Optimizer and step-wise scheduler.
        """
        lr = float(self.hparams['lr'])
        lr_biases = self.hparams['lr_biases']
        lr_biases = lr if lr_biases is None else float(lr_biases)
        weights: list[nn.Parameter] = []
        biases: list[nn.Parameter] = []
        seen: set[int] = set()
        for p in self.parameters():
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (biases if p.ndim <= 1 else weights).append(p)
        groups = [
            {'params': weights, 'lr': lr, 'weight_decay': self.hparams['weight_decay']},
            {'params': biases, 'lr': lr_biases, 'weight_decay': 0.0},
        ]
        optimizer: torch.optim.Optimizer
        if self.hparams['optimizer'] == 'lars':
            optimizer = LARS(groups, lr=lr, momentum=self.hparams['momentum'])
        elif self.hparams['optimizer'] == 'adamw':
            optimizer = AdamW(groups, lr=lr)
        else:
            raise ValueError(
                f"optimizer must be 'adamw' or 'lars', got {self.hparams['optimizer']!r}"
            )

        total = max(1, int(self.trainer.estimated_stepping_batches))
        max_epochs = self.trainer.max_epochs
        per_epoch = total / max_epochs if max_epochs and max_epochs > 0 else total
        warmup = min(total, round(float(self.hparams['warmup_epochs']) * per_epoch))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

        scheduler = LambdaLR(optimizer, factor)
        return {
            'optimizer': optimizer,
            'lr_scheduler': {'scheduler': scheduler, 'interval': 'step'},
        }
