"""Per-patch embeddings of any encoder: resolve it from a source, run it in ``predict``.

:func:`resolve_embedding_encoders` is the one place that turns what a user points
at (a released Weights member or its name, an export written by
``torchgeo-decur export`` (``.pth`` or ``_timm`` folder), a Lightning task
checkpoint, or several such sources, one per modality) into encoders with pooled
outputs and the input scaling each was trained with: a member's
``transforms_for``, the statistics an export (its ``_input_scaling.json`` or a
timm folder's ``config.json``) or a checkpoint's data module recorded. :class:`EmbeddingTask` applies them in Lightning's ``predict`` loop, so
``trainer.predict`` on any number of devices and nodes (and ``torchgeo predict``)
computes embeddings; :class:`~torchgeo_decur.callbacks.EmbeddingWriter` writes
them.
"""

import glob
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn

from ..checkpoints.files import load_checkpoint_file
from ..datamodules.scaling import given_statistics
from ..export import input_scaling
from ..options import option
from ..transforms.normalize import ClipNormalize
from ..weights.base import DeCURWeightsEnum
from ..weights.builders import build_encoder
from ..weights.inspect import inspect_checkpoint
from ..weights.loading import is_timm_folder, lookup_member, read_timm_config

#: How per-modality embeddings become the patch's vectors.
Fusion = Literal['concat', 'separate']

#: The mean ± 2σ → [0, 1] window of the DeCUR data modules, in words.
CLIP_SCALING = 'clip((x - (mean - 2 std)) / (4 std), 0, 1) per band, raw units'


@dataclass
class EmbeddingEncoders:
    """Encoders of one source with the input scaling each was trained with.

    Attributes:
        source: What was resolved (member name or path).
        model: timm name of the architecture.
        encoders: Modality → encoder giving pooled (N, D) features.
        scaling: Modality → module mapping raw (N, C, H, W) input to the
            encoder's input.
        in_chans: Modality → input channels of the encoder.
        scaling_info: Modality → JSON-able description of the scaling.
    """

    source: str
    model: str
    encoders: dict[str, nn.Module]
    scaling: dict[str, nn.Module]
    in_chans: dict[str, int]
    scaling_info: dict[str, Any] = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        """Modality names, in the order of the source."""
        return list(self.encoders)


def _clip_scaling(stats: Mapping[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """ClipNormalize and its description from ``{'mean', 'std'}`` (raw units)."""
    mean = [float(v) for v in stats['mean']]
    std = [float(v) for v in stats['std']]
    return ClipNormalize(mean, std), {'formula': CLIP_SCALING, 'mean': mean, 'std': std}


def _export_scaling(path: str) -> tuple[str | None, dict[str, Any] | None]:
    """The modality an export file holds and the statistics written beside it.

    ``torchgeo-decur export`` writes ``<name>_<modality>_decur.pth``,
    ``<name>_joint_decur.pth`` and ``<name>_input_scaling.json`` side by side.

    Returns:
        ``(modality or 'joint' or None, {modality: {'mean', 'std'}} or None)``.
    """
    folder, base = os.path.split(os.path.abspath(path))
    for side in sorted(
        glob.glob(os.path.join(glob.escape(folder), '*_input_scaling.json'))
    ):
        prefix = os.path.basename(side)[: -len('_input_scaling.json')]
        match = re.fullmatch(re.escape(prefix) + r'_(.+)_decur\.pth', base)
        if match is None:
            continue
        try:
            with open(side) as f:
                stats = json.load(f)['statistics']
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f'cannot read the input scaling {side!r}: {err}') from None
        return match.group(1), dict(stats)
    return None, None


def _read_statistics(path: str) -> dict[str, Any]:
    """``statistics`` of a JSON file such as an export's ``_input_scaling.json``."""
    try:
        with open(path) as f:
            return dict(json.load(f)['statistics'])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f'scaling file {path!r} holds no statistics mapping: {err}'
        ) from None


def _timm_folder_scaling(path: str) -> tuple[str | None, dict[str, Any] | None]:
    """The modality and statistics an exported timm folder's ``config.json`` records."""
    config = read_timm_config(path)
    modality = config.get('modality')
    held = modality if isinstance(modality, str) else None
    scaling = config.get('input_scaling')
    if held is None or not isinstance(scaling, dict) or 'mean' not in scaling:
        return held, None
    return held, {held: scaling}


def _named_source(source: str) -> tuple[str | None, str]:
    """``'s1=path'`` -> ``('s1', 'path')``; anything else -> ``(None, source)``."""
    name, sep, rest = source.partition('=')
    if sep and name.isidentifier() and rest and not os.path.exists(source):
        return name, rest
    return None, source


def _merge_sources(
    sources: Sequence[str | os.PathLike[str]],
    modalities: Sequence[str] | None,
    model: str | None,
    scaling: str | None,
) -> EmbeddingEncoders:
    """Resolve one encoder source per modality and put them together."""
    parts = []
    for one in sources:
        name, path = _named_source(os.fspath(one))
        part = resolve_embedding_encoders(path, model=model, scaling=scaling)
        if name is not None:
            if len(part.modalities) != 1:
                raise ValueError(
                    f'{name}={path}: the source holds the modalities '
                    f'{part.modalities}; a name can only be given to one encoder'
                )
            (old,) = part.modalities
            part.encoders = {name: part.encoders[old]}
            part.scaling = {name: part.scaling[old]}
            part.in_chans = {name: part.in_chans[old]}
            part.scaling_info = {name: part.scaling_info[old]}
        parts.append(part)
    seen: dict[str, str] = {}
    for part in parts:
        for m in part.modalities:
            if m in seen:
                raise ValueError(
                    f'encoder sources {seen[m]} and {part.source} both hold modality '
                    f"{m!r}; name them (e.g. 's1=PATH')"
                )
            seen[m] = part.source
    models = {part.model for part in parts}
    merged = EmbeddingEncoders(
        ' + '.join(part.source for part in parts),
        models.pop()
        if len(models) == 1
        else ', '.join(f'{m}: {p.model}' for p in parts for m in p.modalities),
        {m: e for p in parts for m, e in p.encoders.items()},
        {m: s for p in parts for m, s in p.scaling.items()},
        {m: c for p in parts for m, c in p.in_chans.items()},
        {m: i for p in parts for m, i in p.scaling_info.items()},
    )
    chosen = list(modalities) if modalities else merged.modalities
    unknown = [m for m in chosen if m not in merged.encoders]
    if unknown:
        raise ValueError(
            f'encoders {merged.source} hold the modalities {merged.modalities}; '
            f'{unknown} is not among them'
        )
    for field_ in ('encoders', 'scaling', 'in_chans', 'scaling_info'):
        values = getattr(merged, field_)
        setattr(merged, field_, {m: values[m] for m in chosen})
    return merged


def resolve_embedding_encoders(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Any,
    modalities: Sequence[str] | None = None,
    *,
    model: str | None = None,
    scaling: str | None = None,
) -> EmbeddingEncoders:
    """Build the encoders of a source with pooled outputs and their input scaling.

    Args:
        source: A DeCUR Weights member or its name (``'DeCURResNet50_Weights.X'``),
            an export of ``torchgeo-decur export`` (a backbone-only or joint
            ``.pth``: the ``<name>_input_scaling.json`` beside it gives the
            scaling; a ``<name>_<modality>_timm`` folder: its ``config.json``
            gives architecture, channels, modality and scaling), or a Lightning
            checkpoint of a task of this package (its data module's recorded
            statistics give the scaling). A list of sources (e.g. one timm
            folder per modality) puts their encoders together; an entry
            ``'s1=PATH'`` names the one encoder of its source.
        modalities: Which encoders to use (default: all the source holds).
        model: timm architecture, for files whose architecture cannot be read from
            the keys (a task checkpoint and a member say it themselves).
        scaling: ``None`` (the scaling the source records), ``'none'`` (feed raw
            values: the data are already scaled), or a JSON file of
            ``{'statistics': {modality: {'mean': [...], 'std': [...]}}}`` (an
            export's ``_input_scaling.json``).

    Returns:
        The encoders (in eval mode) and their scaling.

    Raises:
        ValueError: For an unknown source or modality, two sources holding the
            same modality, a source that records no scaling (and ``scaling``
            not given), or an unknown architecture.
        FileNotFoundError: If a file does not exist.
    """
    if isinstance(source, list | tuple):
        if len(source) == 1:
            source = source[0]
        else:
            return _merge_sources(source, modalities, model, scaling)
    if isinstance(source, str) and _named_source(source)[0] is not None:
        return _merge_sources([source], modalities, model, scaling)
    text: Any = os.fspath(source) if isinstance(source, str | os.PathLike) else source
    member = lookup_member(text)
    if isinstance(text, str) and member is None and not os.path.exists(text):
        raise FileNotFoundError(
            f'encoder {text!r} is neither an existing file nor a registered Weights '
            'member name'
        )
    names: list[str]
    stats: dict[str, Any] | None = None
    transforms: dict[str, nn.Module] = {}
    info: dict[str, Any] = {}
    if member is not None:
        if not isinstance(member, DeCURWeightsEnum):
            raise ValueError(f'{member} is not a DeCUR Weights member')
        name = str(member)
        arch = str(member.meta['model'])
        names = list(member.modalities)
        kwargs = dict(member.meta.get('backbone_kwargs', {}))
        positions = {m: member.position(m) for m in names}
        for m in names:
            transforms[m] = member.transforms_for(m)
            info[m] = {'transforms': f'{name}.transforms_for({m!r})'}
    else:
        name = os.fspath(text)
        described = inspect_checkpoint(name)
        kwargs = {}
        if described.member is not None:
            return resolve_embedding_encoders(
                described.member, modalities, model=model, scaling=scaling
            )
        arch = model or described.architecture
        if arch.startswith('unknown'):
            raise ValueError(f'{name}: {arch}; pass the architecture (model=...)')
        names = [e.modality for e in described.encoders]
        if described.task is not None:
            stats = (input_scaling(load_checkpoint_file(name)) or {}).get('statistics')
        elif is_timm_folder(name):
            held, stats = _timm_folder_scaling(name)
            if held is not None:
                names = [held]
        else:
            held, stats = _export_scaling(name)
            if held is not None and held != 'joint' and len(names) == 1:
                names = [held]
            elif stats is not None and len(stats) == len(names):
                names = list(stats)
        positions = {m: i for i, m in enumerate(names, start=1)}
    chosen = list(modalities) if modalities else names
    unknown = [m for m in chosen if m not in names]
    if unknown:
        raise ValueError(
            f'encoder {name} holds the modalities {names}; {unknown} is not among them'
        )
    if scaling == 'none':
        transforms = {m: nn.Identity() for m in chosen}
        info = {m: {'formula': 'none (raw values fed to the encoder)'} for m in chosen}
    elif scaling is not None or member is None:
        if scaling is not None:
            stats = _read_statistics(scaling)
        given = given_statistics(stats)
        missing = [m for m in chosen if m not in given]
        if missing:
            raise ValueError(
                f'encoder {name} records no input scaling for modalities {missing}; '
                f'pass {option("scaling", "none")} (raw values) or a JSON file of '
                'statistics'
            )
        for m in chosen:
            transforms[m], info[m] = _clip_scaling(given[m])
    encoders: dict[str, nn.Module] = {}
    in_chans: dict[str, int] = {}
    for m in chosen:
        encoder = build_encoder(
            arch, member or name, modality=positions[m], num_classes=0, **kwargs
        )
        encoders[m] = encoder.eval()
        in_chans[m] = _stem_channels(encoder)
    return EmbeddingEncoders(
        name,
        arch,
        encoders,
        {m: transforms[m] for m in chosen},
        in_chans,
        {m: info[m] for m in chosen},
    )


def _stem_channels(encoder: nn.Module) -> int:
    """Input channels of an encoder: those of its first convolution."""
    for module in encoder.modules():
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels)
    raise ValueError(f'cannot tell the input channels of {type(encoder).__name__}')


def check_input_channels(
    encoders: EmbeddingEncoders, channels: Mapping[str, int], where: str
) -> None:
    """Check that each modality's data fits its scaling and encoder.

    Args:
        encoders: The resolved encoders.
        channels: Modality → channels of the data.
        where: Names the data, for the message.

    Raises:
        ValueError: Naming the modality, for a modality the data lack or a band
            count the scaling or encoder does not take.
    """
    missing = [m for m in encoders.modalities if m not in channels]
    if missing:
        raise ValueError(
            f'encoder {encoders.source} needs the modalities {encoders.modalities}; '
            f'{where} has no {missing} (it has {list(channels)})'
        )
    for m in encoders.modalities:
        probe = torch.zeros(1, channels[m], 4, 4)
        try:
            scaled = encoders.scaling[m](probe)
        except ValueError as err:
            raise ValueError(
                f'modality {m!r} of {where} has {channels[m]} bands, which the input '
                f'scaling of {encoders.source} does not take: {err}'
            ) from None
        got, need = int(scaled.shape[1]), encoders.in_chans[m]
        if got != need:
            raise ValueError(
                f'modality {m!r} of {where} gives {got} channels but the {m!r} '
                f'encoder of {encoders.source} takes {need}'
            )


class EmbeddingTask(LightningModule):
    """Pooled encoder features of every patch of a ``predict`` run.

    Batches hold raw ``image_<modality>`` (N, C_m, H, W) of every modality of
    the encoders plus ``patch_id`` (N,) and ``bounds`` (N, 4): minx, miny, maxx,
    maxy in the data's CRS (NaN where the data have no georeference). Each
    modality is scaled as its encoder was trained and encoded; ``fuse='concat'``
    returns ``embedding`` (N, sum D_m) (modalities in order), ``'separate'`` one
    ``embedding_<modality>`` (N, D_m) per modality.
    """

    def __init__(
        self,
        source: str | list[str],
        modalities: list[str] | None = None,
        fuse: Fusion = 'concat',
        model: str | None = None,
        scaling: str | None = None,
    ) -> None:
        """Initialize a new EmbeddingTask instance.

        Args:
            source: See :func:`resolve_embedding_encoders`.
            modalities: Encoders to use (default: all of the source).
            fuse: ``'concat'`` or ``'separate'``.
            model: Architecture of files that do not say.
            scaling: See :func:`resolve_embedding_encoders`.

        Raises:
            ValueError: For an unknown ``fuse`` or what the resolution raises.
        """
        super().__init__()
        if fuse not in ('concat', 'separate'):
            raise ValueError(f"fuse must be 'concat' or 'separate', got {fuse!r}")
        self.save_hyperparameters()
        self.resolved = resolve_embedding_encoders(
            source, modalities, model=model, scaling=scaling
        )
        self.encoders = nn.ModuleDict(self.resolved.encoders)
        self.scaling = nn.ModuleDict(self.resolved.scaling)
        self.fuse = fuse

    @property
    def modalities(self) -> list[str]:
        """Modalities encoded, in order."""
        return self.resolved.modalities

    def embedding_settings(self) -> dict[str, Any]:
        """What determines the vectors, recorded in and checked against outputs."""
        return {
            'encoder': self.resolved.source,
            'model': self.resolved.model,
            'modalities': self.modalities,
            'fuse': self.fuse,
            'scaling': self.resolved.scaling_info,
        }

    def setup(self, stage: str) -> None:
        """Check the data module's bands against the encoders (when it says them).

        Args:
            stage: Lightning stage.

        Raises:
            ValueError: Naming the modality whose data do not fit its encoder.
        """
        trainer = getattr(self, '_trainer', None)
        data = getattr(trainer, 'datamodule', None)
        channels = getattr(data, 'channels', None)
        if channels and data is not None:
            where = data.describe() if hasattr(data, 'describe') else 'the data'
            check_input_channels(self.resolved, channels, where)

    def embed(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Embeddings of one batch (see the class docstring).

        Args:
            batch: Raw images per modality.

        Returns:
            ``embedding`` or ``embedding_<m>``, float32 on the batch's device.
        """
        out = {}
        for m in self.modalities:
            x = batch[f'image_{m}'].float()
            out[m] = self.encoders[m](self.scaling[m](x)).float()
        if self.fuse == 'concat':
            return {'embedding': torch.cat([out[m] for m in self.modalities], dim=1)}
        return {f'embedding_{m}': v for m, v in out.items()}

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Same as :meth:`embed`."""
        return self.embed(batch)

    def predict_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Any]:
        """Embed a batch and pass its ids and footprints on.

        Args:
            batch: See the class docstring.
            batch_idx: Unused.
            dataloader_idx: Unused.

        Returns:
            The embeddings plus ``patch_id`` and ``bounds`` (and ``crs``, the
            CRS of each row's bounds, where the batch has it: shard runs).
        """
        out: dict[str, Any] = self.embed(batch)
        out['patch_id'] = batch['patch_id']
        out['bounds'] = batch['bounds']
        if 'crs' in batch:
            out['crs'] = batch['crs']
        return out


__all__ = (
    'EmbeddingEncoders',
    'EmbeddingTask',
    'check_input_channels',
    'resolve_embedding_encoders',
)
