"""Turn a weights spec into per-modality encoder and projector state dicts.

Every part of the package that accepts pretrained weights (the SSL and downstream
tasks, the CMX exporter, the ``decur_*`` builders) calls this module, and nothing
else decides whether a spec is a Weights member, a member's name or a file. A
spec is one of:

* ``None`` or ``False``: random initialisation;
* ``True``: timm's ImageNet weights (the builder downloads them);
* a Weights enum member (DeCUR's or torchgeo's), or its string name;
* a path to a checkpoint file: a released DeCUR file (joint or backbone-only), a
  backbone state dict, or a Lightning checkpoint of a two-encoder task;
* for tasks, a mapping ``{modality: spec}`` with one backbone spec per encoder.

The checks that apply to every caller live here once: unknown modalities, a
member built for another architecture or channel count, and a warning when a
member's encoders go to task modalities of other names.
"""

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, cast

from torch import Tensor
from torchvision.models._api import WeightsEnum

from ..checkpoints.architecture import task_architecture
from ..checkpoints.files import load_checkpoint_file, read_checkpoint, unwrap_state_dict
from ..checkpoints.layouts import (
    RDASemantics,
    check_rda_semantics,
    remap_backbone_state_dict,
    select_encoder_state_dict,
    split_joint_state_dict,
)
from ..models.shapes import infer_in_chans
from .base import DeCURWeightsEnum

#: Initial weights of one encoder: None/False (random), True (timm ImageNet), a
#: Weights enum member, its string name, or a path to a checkpoint file.
# A plain alias (not `type X = ...`) so jsonargparse reads it in signatures.
WeightSpec: TypeAlias = WeightsEnum | str | bool | None  # noqa: UP040

#: Extra words for the modality-name warning: a string, or a function of the
#: member and its ``{position: task modality}`` mapping that returns one.
MappingHint: TypeAlias = str | Callable[[WeightsEnum, Mapping[int, str]], str]  # noqa: UP040


def lookup_member(spec: object) -> WeightsEnum | None:
    """The Weights member a spec names, if it names one.

    Args:
        spec: A member, a registered member name (``'Enum.MEMBER'``), a path or
            anything else.

    Returns:
        The member; None for an existing path, an unknown name or other values.
    """
    if isinstance(spec, WeightsEnum):
        return spec
    if isinstance(spec, str) and not os.path.exists(spec):
        # Imported here: torchgeo.models is heavy and registering our enums with
        # it happens on `import torchgeo_decur`, after this module is loaded.
        from torchgeo.models import get_weight

        try:
            member: WeightsEnum = get_weight(spec)
        except ValueError:
            return None
        return member
    return None


def as_decur_member(spec: object) -> DeCURWeightsEnum | None:
    """The DeCUR member a weights spec names, if it names one.

    Args:
        spec: A member, a member's string name, a path or anything else.

    Returns:
        The member, or None when ``spec`` is not (the name of) a DeCUR member.
    """
    member = lookup_member(spec)
    return member if isinstance(member, DeCURWeightsEnum) else None


def member_modalities(member: WeightsEnum | None) -> tuple[str, ...] | None:
    """The modality names of a member's encoders (``meta['modality']``), if known.

    Args:
        member: A Weights member (any enum) or None.

    Returns:
        One name for backbone-only files, two for joint files (modality 1
        first), or None when the member does not say.
    """
    modality = member.meta.get('modality') if member is not None else None
    if modality is None:
        return None
    return (modality,) if isinstance(modality, str) else tuple(modality)


def read_state_dict(
    spec: WeightsEnum | str | os.PathLike[str],
) -> tuple[dict[str, Tensor], str, WeightsEnum | None]:
    """Read the whole state dict that a (non-boolean) spec points to.

    Args:
        spec: A Weights member, its string name, or a file path.

    Returns:
        ``(state_dict, source, member)``: the state dict unwrapped from
        ``model`` / ``state_dict`` wrappers (for DeCUR members, the file as
        released), the spec's name for messages, and the member (None for files).

    Raises:
        ValueError: If ``spec`` is neither an existing file nor a known member.
    """
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    member = lookup_member(spec)
    if isinstance(member, DeCURWeightsEnum):
        with download_hint(member):
            return member.get_raw_state_dict(), str(member), member
    if member is not None:
        # Released file names carry no hash suffix, so there is no hash to check.
        with download_hint(member):
            obj = member.get_state_dict(
                progress=True, check_hash=False, weights_only=True
            )
        return unwrap_state_dict(obj, source=str(member)), str(member), member
    if isinstance(spec, str) and is_timm_folder(spec):
        return read_timm_folder(spec), spec, None
    if isinstance(spec, str) and os.path.exists(spec):
        return read_checkpoint(spec), spec, None
    raise ValueError(
        f'weights={spec!r} is neither an existing file nor a registered Weights '
        'enum member name'
    )


@contextlib.contextmanager
def download_hint(member: WeightsEnum) -> Iterator[None]:
    """Turn a failed download of a released file into one line saying what to do.

    With no network (HPC compute nodes, air-gapped clusters) ``torch.hub`` fails
    with a bare ``URLError``; inside this context it becomes an ``OSError`` that
    names the file, the folder of the hub cache to put it in
    (``$TORCH_HOME/hub/checkpoints``) and the alternative of a local path.

    Args:
        member: The Weights member being loaded.

    Yields:
        Nothing.

    Raises:
        OSError: Naming the file and where to place it, on a network failure.
    """
    import urllib.error

    import torch.hub

    try:
        yield
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        url = str(member.url)
        name = os.path.basename(url.split('?')[0])
        folder = os.path.join(torch.hub.get_dir(), 'checkpoints')
        reason = getattr(error, 'reason', error)
        raise OSError(
            f'{member}: cannot download {url} ({reason}); with no network, fetch it '
            f'where there is one and put it at {os.path.join(folder, name)} (the '
            f'torch.hub cache under TORCH_HOME), or pass the local file path as '
            'weights'
        ) from None


#: What a task builds when neither ``model`` nor its weights name an architecture.
DEFAULT_MODEL = 'resnet50'


def is_timm_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an encoder folder in timm's Hugging Face layout.

    Args:
        path: A path.

    Returns:
        True for a folder holding ``config.json`` (what ``torchgeo-decur export``
        writes next to the released-layout files).
    """
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, 'config.json'))


def _timm_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``config.json`` of a timm folder, checked to name an architecture."""
    import json

    config_path = os.path.join(path, 'config.json')
    try:
        with open(config_path) as f:
            config = json.load(f)
    except ValueError as error:
        raise ValueError(f'cannot read {config_path!r} as JSON: {error}') from None
    if not isinstance(config, dict) or not isinstance(config.get('architecture'), str):
        raise ValueError(f'{config_path!r} names no timm architecture')
    return config


def read_timm_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``config.json`` of a timm folder (``architecture``, ``model_args``, ...).

    Args:
        path: The folder.

    Returns:
        The config; an export also records ``modality`` and ``input_scaling``.

    Raises:
        ValueError: If it is not JSON or names no architecture.
    """
    return _timm_config(path)


def read_timm_folder(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """The encoder weights of a timm folder (``model.safetensors``).

    Args:
        path: The folder.

    Returns:
        The state dict (timm key names).

    Raises:
        FileNotFoundError: If the folder has no ``model.safetensors``.
        ValueError: If the file cannot be read.
    """
    from safetensors.torch import load_file

    _timm_config(path)
    weights = os.path.join(path, 'model.safetensors')
    if not os.path.isfile(weights):
        raise FileNotFoundError(f'{os.fspath(path)!r} has no model.safetensors')
    try:
        return load_file(weights)
    except Exception as error:  # any damage is the file's fault
        raise ValueError(
            f'cannot read {weights!r} as safetensors: {type(error).__name__}: {error}'
        ) from None


def weights_architecture(
    spec: str | os.PathLike[str],
) -> tuple[str | None, dict[str, Any]]:
    """The architecture that a weights file or folder was made for.

    The one place where a task, a builder or a config learns the architecture
    from its weights: the ``architecture`` (and ``model_args``) of a timm
    folder's ``config.json``, a Lightning task checkpoint's recorded ``model``
    (and ``backbone_kwargs``; see
    :func:`~torchgeo_decur.checkpoints.architecture.task_architecture`), or, for the released layouts, the timm name that the
    first encoder's weights fit (ResNet stage depths and stem, ViT width and
    patch, MiT depths).

    Args:
        spec: Path of a file or timm folder.

    Returns:
        ``(timm name or None when the weights fit no known name,
        backbone_kwargs the architecture needs)``.

    Raises:
        ValueError: If the file cannot be read.
    """
    from .inspect import infer_architecture, timm_name

    path = os.fspath(spec)
    if is_timm_folder(path):
        config = _timm_config(path)
        args = dict(config.get('model_args') or {})
        for key in ('in_chans', 'num_classes', 'global_pool'):
            args.pop(key, None)
        return str(config['architecture']), args
    obj = load_checkpoint_file(path, map_location='meta')
    recorded = task_architecture(obj) if isinstance(obj, Mapping) else {}
    if isinstance(recorded.get('model'), str):
        kwargs = dict(recorded.get('backbone_kwargs') or {})
        for key in ('rda_semantics', 'shared_rda', 'fresh_stem'):
            kwargs.pop(key, None)
        return str(recorded['model']), kwargs
    state = select_encoder_state_dict(unwrap_state_dict(obj, path), path)
    return timm_name(infer_architecture(state)), {}


def _file_architecture(
    specs: Sequence[Any], model: str | None
) -> tuple[str | None, dict[str, Any]]:
    """The one architecture the weight files ``specs`` name; checked against ``model``.

    Raises:
        ValueError: If files name different architectures, or ``model`` is
            another one (naming both).
    """
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for one in specs:
        if isinstance(one, str | os.PathLike) and os.path.exists(one):
            arch, kwargs = weights_architecture(one)
            if arch is not None:
                found[os.fspath(one)] = (arch, kwargs)
    names = {arch for arch, _ in found.values()}
    if len(names) > 1:
        raise ValueError(
            f'the weights are for different architectures: '
            f'{ {p: a for p, (a, _) in found.items()} }'
        )
    if not names:
        return None, {}
    (path, (arch, kwargs)), *_ = found.items()
    if model is not None and model != arch:
        raise ValueError(
            f'model={model!r} conflicts with weights {path!r}, which hold a '
            f'{arch!r} encoder; leave model out (it follows the weights) or set '
            f'model: {arch}'
        )
    return arch, kwargs


@dataclass(frozen=True)
class EncoderWeights:
    """Resolved weights of one encoder.

    Attributes:
        state_dict: Encoder weights with this package's (timm / smp) key names.
        projector: Projector weights from a joint file (empty when it has none).
        source: Name of the spec, for messages.
        member: The Weights member the weights come from (None for files).
        position: 1-based position of the encoder in its file.
    """

    state_dict: dict[str, Tensor]
    projector: dict[str, Tensor]
    source: str
    member: WeightsEnum | None = None
    position: int = 1


@dataclass(frozen=True)
class ResolvedWeights:
    """What a weights spec gives a task: state dicts plus the metadata to build.

    Attributes:
        encoders: Checkpoint weights per modality (modalities without are absent).
        imagenet: Modalities whose encoder starts from timm's ImageNet weights.
        model: Architecture the Weights members were made for (None: no member).
        in_chans: Input channels per modality, from the members.
        backbone_kwargs: ``timm.create_model`` arguments the members need to hold
            everything in their files (DeCUR's MiT ``head``).
    """

    encoders: dict[str, EncoderWeights] = field(default_factory=dict)
    imagenet: frozenset[str] = frozenset()
    model: str | None = None
    in_chans: dict[str, int] = field(default_factory=dict)
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)


def modality_mapping_note(
    source: str, file_modalities: Sequence[str], targets: Mapping[int, str]
) -> str | None:
    """Describe encoders of a file going to task modalities of other names.

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


def check_model(member: WeightsEnum | None, source: str, model: str | None) -> None:
    """Reject a Weights member made for another architecture.

    Args:
        member: The member (None for files: nothing to compare).
        source: Its name, for the message.
        model: The architecture that is built (None: whatever the weights say).

    Raises:
        ValueError: If the member's ``meta['model']`` is another architecture.
    """
    expected = member.meta.get('model') if member is not None else None
    if expected and model is not None and expected != model:
        raise ValueError(
            f'{source} holds {expected!r} weights, not {model!r}; set model: {expected}'
        )


def resolve_weights(
    spec: WeightSpec | Mapping[str, WeightSpec],
    modalities: Sequence[str],
    *,
    model: str | None,
    in_channels: Mapping[str, int] | None = None,
    joint_modalities: Sequence[str] | None = None,
    rda_semantics: RDASemantics = 'transfer',
    follow_member_model: bool = False,
    hint: MappingHint = '',
) -> ResolvedWeights:
    """Resolve a task's weights spec into state dicts and build metadata.

    A spec for the whole task is a joint checkpoint whose encoders go to the task
    modalities by name: ``joint_modalities`` (or the member's
    ``meta['modality']``, or the task's ``modalities``) names the file's
    encoders, modality 1 first. A task with one modality also takes a
    backbone-only spec. ``{modality: spec}`` gives one backbone spec per encoder.
    What the members' ``meta`` says is checked before any file is read.

    Args:
        spec: The weights spec (see the module docstring).
        modalities: The task's modality names, modality 1 first.
        model: Architecture the task builds.
        in_channels: Channels the user set explicitly, per modality.
        joint_modalities: Names of a joint file's encoders, modality 1 first.
        rda_semantics: Which deformable-attention blocks modality 2 of an RDA
            joint file gets (see :data:`~.checkpoints.RDASemantics`).
        follow_member_model: Take the architecture of DeCUR members when
            ``model`` is None (a ``model`` naming another one is an error either
            way).
        hint: Extra words for the warning about modality names.

    Returns:
        The resolved weights.

    Raises:
        ValueError: For unknown modalities, a joint spec where a backbone spec
            belongs (or the reverse), members of other architectures or channel
            counts, or files in no known layout.
    """
    check_rda_semantics(rda_semantics)
    mods = tuple(modalities)
    # 1. Plan from the spec alone: which spec feeds which modality, and how.
    backbone_specs: dict[str, WeightSpec] = {}
    joint_spec: WeightSpec = None
    joint_names: tuple[str, ...] = ()
    planned: dict[str, tuple[WeightsEnum | None, int]] = {}
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - set(mods))
        if unknown:
            raise ValueError(
                f'weights names unknown modalities {unknown}; modalities are '
                f'{list(mods)}'
            )
        imagenet = frozenset(m for m in mods if spec.get(m) is True)
        for m in mods:
            one = spec.get(m)
            if one is None or isinstance(one, bool):
                continue
            member = lookup_member(one)
            if len(member_modalities(member) or ()) > 1:
                raise ValueError(
                    f'{member} holds both encoders; pass it as weights={member!s} '
                    f'instead of for modality {m!r} only'
                )
            backbone_specs[m] = one
            planned[m] = (member, 1)
    elif spec is None or isinstance(spec, bool):
        imagenet = frozenset(mods) if spec is True else frozenset()
    else:
        imagenet = frozenset()
        member = lookup_member(spec)
        names = member_modalities(member)
        if (names is not None and len(names) == 1) or (
            member is None and joint_modalities is None and len(mods) == 1
        ):
            if len(mods) != 1:
                source = str(member) if member is not None else str(spec)
                held = f' ({names[0]})' if names is not None else ''
                raise ValueError(
                    f'{source} holds one encoder{held}; pass weights={{<modality>: '
                    f'{source}}} to load it into one encoder (weights for the whole '
                    f'task must hold one encoder for each of {list(mods)})'
                )
            backbone_specs[mods[0]] = spec
            planned[mods[0]] = (member, 1)
        else:
            joint_spec = spec
            joint_names = tuple(
                joint_modalities
                if joint_modalities is not None
                else names
                if names is not None
                else mods
            )
            if member is not None and len(joint_names) != 2:
                raise ValueError(
                    f'{member} holds two encoders, but the task has '
                    f'{len(joint_names)} modalities {list(joint_names)}; load backbone '
                    'files per modality (weights={modality: ...}) instead'
                )
            if len(joint_names) < 2 or not set(mods) <= set(joint_names):
                raise ValueError(
                    f'joint checkpoint {member or spec} has modalities '
                    f'{list(joint_names)} (modality 1 first), which do not include '
                    f'{list(mods)}; set joint_modalities'
                )
            for position, m in enumerate(joint_names, start=1):
                if m in mods:
                    planned[m] = (member, position)
    # 2. Check what the members say against the task.
    found_model, in_chans, kwargs = _check_members(
        planned, model, in_channels, follow_member_model, hint
    )
    # 3. Read the files.
    encoders: dict[str, EncoderWeights] = {}
    for m, one in backbone_specs.items():
        state, source, found = read_state_dict(cast(Any, one))
        encoders[m] = EncoderWeights(
            remap_backbone_state_dict(state, source, rda_semantics), {}, source, found
        )
    if joint_spec is not None:
        state, source, found = read_state_dict(cast(Any, joint_spec))
        backbones, projectors = split_joint_state_dict(
            state, joint_names, source, rda_semantics
        )
        for m, (_, position) in planned.items():
            encoders[m] = EncoderWeights(
                backbones[m], projectors[m], source, found, position
            )
    # 4. Files carry their architecture.
    files = [
        s for s in (*backbone_specs.values(), joint_spec) if lookup_member(s) is None
    ]
    file_model, file_kwargs = _file_architecture(files, found_model or model)
    if file_model is not None:
        found_model = file_model
        kwargs = {**file_kwargs, **kwargs}
        given = dict(in_channels or {})
        for m, enc in encoders.items():
            if enc.member is None:
                channels = infer_in_chans(enc.state_dict, enc.source, file_model)
                if m in given and int(given[m]) != channels:
                    raise ValueError(
                        f'in_channels[{m!r}]={given[m]} but the weights '
                        f'{enc.source} take {channels} channels'
                    )
                in_chans.setdefault(m, channels)
    return ResolvedWeights(encoders, imagenet, found_model, in_chans, kwargs)


def _check_members(
    planned: Mapping[str, tuple[WeightsEnum | None, int]],
    model: str | None,
    in_channels: Mapping[str, int] | None,
    follow_member_model: bool,
    hint: MappingHint,
) -> tuple[str | None, dict[str, int], dict[str, Any]]:
    """Check the planned members against the task; collect what they say.

    Args:
        planned: Task modality → (member or None for files, 1-based position).
        model: Architecture the task builds.
        in_channels: Channels the user set explicitly.
        follow_member_model: See :func:`resolve_weights`.
        hint: See :func:`resolve_weights`.

    Returns:
        ``(model of the DeCUR members or None, their in_chans per modality,
        their backbone_kwargs)``.

    Raises:
        ValueError: For members of other (or different) architectures or channel
            counts.
    """
    decur = {
        m: (member, position)
        for m, (member, position) in planned.items()
        if isinstance(member, DeCURWeightsEnum)
    }
    targets: dict[WeightsEnum, dict[int, str]] = {}
    for m, (one, position) in planned.items():
        if one is not None and member_modalities(one) is not None:
            targets.setdefault(one, {})[position] = m
    for one, mapping in targets.items():
        names = member_modalities(one) or ()
        note = modality_mapping_note(str(one), names, mapping)
        if note is not None:
            extra = hint(one, mapping) if callable(hint) else hint
            warnings.warn(f'{note} {extra}'.rstrip(), UserWarning, stacklevel=4)
    for any_member, _ in planned.values():
        if not (follow_member_model and isinstance(any_member, DeCURWeightsEnum)):
            check_model(any_member, str(any_member), model)
    if not decur:
        return None, {}, {}
    models = {member.meta['model'] for member, _ in decur.values()}
    if len(models) > 1:
        raise ValueError(f'weights are for different architectures {sorted(models)}')
    (member_model,) = models
    if model is not None and member_model != model:
        raise ValueError(
            f'model={model!r} conflicts with the weights, which are for '
            f'{member_model!r}; leave model out (the weights say it) or pick '
            'weights of that architecture'
        )
    given = dict(in_channels or {})
    in_chans: dict[str, int] = {}
    kwargs: dict[str, Any] = {}
    for m, (member, position) in decur.items():
        channels = member.in_chans_for(position)
        if m in given and int(given[m]) != channels:
            raise ValueError(
                f'in_channels[{m!r}]={given[m]} but {member} expects {channels} '
                f'channels ({", ".join(member.bands_for(position))})'
            )
        in_chans[m] = channels
        for key, value in member.meta['backbone_kwargs'].items():
            kwargs.setdefault(key, value)
    return member_model, in_chans, kwargs


def resolve_encoder(
    spec: WeightsEnum | str | os.PathLike[str],
    *,
    model: str,
    modality: str | int | None = None,
    rda_semantics: RDASemantics = 'transfer',
) -> tuple[EncoderWeights, int]:
    """Resolve the weights of ONE encoder (what the ``decur_*`` builders load).

    Args:
        spec: A Weights member (DeCUR or torchgeo), its string name, or a path to
            a file in any released layout or a Lightning checkpoint of a
            two-encoder task.
        model: Architecture that is built.
        modality: Which encoder of a joint file (name or 1-based position).
        rda_semantics: See :data:`~.checkpoints.RDASemantics`.

    Returns:
        ``(weights, in_chans)``: the encoder's weights and its input channels.

    Raises:
        ValueError: If the spec is neither a file nor a member, or a member was
            made for another architecture.
    """
    check_rda_semantics(rda_semantics)
    if isinstance(spec, str | os.PathLike) and os.path.exists(spec):
        source = os.fspath(spec)
        _file_architecture([source], model)
        raw = read_timm_folder(source) if is_timm_folder(source) else None
        state = select_encoder_state_dict(
            raw if raw is not None else read_checkpoint(source),
            source,
            modality,
            rda_semantics,
        )
        return EncoderWeights(state, {}, source), infer_in_chans(state, source, model)
    member = lookup_member(spec)
    if member is None:
        raise ValueError(f'weights={spec!r} is not a file or Weights member')
    source = str(member)
    check_model(member, source, model)
    if isinstance(member, DeCURWeightsEnum):
        position = member.position(modality)
        with download_hint(member):
            state = member.get_state_dict(
                modality=position, rda_semantics=rda_semantics
            )
        weights = EncoderWeights(state, {}, source, member, position)
        return weights, member.in_chans_for(position)
    with download_hint(member):
        state = member.get_state_dict(progress=True, weights_only=True)
    return EncoderWeights(state, {}, source, member), int(member.meta['in_chans'])


__all__ = (
    'DEFAULT_MODEL',
    'EncoderWeights',
    'ResolvedWeights',
    'WeightSpec',
    'as_decur_member',
    'check_model',
    'download_hint',
    'is_timm_folder',
    'lookup_member',
    'member_modalities',
    'modality_mapping_note',
    'read_state_dict',
    'read_timm_config',
    'read_timm_folder',
    'resolve_encoder',
    'resolve_weights',
    'weights_architecture',
)
