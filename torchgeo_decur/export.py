"""Export a trained two-encoder task to the layouts of the released DeCUR files.

:func:`export_checkpoint` turns a Lightning checkpoint of a
:class:`~torchgeo_decur.DeCURTask` (or any task on the shared two-encoder base) into

* ``<name>_joint_decur.pth``: ``{'model': {...}}`` with the reference joint keys
  ``module.backbone_1/2.*``, ``module.projector1/2.*``, ``module.bn.*`` (fresh
  running statistics of the reference's parameter-free BatchNorm, which nothing
  reads) and, for RDA encoders, ``module.da1_*`` / ``module.da2_*``: the released
  key totals (ResNet-50 665, ResNet-50-RDA 721, ViT-S/16 329, MiT-B2 697 with a
  3-layer projector) in the wrapper the authors' GeoNRW and CMX loaders read;
  every loader of this package accepts it too;
* ``<name>_<modality>_decur.pth`` per modality: the backbone-only layout (timm / smp
  keys; RDA: ``backbone.*`` + ``da<i>_l3/l4.*``; MiT without its DeCUR head);
* ``<name>_<modality>_timm/`` per modality: the encoder in timm's Hugging Face
  layout (``config.json`` + ``model.safetensors``, written by timm's
  ``save_for_hf``) with ``architecture``, ``model_args`` (``in_chans``,
  ``num_classes: 0``) and the input scaling (``input_scaling``) in the config:
  ``timm.create_model('local-dir:<folder>', pretrained=True)`` builds the trained
  encoder (after ``import torchgeo_decur`` for the encoders it registers), and
  the folder uploads to a model hub as it is.

A task of more than two modalities has no joint released layout: only the
per-modality backbone files are written (modalities after the first in the layout
of a released modality-2 file). When the run's data module recorded the band
statistics its inputs were scaled with (``MultimodalGeoDataModule``), they are
written to ``<name>_input_scaling.json``: per modality the raw-unit ``mean`` and
``std`` of every band, to be mapped with ``clip((x - (mean - 2 std)) / (4 std), 0,
1)`` before the encoder.

Each file loads back with ``torchgeo.models.get_model('decur_<model>', weights=path)``
(``modality=2`` picks the second encoder of the joint file), with
``DeCURTask(weights=path)`` or with the authors' code.

The files are written atomically (see
:func:`~torchgeo_decur.checkpoints.layouts.save_atomically`): an interrupted export
leaves the previous files as they were, and existing files are only replaced with
``overwrite=True``. The command line is ``torchgeo-decur export``
(:mod:`torchgeo_decur.cli.export`).
"""

import json
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from .checkpoints.architecture import (
    SCALING_FORMULA,
    data_statistics,
    task_architecture,
)
from .checkpoints.files import (
    TMP_MARKER,
    check_finite,
    file_mode,
    load_checkpoint_file,
    save_atomically,
    stale_temporaries,
)
from .checkpoints.layouts import (
    split_joint_state_dict,
    to_reference_backbone,
    to_reference_joint,
)


def prepare_output_dir(output_dir: str | os.PathLike[str]) -> Path:
    """Create the output folder (with parents) or check that it is a folder.

    Args:
        output_dir: Folder for exported files.

    Returns:
        It, as a Path.

    Raises:
        NotADirectoryError: If it (or a parent) exists as a file.
        OSError: If it cannot be created (the message names it).
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(
            f'output directory {os.fspath(out)!r} exists and is not a directory'
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a parent is a file
        raise NotADirectoryError(
            f'cannot create output directory {os.fspath(out)!r}: a parent is a file'
        ) from None
    except OSError as err:
        raise OSError(
            f'cannot create output directory {os.fspath(out)!r}: {err.strerror}'
        ) from None
    return out


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    name: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the joint and backbone-only files of a trained task.

    Args:
        checkpoint: Lightning checkpoint (``.ckpt``) of a two-encoder task.
        output_dir: Directory for the exported files (created if needed).
        name: File name prefix (default: the checkpoint's stem).
        overwrite: Replace files that already exist.

    Returns:
        A summary: ``model``, ``modalities``, ``in_channels`` and ``files``
        (``joint`` for two modalities, one entry per modality and
        ``input_scaling`` when recorded, as paths).

    Raises:
        FileNotFoundError: If ``checkpoint`` does not exist.
        FileExistsError: If an output exists and ``overwrite`` is False.
        ValueError: If it is not a Lightning checkpoint of a multi-encoder task,
            cannot be read, or holds NaN / infinite weights.
        OSError: If the output folder cannot be created or written.
    """
    source = os.fspath(checkpoint)
    ckpt = load_checkpoint_file(source)
    if not isinstance(ckpt, dict) or not {'state_dict', 'hyper_parameters'} <= set(
        ckpt
    ):
        raise ValueError(
            f'{source} is not a Lightning checkpoint (no state_dict and '
            'hyper_parameters entries)'
        )
    hparams = task_architecture(ckpt)
    modalities = tuple(hparams.get('modalities', ()))
    if len(modalities) < 2:
        raise ValueError(
            f'{source} is not a checkpoint of a multi-encoder task (hyper_parameters '
            f'modalities={modalities!r})'
        )
    backbones, projectors = split_joint_state_dict(
        ckpt['state_dict'], modalities, source
    )
    if len(modalities) != 2:
        for modality, state in backbones.items():
            check_finite(state, f'{source} ({modality} encoder)')
    out = prepare_output_dir(output_dir)
    prefix = name or Path(source).stem
    files: dict[str, Path] = {}
    contents: dict[str | os.PathLike[str], Any] = {}
    if len(modalities) == 2:
        # The released joint layout holds exactly two encoders.
        joint = to_reference_joint(backbones, projectors)
        check_finite(joint, source)
        files['joint'] = out / f'{prefix}_joint_decur.pth'
        contents[files['joint']] = {'model': joint}
    for position, modality in enumerate(modalities, start=1):
        files[modality] = out / f'{prefix}_{modality}_decur.pth'
        # Modalities after the second use the released modality-2 layout.
        contents[files[modality]] = to_reference_backbone(
            backbones[modality], min(position, 2)
        )
    scaling = input_scaling(ckpt)
    if scaling is not None:
        files['input_scaling'] = out / f'{prefix}_input_scaling.json'
        contents[files['input_scaling']] = json.dumps(scaling, indent=2).encode()
    folders = {m: out / f'{prefix}_{m}_timm' for m in modalities}
    existing = [
        os.fspath(p) for p in [*contents, *folders.values()] if os.path.exists(p)
    ]
    if existing and not overwrite:
        raise FileExistsError(
            f'output(s) {existing} already exist; pass --overwrite (Python: '
            'overwrite=True) to replace them'
        )
    staged: dict[Path, Path] = {}
    notes: list[str] = []
    for folder in folders.values():  # what an interrupted export left behind
        for stale in stale_temporaries(os.fspath(folder)):
            shutil.rmtree(stale, ignore_errors=True)
    try:
        for m in modalities:
            tmp = stage_timm_folder(
                backbones[m],
                hparams,
                m,
                folders[m],
                _modality_scaling(scaling, m),
                source,
            )
            if tmp is None:
                notes.append(
                    f'no timm folder for the {m} encoder: {hparams.get("model")!r} '
                    'is not a timm architecture (use the .pth file)'
                )
            else:
                staged[folders[m]] = tmp
    except BaseException:
        for tmp in staged.values():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    written = set(staged)
    try:
        save_atomically(contents, overwrite=overwrite)
        for target, tmp in list(staged.items()):
            replace_folder(tmp, target)
            del staged[target]
    finally:
        for tmp in staged.values():
            shutil.rmtree(tmp, ignore_errors=True)
    for m in modalities:
        if folders[m] in written:
            files[f'{m}_timm'] = folders[m]
    summary: dict[str, Any] = {
        'model': hparams.get('model'),
        'modalities': list(modalities),
        'in_channels': hparams.get('in_channels'),
        'files': files,
    }
    if notes:
        summary['notes'] = notes
    return summary


def _modality_scaling(
    scaling: Mapping[str, Any] | None, modality: str
) -> dict[str, Any] | None:
    """One modality's recorded statistics (with ``s2_harmonize``), or None."""
    stats = (scaling or {}).get('statistics', {}).get(modality)
    if stats is None:
        return None
    out = dict(stats)
    if scaling and scaling.get('s2_harmonize') is not None:
        out['s2_harmonize'] = scaling['s2_harmonize']
    return out


def stage_timm_folder(
    state: Mapping[str, Tensor],
    hparams: Mapping[str, Any],
    modality: str,
    target: Path,
    statistics: Mapping[str, Any] | None,
    source: str,
) -> Path | None:
    """Write one encoder in timm's Hugging Face layout to a hidden temporary folder.

    Args:
        state: The encoder's weights (this package's key names).
        hparams: The task's architecture (``model``, ``in_channels``,
            ``backbone_kwargs``; see
            :func:`~torchgeo_decur.checkpoints.architecture.task_architecture`).
        modality: The encoder's modality.
        target: Where the folder goes (its parent holds the temporary one).
        statistics: ``{'mean', 'std'}`` of the bands in raw units (and
            ``'s2_harmonize'``), if the run recorded them.
        source: The checkpoint path, for messages.

    Returns:
        The temporary folder (``config.json`` + ``model.safetensors``), or None
        for an encoder that is not a timm model (smp's MiT): timm cannot rebuild
        it from a ``config.json``.

    Raises:
        ValueError: If the encoder cannot be built or its weights do not load.
        OSError: If the folder cannot be written.
    """
    from timm.models import save_for_hf

    from .checkpoints.layouts import load_encoder_state
    from .models.backbones import build_backbone, split_rda_options
    from .models.shapes import infer_in_chans

    architecture = str(hparams['model'])
    in_chans = infer_in_chans(state, source, architecture)
    kwargs, _, _ = split_rda_options(hparams.get('backbone_kwargs'))
    kwargs.pop('fresh_stem', None)
    encoder = build_backbone(architecture, in_chans, **kwargs)
    load_encoder_state(encoder, state, f'{source} ({modality} encoder)')
    if not hasattr(encoder, 'pretrained_cfg'):
        return None
    if statistics is not None:
        scaling: dict[str, Any] = {
            'formula': SCALING_FORMULA,
            'mean': list(statistics['mean']),
            'std': list(statistics['std']),
        }
        if statistics.get('s2_harmonize') is not None:
            scaling['s2_harmonize'] = statistics['s2_harmonize']
    else:
        scaling = {
            'formula': 'the normalisation of the data module the run used (the '
            'checkpoint stores no statistics)'
        }
    tmp = target.parent / f'.{target.name}{TMP_MARKER}{secrets.token_hex(4)}'
    try:
        save_for_hf(
            encoder,
            os.fspath(tmp),
            model_config={'input_scaling': scaling, 'modality': modality},
            safe_serialization=True,
            # The encoder takes inputs already scaled as input_scaling says:
            # timm's own normalisation is the identity.
            data_config={'mean': (0.0,) * in_chans, 'std': (1.0,) * in_chans},
        )
        for name in os.listdir(tmp):  # safetensors writes 0600: use the umask
            os.chmod(tmp / name, file_mode())
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, Exception) and not isinstance(err, ValueError):
            # safetensors reports a full disk as its own SafetensorError.
            raise OSError(f'cannot write {os.fspath(target)!r}: {err}') from err
        raise
    return tmp


def replace_folder(tmp: Path, target: Path) -> None:
    """Move a finished folder into place, replacing an old one.

    Args:
        tmp: The finished folder (same file system as ``target``).
        target: Its final name; an existing folder there is removed after the
            new one is in place.
    """
    old = None
    if target.exists():
        old = target.parent / f'.{target.name}.old-{secrets.token_hex(4)}'
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def input_scaling(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """The input scaling a checkpoint's data module recorded, if any.

    Args:
        ckpt: A loaded Lightning checkpoint.

    Returns:
        ``{'scaling': <formula>, 'statistics': {modality: {'mean', 'std'}}}``
        (plus ``'s2_harmonize'`` where the data module recorded how it read
        Sentinel-2 digital numbers), or None when the checkpoint records no
        statistics (see
        :func:`~torchgeo_decur.checkpoints.architecture.data_statistics`).
    """
    hparams = ckpt.get('datamodule_hyper_parameters') or {}
    stats = data_statistics(ckpt)
    if not stats:
        return None
    out: dict[str, Any] = {
        'scaling': SCALING_FORMULA,
        'statistics': {
            m: {'mean': list(s['mean']), 'std': list(s['std'])}
            for m, s in stats.items()
        },
    }
    if hparams.get('s2_harmonize') is not None:
        out['s2_harmonize'] = hparams['s2_harmonize']
    return out


__all__ = (
    'export_checkpoint',
    'input_scaling',
    'prepare_output_dir',
    'replace_folder',
    'stage_timm_folder',
)
