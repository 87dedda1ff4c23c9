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
  keys; RDA: ``backbone.*`` + ``da<i>_l3/l4.*``; MiT without its DeCUR head).

Each file loads back with ``torchgeo.models.get_model('decur_<model>', weights=path)``
(``modality=2`` picks the second encoder of the joint file), with
``DeCURTask(weights=path)`` or with the authors' code.

The files are written atomically (see
:func:`~torchgeo_decur.models.checkpoints.save_atomically`): an interrupted export
leaves the previous files as they were, and existing files are only replaced with
``overwrite=True``. The command line is ``torchgeo-decur export``
(:mod:`torchgeo_decur.cli.export`).
"""

import os
from pathlib import Path
from typing import Any

from .models.checkpoints import (
    check_finite,
    load_checkpoint_file,
    save_atomically,
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
        (``joint`` and one entry per modality, as paths).

    Raises:
        FileNotFoundError: If ``checkpoint`` does not exist.
        FileExistsError: If an output exists and ``overwrite`` is False.
        ValueError: If it is not a Lightning checkpoint of a two-encoder task,
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
    hparams = ckpt['hyper_parameters']
    modalities = tuple(hparams.get('modalities', ()))
    if len(modalities) != 2:
        raise ValueError(
            f'{source} is not a checkpoint of a two-encoder task (hyper_parameters '
            f'modalities={modalities!r})'
        )
    m1, m2 = modalities
    backbones, projectors = split_joint_state_dict(ckpt['state_dict'], (m1, m2), source)
    joint = to_reference_joint(backbones, projectors)
    check_finite(joint, source)
    out = prepare_output_dir(output_dir)
    prefix = name or Path(source).stem
    files = {'joint': out / f'{prefix}_joint_decur.pth'}
    contents: dict[str | os.PathLike[str], Any] = {files['joint']: {'model': joint}}
    for position, modality in enumerate(modalities, start=1):
        files[modality] = out / f'{prefix}_{modality}_decur.pth'
        contents[files[modality]] = to_reference_backbone(backbones[modality], position)
    save_atomically(contents, overwrite=overwrite)
    return {
        'model': hparams.get('model'),
        'modalities': list(modalities),
        'in_channels': hparams.get('in_channels'),
        'files': files,
    }


__all__ = ('export_checkpoint', 'prepare_output_dir')
