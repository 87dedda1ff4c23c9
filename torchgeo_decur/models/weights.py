"""Common machinery of the DeCUR Weights enums and their model builders.

Every released DeCUR file is a member of a torchvision-style
:class:`~torchvision.models._api.WeightsEnum` (one enum per architecture, see
:mod:`.resnet`, :mod:`.vit`, :mod:`.mit_weights`). Members download through
``WeightsEnum.get_state_dict`` (torch.hub cache, ``weights_only=True``) and return the
weights of **one encoder** with timm's key names, whatever the file's layout, so
torchgeo's own builders and tasks (``torchgeo.models.get_model``,
``torchgeo.tasks.Classification``) load them unchanged. Joint members (both
encoders) also give the whole file through :meth:`DeCURWeightsEnum.get_raw_state_dict`.
"""

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import timm
import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torchvision.models._api import Weights, WeightsEnum

from ..transforms.normalize import SSL4EO_S12_S1_BANDS, SSL4EO_S12_S2_BANDS
from ..transforms.pretrained import (
    geonrw_dem_transforms,
    geonrw_rgb_transforms,
    ssl4eo_s1_transforms,
    ssl4eo_s2_transforms,
    sunrgbd_transforms,
)
from .checkpoints import (
    CLASSIFIER_PREFIXES,
    RDASemantics,
    check_rda_semantics,
    check_state_dict,
    infer_in_chans,
    is_joint_state_dict,
    load_encoder_state,
    read_checkpoint,
    select_encoder_state_dict,
    split_joint_state_dict,
    unwrap_state_dict,
)

#: Where the authors host the released files (upstream README).
HF_URL = 'https://huggingface.co/wangyi111/DeCUR/resolve/main/'
PUBLICATION = 'https://arxiv.org/abs/2309.05300'
REPO = 'https://github.com/zhu-xlab/DeCUR'


@dataclass(frozen=True)
class ModalityInput:
    """What one encoder of a released file expects as input.

    Attributes:
        name: Modality name (``s1``, ``s2``, ``rgb``, ``dem``, ``hha``).
        bands: Channel names in the order the checkpoint expects (the transform's
            output; for the DEM its input is the one raw channel).
        transforms: Factory of the input scaling the checkpoint was trained with.
        description: One-line summary of the scaling (documentation).
    """

    name: str
    bands: tuple[str, ...]
    transforms: Callable[[], nn.Module]
    description: str


#: The input pipelines of the released files, keyed by a short identifier.
INPUTS: dict[str, ModalityInput] = {
    'ssl4eo_s1_old': ModalityInput(
        's1',
        SSL4EO_S12_S1_BANDS,
        lambda: ssl4eo_s1_transforms('old'),
        'dB; 1-99 % clip pooled over bands, then mean±2σ → [0, 1]; resize 256, crop 224',
    ),
    'ssl4eo_s1': ModalityInput(
        's1',
        SSL4EO_S12_S1_BANDS,
        lambda: ssl4eo_s1_transforms('main'),
        'dB; per-band mean±2σ → [0, 1]; resize 256, crop 224',
    ),
    'ssl4eo_s2_old': ModalityInput(
        's2',
        SSL4EO_S12_S2_BANDS,
        lambda: ssl4eo_s2_transforms('old'),
        'DN; clip(DN / 10000, 0, 1) (most likely, unverified); resize 256, crop 224',
    ),
    'ssl4eo_s2': ModalityInput(
        's2',
        SSL4EO_S12_S2_BANDS,
        lambda: ssl4eo_s2_transforms('main'),
        'DN; per-band mean±2σ → [0, 1]; resize 256, crop 224',
    ),
    'geonrw_rgb': ModalityInput(
        'rgb', ('B', 'G', 'R'), geonrw_rgb_transforms, '0-255 BGR; x / 255'
    ),
    'geonrw_dem': ModalityInput(
        'dem',
        ('DEM', 'DEM', 'DEM'),
        geonrw_dem_transforms,
        'metres, 1 channel; per-image 1-99 % percentile → [0, 1]; repeated ×3',
    ),
    'sunrgbd_rgb': ModalityInput(
        'rgb',
        ('B', 'G', 'R'),
        sunrgbd_transforms,
        '0-255 BGR; x / 255, ImageNet mean/std by channel index',
    ),
    'sunrgbd_hha': ModalityInput(
        'hha',
        ('HHA_B', 'HHA_G', 'HHA_R'),
        sunrgbd_transforms,
        '0-255 HHA image planes in OpenCV order; x / 255, ImageNet mean/std',
    ),
}


class _LinspaceOnCPU(TorchFunctionMode):
    """Inside ``torch.device('meta')``: create ``torch.linspace`` on the CPU.

    smp's MiT reads its drop-path rates from a linspace with ``.item()``, which a
    meta tensor cannot give; everything else stays on the meta device.
    """

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        kwargs = dict(kwargs or {})
        if func is torch.linspace and kwargs.get('device') is None:
            kwargs['device'] = 'cpu'
        return func(*args, **kwargs)


@functools.cache
def _encoder_shapes(
    model: str, in_chans: int, kwargs: tuple[tuple[str, Any], ...]
) -> dict[str, torch.Size]:
    """Key names and shapes of a timm encoder, built on the meta device (no memory).

    Args:
        model: timm name.
        in_chans: Input channels.
        kwargs: Further ``timm.create_model`` arguments, as sorted pairs.

    Returns:
        Key name → shape of its state dict.
    """
    with torch.device('meta'), _LinspaceOnCPU():
        encoder = timm.create_model(model, in_chans=in_chans, **dict(kwargs))
    return {k: v.shape for k, v in encoder.state_dict().items()}


def decur_weights(
    file: str,
    model: str,
    dataset: str,
    inputs: Sequence[str],
    backbone_kwargs: Mapping[str, Any] | None = None,
) -> Weights:
    """Describe one released file as a torchvision ``Weights`` value.

    Args:
        file: File name on the Hugging Face hub (``wangyi111/DeCUR``).
        model: timm name of the encoder architecture.
        dataset: Pretraining dataset.
        inputs: Keys of :data:`INPUTS`, one per encoder in the file (two for joint
            files, modality 1 first).
        backbone_kwargs: Extra ``timm.create_model`` arguments the encoders need to
            hold everything in the file (DeCUR's MiT ``head``).

    Returns:
        The ``Weights``; ``transforms``, ``in_chans`` and ``bands`` describe modality
        1, the ``*_per_modality`` entries of joint files every modality.
    """
    specs = [INPUTS[key] for key in inputs]
    first = specs[0]
    meta: dict[str, Any] = {
        'dataset': dataset,
        'in_chans': len(first.bands),
        'model': model,
        'publication': PUBLICATION,
        'repo': REPO,
        'ssl_method': 'decur',
        'bands': first.bands,
        'modality': first.name
        if len(specs) == 1
        else tuple(spec.name for spec in specs),
        'file': file,
        'input': {spec.name: spec.description for spec in specs},
        'backbone_kwargs': dict(backbone_kwargs or {}),
    }
    if len(specs) > 1:
        meta['in_chans_per_modality'] = {s.name: len(s.bands) for s in specs}
        meta['bands_per_modality'] = {s.name: s.bands for s in specs}
        meta['transforms_per_modality'] = {s.name: s.transforms() for s in specs}
        transforms = meta['transforms_per_modality'][first.name]
    else:
        transforms = first.transforms()
    return Weights(url=HF_URL + file, transforms=transforms, meta=meta)


class DeCURWeightsEnum(WeightsEnum):  # type: ignore[misc]
    """Base of the DeCUR Weights enums (it has no members itself).

    ``meta['modality']`` is a modality name for backbone-only files and a pair of
    names for joint files. ``meta['in_chans']``, ``meta['bands']`` and
    ``transforms`` describe modality 1 (the only one for backbone-only files); use
    :meth:`in_chans_for`, :meth:`bands_for` and :meth:`transforms_for` for others.
    ``bands`` / ``in_chans`` are the encoder's input, i.e. what the transform
    returns; the transform takes the same channels, except for the GeoNRW DEM
    members, whose transform takes the one raw DEM channel (metres) and repeats
    it into ``('DEM', 'DEM', 'DEM')``.
    """

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modality names of the encoders in the file, modality 1 first."""
        modality = self.meta['modality']
        return (modality,) if isinstance(modality, str) else tuple(modality)

    @property
    def is_joint(self) -> bool:
        """Whether the file holds both encoders (and projectors)."""
        return len(self.modalities) > 1

    def position(self, modality: str | int | None = None) -> int:
        """1-based position of a modality in the file.

        Args:
            modality: A modality name of :attr:`modalities`, a 1-based position or
                None (modality 1).

        Returns:
            The position.

        Raises:
            ValueError: If the member has no such modality.
        """
        if modality is None:
            return 1
        if isinstance(modality, int) and 1 <= modality <= len(self.modalities):
            return modality
        if isinstance(modality, str) and modality in self.modalities:
            return self.modalities.index(modality) + 1
        raise ValueError(
            f'{self} holds the modalities {list(self.modalities)}; '
            f'modality={modality!r} is none of them'
        )

    def in_chans_for(self, modality: str | int | None = None) -> int:
        """Input channels of one encoder (see :meth:`position`)."""
        return len(self.bands_for(modality))

    def bands_for(self, modality: str | int | None = None) -> tuple[str, ...]:
        """Band names, in checkpoint order, of one encoder."""
        name = self.modalities[self.position(modality) - 1]
        if not self.is_joint:
            return cast(tuple[str, ...], self.meta['bands'])
        return cast(tuple[str, ...], self.meta['bands_per_modality'][name])

    def transforms_for(self, modality: str | int | None = None) -> nn.Module:
        """Input scaling of one encoder (tensor in, tensor out)."""
        name = self.modalities[self.position(modality) - 1]
        if not self.is_joint:
            return cast(nn.Module, self.transforms)
        return cast(nn.Module, self.meta['transforms_per_modality'][name])

    def expected_shapes(
        self, modality: str | int | None = None
    ) -> dict[str, torch.Size]:
        """Key names and shapes of one encoder of the member's architecture.

        The timm model ``meta['model']`` with the encoder's input channels and
        ``meta['backbone_kwargs']`` (``num_classes=0`` unless they set it), built
        on the meta device.

        Args:
            modality: Which encoder (see :meth:`position`).

        Returns:
            Key name → ``torch.Size``.
        """
        kwargs = {'num_classes': 0} | dict(self.meta['backbone_kwargs'])
        shapes = _encoder_shapes(
            self.meta['model'],
            self.in_chans_for(modality),
            tuple(sorted(kwargs.items())),
        )
        return dict(shapes)

    def get_raw_state_dict(
        self, progress: bool = True, check_hash: bool = False
    ) -> dict[str, Tensor]:
        """Download (or read from the torch.hub cache) the file as released.

        Args:
            progress: Show a download progress bar.
            check_hash: Check the hash in the file name (the released names carry
                none, so this is a no-op for them).

        Returns:
            The file's state dict, unwrapped from a ``{'model': ...}`` wrapper.

        Raises:
            ValueError: If the file holds the wrong number of encoders.
        """
        obj = WeightsEnum.get_state_dict(
            self, progress=progress, check_hash=check_hash, weights_only=True
        )
        state_dict = unwrap_state_dict(obj, source=str(self))
        if is_joint_state_dict(state_dict) != self.is_joint:
            expected = 'both encoders' if self.is_joint else 'a single encoder'
            raise ValueError(
                f'{self}: {self.meta["file"]} should hold {expected} but does not'
            )
        return state_dict

    def get_state_dict(
        self,
        *args: Any,
        modality: str | int | None = None,
        rda_semantics: RDASemantics = 'transfer',
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The weights of one encoder, with timm / smp key names.

        This is what torchgeo's builders and tasks call, so they load any released
        layout (joint or not, ``backbone.`` / ``module.backbone_N.`` prefixes,
        ``da1_*`` / ``da2_*``) without knowing about it. The result is checked
        against the keys and shapes of the member's architecture
        (:meth:`expected_shapes`), classifier heads (``fc.*``, ``head.*``) aside,
        so a malformed file fails here with the offending keys listed rather
        than in a builder (torchgeo's asserts carry no message).

        Args:
            *args: Positional arguments of
                :func:`torch.hub.load_state_dict_from_url` after the URL.
            modality: Which encoder of a joint file (name or 1-based position;
                default modality 1).
            rda_semantics: Which deformable-attention blocks modality 2 of an RDA
                joint file gets: ``'transfer'`` (``da2_*``, as the released MS/DEM
                backbone files and downstream code) or ``'pretraining'``
                (``da1_*``, what the pretraining forward used).
            **kwargs: Keyword arguments of
                :func:`torch.hub.load_state_dict_from_url`; ``weights_only`` is
                always True.

        Returns:
            The encoder's state dict.

        Raises:
            ValueError: If ``weights_only=False`` is requested, ``modality`` is
                not in the file, or the file's encoder has missing, unexpected or
                mis-shaped keys for ``meta['model']``.
        """
        if kwargs.get('weights_only') is False:
            raise ValueError('DeCUR weights are only read with weights_only=True')
        kwargs['weights_only'] = True
        kwargs.setdefault('progress', True)
        position = self.position(modality)
        obj = WeightsEnum.get_state_dict(self, *args, **kwargs)
        state_dict = unwrap_state_dict(obj, source=str(self))
        state = select_encoder_state_dict(
            state_dict,
            str(self),
            modality=position if self.is_joint else None,
            rda_semantics=rda_semantics,
        )
        check_state_dict(
            self.expected_shapes(position),
            state,
            what=(
                f'{self.meta["model"]} with {self.in_chans_for(position)} input '
                f'channels (encoder {position} of {self}, file {self.meta["file"]})'
            ),
            ignore_missing=CLASSIFIER_PREFIXES,
            ignore_unexpected=CLASSIFIER_PREFIXES,
        )
        return state

    def get_joint_state_dicts(
        self, progress: bool = True, rda_semantics: RDASemantics = 'transfer'
    ) -> tuple[dict[str, dict[str, Tensor]], dict[str, dict[str, Tensor]]]:
        """Both encoders and projectors of a joint file, keyed by modality.

        Args:
            progress: Show a download progress bar.
            rda_semantics: See :meth:`get_state_dict`.

        Returns:
            ``(backbones, projectors)`` keyed by :attr:`modalities`.

        Raises:
            ValueError: For a backbone-only member.
        """
        if not self.is_joint:
            raise ValueError(f'{self} is a backbone-only file; use get_state_dict')
        m1, m2 = self.modalities
        return split_joint_state_dict(
            self.get_raw_state_dict(progress), (m1, m2), str(self), rda_semantics
        )


def modality_mapping_note(
    source: str, file_modalities: Sequence[str], targets: Mapping[int, str]
) -> str | None:
    """Describe encoders of a file going to task modalities of other names.

    Tasks map encoders by position, so a file's modality i may land in a task
    modality of another name (on purpose, or by mistake: e.g. a GeoNRW RGB + DEM
    member in an ``('s1', 's2')`` task). Callers warn with this text.

    Args:
        source: The weights' name, for the message.
        file_modalities: The modality names of the file's encoders, modality 1
            first (a member's ``meta['modality']``).
        targets: 1-based position in the file → task modality that gets it.

    Returns:
        None when every target has the name of its encoder, else a sentence naming
        both lists and which encoder goes to which task modality.
    """
    if all(file_modalities[i - 1] == m for i, m in targets.items()):
        return None
    pairs = ', '.join(
        f'encoder {i} ({file_modalities[i - 1]}) -> task modality {m!r}'
        for i, m in sorted(targets.items())
    )
    return (
        f'{source} holds the modalities {list(file_modalities)} but is loaded into '
        f'the task modalities {[targets[i] for i in sorted(targets)]}: {pairs}.'
    )


def as_decur_member(spec: object) -> DeCURWeightsEnum | None:
    """The DeCUR member a weights spec names, if it names one.

    Args:
        spec: A member, a member's string name, a path or anything else.

    Returns:
        The member, or None when ``spec`` is not (the name of) a DeCUR member.
    """
    if isinstance(spec, DeCURWeightsEnum):
        return spec
    if isinstance(spec, str) and not os.path.exists(spec):
        from torchgeo.models import get_weight

        try:
            member = get_weight(spec)
        except ValueError:
            return None
        return member if isinstance(member, DeCURWeightsEnum) else None
    return None


def build_encoder(
    model: str,
    weights: WeightsEnum | str | os.PathLike[str] | None = None,
    *,
    modality: str | int | None = None,
    rda_semantics: RDASemantics = 'transfer',
    **kwargs: Any,
) -> nn.Module:
    """Build a timm encoder and load DeCUR weights into it.

    Args:
        model: timm model name.
        weights: A Weights member (DeCUR or torchgeo), its string name, a path to a
            file in any released layout (joint or backbone-only) or a Lightning
            checkpoint of a two-encoder task, or None for random weights.
        modality: Which encoder of a joint file (name or 1-based position).
        rda_semantics: See :meth:`DeCURWeightsEnum.get_state_dict`.
        **kwargs: Arguments of ``timm.create_model`` (e.g. ``num_classes=0`` for
            pooled features). ``in_chans`` follows the weights.

    Returns:
        The encoder; with ``num_classes=0`` its forward gives (N, D) features.

    Raises:
        ValueError: If the weights are for another architecture or channel count,
            or do not fit the model, or ``rda_semantics`` is invalid or cannot be
            served by the file.
    """
    check_rda_semantics(rda_semantics)
    if weights is None:
        return timm.create_model(model, **kwargs)
    if isinstance(weights, str | os.PathLike) and os.path.exists(weights):
        source = os.fspath(weights)
        state = select_encoder_state_dict(
            read_checkpoint(weights), source, modality, rda_semantics
        )
        in_chans = infer_in_chans(state, source)
    else:
        if isinstance(weights, str):
            from torchgeo.models import get_weight

            weights = get_weight(weights)
        if not isinstance(weights, WeightsEnum):
            raise ValueError(f'weights={weights!r} is not a file or Weights member')
        source = str(weights)
        if weights.meta.get('model') != model:
            raise ValueError(
                f'{source} holds {weights.meta.get("model")!r} weights, not {model!r}'
            )
        if isinstance(weights, DeCURWeightsEnum):
            in_chans = weights.in_chans_for(modality)
            state = weights.get_state_dict(
                modality=modality, rda_semantics=rda_semantics
            )
        else:
            in_chans = int(weights.meta['in_chans'])
            state = weights.get_state_dict(progress=True, weights_only=True)
    given = kwargs.pop('in_chans', in_chans)
    if given != in_chans:
        raise ValueError(
            f'in_chans={given} does not match the {in_chans} input channels of {source}'
        )
    encoder: nn.Module = timm.create_model(model, in_chans=in_chans, **kwargs)
    load_encoder_state(encoder, state, what=f'{model} from {source}')
    return encoder


def make_builder(
    model: str, enum: type[DeCURWeightsEnum], title: str
) -> Callable[..., nn.Module]:
    """A torchgeo-style builder ``decur_<model>(weights, **kwargs)``.

    Args:
        model: timm name of the architecture.
        enum: Its Weights enum (for the documentation).
        title: Human-readable architecture name.

    Returns:
        The builder; it calls :func:`build_encoder`.
    """

    def builder(
        weights: DeCURWeightsEnum | str | os.PathLike[str] | None = None,
        *,
        modality: str | int | None = None,
        rda_semantics: RDASemantics = 'transfer',
        **kwargs: Any,
    ) -> nn.Module:
        return build_encoder(
            model, weights, modality=modality, rda_semantics=rda_semantics, **kwargs
        )

    builder.__name__ = builder.__qualname__ = f'decur_{model}'
    builder.__doc__ = f"""{title} (timm ``{model}``) with DeCUR weights.

    Args:
        weights: A :class:`{enum.__name__}` member, its name, or a path to a file
            in a released layout (joint or backbone-only).
        modality: Which encoder of a joint file (name or 1-based position).
        rda_semantics: Attention blocks of modality 2 of RDA joint files
            (``'transfer'``: ``da2_*``; ``'pretraining'``: ``da1_*``).
        **kwargs: Arguments of ``timm.create_model`` (``num_classes=0`` for pooled
            features).

    Returns:
        The encoder.
    """
    return builder


__all__ = (
    'HF_URL',
    'INPUTS',
    'DeCURWeightsEnum',
    'ModalityInput',
    'as_decur_member',
    'build_encoder',
    'decur_weights',
    'make_builder',
    'modality_mapping_note',
)
