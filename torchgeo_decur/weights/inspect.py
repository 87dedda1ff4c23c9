"""What a checkpoint file holds: layout, encoders, inputs, loss settings, progress.

Reads any file this package loads (the released DeCUR files in each of their
layouts, backbone-only files, exports, Lightning checkpoints of this package's
tasks) with ``weights_only=True`` and describes it without building a model.
"""

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from torch import Tensor

from ..checkpoints.architecture import (
    SCALING_FORMULA,
    data_statistics,
    task_architecture,
)
from ..checkpoints.files import load_checkpoint_file, unwrap_state_dict
from ..checkpoints.layouts import (
    _reference_prefix,
    embedding_size,
    remap_backbone_state_dict,
    strip_prefix,
)
from ..models.shapes import build_for_shapes, infer_in_chans
from .base import DeCURWeightsEnum
from .enums import WEIGHTS
from .inputs import INPUTS

#: Block counts of the four ResNet stages → timm name (bottleneck, basic).
_RESNETS: dict[tuple[int, ...], tuple[str | None, str | None]] = {
    (3, 4, 6, 3): ('resnet50', 'resnet34'),
    (3, 4, 23, 3): ('resnet101', None),
    (3, 8, 36, 3): ('resnet152', None),
    (2, 2, 2, 2): ('resnet26', 'resnet18'),
    (1, 1, 1, 1): ('resnet14t', 'resnet10t'),
}

#: Suffixes of timm's ResNet variants with a deep (three-convolution) stem.
_DEEP_STEM_SUFFIXES = ('t', 'd', 's', 'c')

#: Block counts of the four MiT stages → variant.
_MITS: dict[tuple[int, ...], str] = {
    (2, 2, 2, 2): 'mit_b0/b1',
    (3, 4, 6, 3): 'mit_b2',
    (3, 4, 18, 3): 'mit_b3',
    (3, 8, 27, 3): 'mit_b4',
    (3, 6, 40, 3): 'mit_b5',
}


@dataclass
class EncoderInfo:
    """One encoder of a checkpoint.

    Attributes:
        modality: Modality name, or ``'1'`` / ``'2'`` when the file does not say.
        in_chans: Input channels of the stem.
        bands: Channel names in the order the encoder expects, or None if unknown.
        scaling: The input scaling it expects, or a note on where to find it.
        projector_dim: Output size K of its projector, or None without one.
    """

    modality: str
    in_chans: int
    bands: list[str] | None
    scaling: str
    projector_dim: int | None = None


@dataclass
class CheckpointInfo:
    """What :func:`inspect_checkpoint` found.

    Attributes:
        path: The file.
        layout: The key layout, in words.
        architecture: timm / smp name of the encoders.
        encoders: The encoders, modality 1 first.
        member: The released Weights member of the same file name, if any.
        task: Class of the Lightning task, for task checkpoints.
        loss: Loss settings stored in the file (task checkpoints).
        epoch: Epoch stored in the file, if any.
        step: Global step stored in the file, if any.
        parameters: Number of parameter values (buffers included).
    """

    path: str
    layout: str
    architecture: str
    encoders: list[EncoderInfo]
    member: str | None = None
    task: str | None = None
    loss: dict[str, Any] = field(default_factory=dict)
    epoch: int | None = None
    step: int | None = None
    parameters: int = 0

    def lines(self) -> list[str]:
        """Human-readable description, one fact per line."""
        out = [
            f'file: {self.path}',
            f'layout: {self.layout}',
            f'released member: {self.member or "none (file name not a released one)"}',
        ]
        if self.task:
            out.append(f'task: {self.task}')
        out += [
            f'architecture: {self.architecture}',
            f'modalities: {", ".join(e.modality for e in self.encoders)}',
        ]
        for i, e in enumerate(self.encoders, start=1):
            bands = ', '.join(e.bands) if e.bands else 'names not stored in the file'
            out.append(f'encoder {i} ({e.modality}): {e.in_chans} channels: {bands}')
            out.append(f'  input scaling: {e.scaling}')
            if e.projector_dim is not None:
                out.append(f'  projector: output size K = {e.projector_dim}')
        if self.loss:
            settings = ', '.join(f'{k}={v}' for k, v in self.loss.items())
            out.append(f'loss: {settings}')
        else:
            out.append('loss: settings not stored in the file')
        out.append(f'epoch: {"not stored" if self.epoch is None else self.epoch}')
        out.append(f'step: {"not stored" if self.step is None else self.step}')
        out.append(f'parameters: {self.parameters:,} values')
        return out

    def as_dict(self) -> dict[str, Any]:
        """The description as plain data (for JSON)."""
        return asdict(self)


def released_member(path: str) -> DeCURWeightsEnum | None:
    """The released Weights member whose file has this file's name.

    Args:
        path: A file path.

    Returns:
        The member, or None.
    """
    name = os.path.basename(path)
    for enum in WEIGHTS:
        for member in cast(Iterable[DeCURWeightsEnum], enum):
            if member.meta['file'] == name:
                return member
    return None


def _count(state: Mapping[str, Tensor], pattern: str) -> int:
    """Number of distinct indices matched by ``pattern``'s group."""
    found = {int(m.group(1)) for k in state if (m := re.match(pattern, k))}
    return len(found)


def infer_architecture(state: Mapping[str, Tensor]) -> str:
    """The encoder architecture of a state dict with this package's key names.

    Args:
        state: One encoder's weights (after :func:`remap_backbone_state_dict`).

    Returns:
        A timm / smp name such as ``resnet50``, ``resnet50_rda``,
        ``vit_small_patch16_224`` or ``mit_b2``, or a description when unknown.
    """
    if 'patch_embed1.proj.weight' in state:
        depths = tuple(_count(state, rf'block{s}\.(\d+)\.') for s in range(1, 5))
        return _MITS.get(depths, f'MiT with stage depths {list(depths)}')
    if 'patch_embed.proj.weight' in state:
        w = state['patch_embed.proj.weight']
        width, patch = int(w.shape[0]), int(w.shape[-1])
        depth = _count(state, r'blocks\.(\d+)\.')
        names = {384: 'small', 192: 'tiny', 768: 'base', 1024: 'large'}
        size = names.get(width, f'{width}-wide')
        return f'vit_{size}_patch{patch}_224 ({depth} blocks)'
    if any(k.startswith('layer1.0.') for k in state):
        return _resnet_name(state)
    return 'unknown (no ResNet, ViT or MiT stem among the keys)'


def _resnet_name(state: Mapping[str, Tensor]) -> str:
    """Timm name of a ResNet's weights (``layer1..4`` keys), RDA blocks included.

    Stage depths and block type give the base name; a deep stem (``conv1.0``,
    ``conv1.3``, ...) is matched against timm's deep-stem variants of that base
    by building each on the meta device and comparing every key and shape.
    """
    depths = tuple(_count(state, rf'layer{s}\.(\d+)\.') for s in range(1, 5))
    bottleneck = 'layer1.0.conv3.weight' in state
    variants = _RESNETS.get(depths, (None, None))
    base = variants[0] if bottleneck else variants[1]
    rda = any(k.startswith(('da_l3.', 'da_l4.')) for k in state)
    if 'conv1.weight' not in state:  # deep stem
        import timm

        shapes = {
            k: tuple(v.shape)
            for k, v in state.items()
            if not k.startswith(('fc.', 'da_l3.', 'da_l4.'))
        }
        stem = base.rstrip('t') if base else None
        for suffix in _DEEP_STEM_SUFFIXES if stem else ():
            name = f'{stem}{suffix}'
            if not timm.is_model(name):
                continue
            model = build_for_shapes(name, infer_in_chans(state, name))
            own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
            if own.keys() == shapes.keys() and all(
                own[k] == shapes[k] for k in own if not k.endswith('tracked')
            ):
                base = name
                break
        else:
            base = None
        if base is None:
            return f'ResNet with a deep stem and stage depths {list(depths)}'
    name = base or f'ResNet with stage depths {list(depths)}'
    return name + '_rda' if rda else name


def timm_name(architecture: str) -> str | None:
    """The timm name within an :func:`infer_architecture` answer, if it is one.

    Args:
        architecture: E.g. ``'vit_small_patch16_224 (12 blocks)'``.

    Returns:
        E.g. ``'vit_small_patch16_224'``, or None for a description.
    """
    import timm

    name = architecture.split(' ')[0]
    return name if timm.is_model(name) else None


def _scaling_of(
    member: DeCURWeightsEnum | None, position: int
) -> tuple[list[str] | None, str]:
    """Bands and scaling of encoder ``position`` of a released member."""
    if member is None:
        return None, (
            'not stored in the file; a released file name would tell (see the '
            'weights documentation), else the scaling the data module applied'
        )
    name = member.meta['inputs'][position - 1]
    return list(member.bands_for(position)), f'{INPUTS[name].description} ({name})'


def _numel(state: Mapping[str, Tensor]) -> int:
    # Released projector matrices are stride-0 expansions in the test stand-ins
    # and real tensors in the files; count logical values either way.
    return sum(math.prod(v.shape) for v in state.values())


def inspect_checkpoint(path: str | os.PathLike[str]) -> CheckpointInfo:
    """Describe a checkpoint file.

    Recognised: the released joint layout (``[module.]backbone_1/2``,
    ``projector1/2``, RDA ``da1/da2`` blocks; plain or in a ``{'model': ...}``
    wrapper), released backbone-only files (timm / smp keys; RDA:
    ``backbone.*`` + ``da<N>_*``), this package's Lightning task checkpoints and
    their bare state dicts (``backbones.<m>.*``).

    Args:
        path: The file.

    Returns:
        The description.

    Raises:
        FileNotFoundError: If there is no such file.
        ValueError: If the file cannot be read safely or holds no recognisable
            encoder weights (the message names the path).
    """
    path = os.fspath(path)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, 'config.json')):
        return _timm_folder_info(path)
    obj = load_checkpoint_file(path, map_location='meta')
    state = unwrap_state_dict(obj, source=path)
    meta = obj if isinstance(obj, Mapping) else {}
    epoch = meta.get('epoch')
    step = meta.get('global_step')
    member = released_member(path)
    hparams = meta.get('hyper_parameters')
    info: CheckpointInfo
    if isinstance(hparams, Mapping) and any(k.startswith('backbones.') for k in state):
        info = _task_info(path, state, meta, hparams)
    elif (prefix := _reference_prefix(state)) is not None:
        encoders = []
        arch = ''
        for i in (1, 2):
            encoder = strip_prefix(state, f'{prefix}backbone_{i}.')
            for layer in ('l3', 'l4'):
                block = strip_prefix(state, f'{prefix}da{i}_{layer}.')
                encoder |= {f'da_{layer}.{k}': v for k, v in block.items()}
            arch = infer_architecture(encoder)
            bands, scaling = _scaling_of(member, i)
            name = member.modalities[i - 1] if member else str(i)
            projector = strip_prefix(state, f'{prefix}projector{i}.')
            encoders.append(
                EncoderInfo(
                    name,
                    infer_in_chans(encoder, path, timm_name(arch)),
                    bands,
                    scaling,
                    embedding_size(projector),
                )
            )
        wrapper = "{'model': ...} wrapper" if 'model' in meta else 'plain state dict'
        ddp = ", 'module.' prefix" if prefix else ''
        info = CheckpointInfo(
            path,
            f'joint, released DeCUR layout (backbone_1/backbone_2, projector1/'
            f'projector2; {wrapper}{ddp})',
            arch,
            encoders,
        )
    elif any(k.startswith('backbones.') for k in state):
        info = _task_info(path, state, meta, {})
    else:
        try:
            encoder = remap_backbone_state_dict(state, path)
        except ValueError as error:
            raise ValueError(str(error)) from None
        arch = infer_architecture(encoder)
        if arch.startswith('unknown'):
            keys = sorted(state)[:5]
            raise ValueError(
                f'{path!r} holds no ResNet, ViT or MiT encoder weights this package '
                f'knows (first keys: {keys})'
            )
        da = sorted({m.group(1) for k in state if (m := re.match(r'da([12])_l', k))})
        if da:
            kind = f'backbone-only RDA (backbone.* + da{da[0]}_l3/l4 blocks)'
        elif arch.startswith('mit'):
            kind = 'backbone-only MiT (smp/SegFormer keys, no head)'
        else:
            kind = 'backbone-only (timm keys)'
        position = member.position(member.modalities[0]) if member else 1
        if member is not None:
            name = member.modalities[0]
        else:
            name = {'1': 'modality 1', '2': 'modality 2'}.get(da[0] if da else '', '?')
        bands, scaling = _scaling_of(member, position)
        info = CheckpointInfo(
            path,
            kind,
            arch,
            [
                EncoderInfo(
                    name, infer_in_chans(encoder, path, timm_name(arch)), bands, scaling
                )
            ],
        )
    info.member = str(member) if member is not None else None
    info.epoch = int(epoch) if isinstance(epoch, int) else None
    info.step = int(step) if isinstance(step, int) else info.step
    info.parameters = _numel(state)
    return info


def _numbers(values: Iterable[float]) -> str:
    """Values as a short bracketed list (4 significant digits)."""
    return '[' + ', '.join(f'{float(v):.4g}' for v in values) + ']'


def _timm_folder_info(path: str) -> CheckpointInfo:
    """Describe an encoder folder in timm's Hugging Face layout (an export)."""
    import json

    from safetensors import safe_open

    config_path = os.path.join(path, 'config.json')
    weights_path = os.path.join(path, 'model.safetensors')
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f'cannot read {config_path!r} as JSON: {error}') from None
    if not isinstance(config, dict) or 'architecture' not in config:
        raise ValueError(f'{config_path!r} names no timm architecture')
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f'{path!r} has config.json but no model.safetensors')
    try:
        with safe_open(weights_path, framework='pt') as f:
            shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}
    except Exception as error:  # any damage: the file's fault
        raise ValueError(
            f'cannot read {weights_path!r} as safetensors: {type(error).__name__}: '
            f'{error}'
        ) from None
    args = config.get('model_args') or {}
    cfg = config.get('pretrained_cfg') or {}
    first = cfg.get('first_conv')
    in_chans = args.get('in_chans')
    if isinstance(first, str) and f'{first}.weight' in shapes:
        in_chans = shapes[f'{first}.weight'][1]
    scaling = config.get('input_scaling') or {}
    if 'mean' in scaling:
        text = (
            f'{scaling.get("formula")}, statistics: mean '
            f'{_numbers(scaling["mean"])}, std {_numbers(scaling["std"])}'
        )
    else:
        text = str(scaling.get('formula', 'not stored in config.json'))
    modality = str(config.get('modality', '?'))
    return CheckpointInfo(
        path,
        'timm Hugging Face folder (config.json + model.safetensors; load with '
        "timm.create_model('local-dir:<folder>', pretrained=True))",
        str(config['architecture']),
        [EncoderInfo(modality, int(in_chans or 0), None, text)],
        parameters=sum(math.prod(s) for s in shapes.values()),
    )


#: Loss hyperparameters reported for task checkpoints.
LOSS_KEYS = (
    'common_dim',
    'lambd',
    'loss_weighting',
    'temperature',
    'learnable_temperature',
    'sim_coeff',
    'std_coeff',
    'cov_coeff',
    'gather_distributed',
)


def _task_info(
    path: str,
    state: Mapping[str, Tensor],
    meta: Mapping[str, Any],
    hparams: Mapping[str, Any],
) -> CheckpointInfo:
    """Describe this package's task layout (``backbones.<m>.*``)."""
    found = list(
        dict.fromkeys(k.split('.')[1] for k in state if k.startswith('backbones.'))
    )
    modalities = [str(m) for m in hparams.get('modalities', found)]
    weights = hparams.get('weights')
    encoders = []
    arch = str(task_architecture(meta).get('model', ''))
    statistics = data_statistics(meta)
    data_hparams = meta.get('datamodule_hyper_parameters')
    harmonize = (
        data_hparams.get('s2_harmonize') if isinstance(data_hparams, Mapping) else None
    )
    for m in modalities:
        encoder = strip_prefix(state, f'backbones.{m}.')
        if not encoder:
            raise ValueError(f'{path!r} has no backbones.{m}.* weights; it has {found}')
        arch = arch or infer_architecture(encoder)
        stats = statistics.get(m)
        if stats is not None:
            scaling = (
                f'{SCALING_FORMULA}, statistics stored in the checkpoint: mean '
                f'{_numbers(stats["mean"])}, std {_numbers(stats["std"])}'
            )
        else:
            scaling = (
                "the data module's normalisation at training time (the checkpoint "
                'stores no statistics; the DeCUR data modules of the released '
                "datasets apply the released files' scaling)"
            )
        if harmonize is not None:
            scaling += (
                f'; Sentinel-2 digital numbers read with s2_harmonize={harmonize!r} '
                '(the 1000 DN offset of processing baseline 04.00+ removed where '
                'it applies)'
            )
        encoders.append(
            EncoderInfo(
                m,
                infer_in_chans(encoder, path, timm_name(arch) if arch else None),
                None,
                scaling,
                embedding_size(strip_prefix(state, f'projectors.{m}.')),
            )
        )
    loss = {k: hparams[k] for k in LOSS_KEYS if k in hparams}
    if 'projector_dims' in hparams:
        loss['projector_dims'] = list(hparams['projector_dims'])
    if weights:
        loss['initial_weights'] = str(weights)
    task = meta.get('hyper_parameters', {}).get('_class_path') or (
        'Lightning checkpoint of a torchgeo_decur task'
        if 'state_dict' in meta
        else None
    )
    layout = (
        'Lightning task checkpoint (state_dict: backbones.<m>, projectors.<m>)'
        if 'state_dict' in meta
        else 'task state dict (backbones.<m>, projectors.<m>)'
    )
    return CheckpointInfo(path, layout, arch, encoders, task=task, loss=loss)
