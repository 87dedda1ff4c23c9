"""Export a trained two-encoder task to the layouts of the released DeCUR files.

``torchgeo-decur export CHECKPOINT`` turns a Lightning checkpoint of a
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
"""

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch

from .models.checkpoints import (
    split_joint_state_dict,
    to_reference_backbone,
    to_reference_joint,
)


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    name: str | None = None,
) -> dict[str, Any]:
    """Write the joint and backbone-only files of a trained task.

    Args:
        checkpoint: Lightning checkpoint (``.ckpt``) of a two-encoder task.
        output_dir: Directory for the exported files (created if needed).
        name: File name prefix (default: the checkpoint's stem).

    Returns:
        A summary: ``model``, ``modalities``, ``in_channels`` and ``files``
        (``joint`` for two modalities, one entry per modality and
        ``input_scaling`` when recorded, as paths).

    Raises:
        FileNotFoundError: If ``checkpoint`` does not exist.
        ValueError: If it is not a Lightning checkpoint of a multi-encoder task.
    """
    source = os.fspath(checkpoint)
    if not os.path.isfile(source):
        raise FileNotFoundError(f'checkpoint file {source!r} does not exist')
    ckpt = torch.load(source, map_location='cpu', weights_only=True)
    if not isinstance(ckpt, dict) or not {'state_dict', 'hyper_parameters'} <= set(
        ckpt
    ):
        raise ValueError(
            f'{source} is not a Lightning checkpoint (no state_dict and '
            'hyper_parameters entries)'
        )
    hparams = ckpt['hyper_parameters']
    modalities = tuple(hparams.get('modalities', ()))
    if len(modalities) < 2:
        raise ValueError(
            f'{source} is not a checkpoint of a multi-encoder task (hyper_parameters '
            f'modalities={modalities!r})'
        )
    backbones, projectors = split_joint_state_dict(
        ckpt['state_dict'], modalities, source
    )
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = name or Path(source).stem
    files: dict[str, Path] = {}
    if len(modalities) == 2:
        # The released joint layout holds exactly two encoders.
        files['joint'] = out / f'{prefix}_joint_decur.pth'
        torch.save({'model': to_reference_joint(backbones, projectors)}, files['joint'])
    for position, modality in enumerate(modalities, start=1):
        files[modality] = out / f'{prefix}_{modality}_decur.pth'
        torch.save(
            to_reference_backbone(backbones[modality], min(position, 2)),
            files[modality],
        )
    scaling = input_scaling(ckpt)
    if scaling is not None:
        files['input_scaling'] = out / f'{prefix}_input_scaling.json'
        tmp = files['input_scaling'].with_name(files['input_scaling'].name + '.tmp')
        tmp.write_text(json.dumps(scaling, indent=2))
        os.replace(tmp, files['input_scaling'])
    return {
        'model': hparams.get('model'),
        'modalities': list(modalities),
        'in_channels': hparams.get('in_channels'),
        'files': files,
    }


def input_scaling(ckpt: dict[str, Any]) -> dict[str, Any] | None:
    """The input scaling a checkpoint's data module recorded, if any.

    Args:
        ckpt: A loaded Lightning checkpoint.

    Returns:
        ``{'scaling': <formula>, 'statistics': {modality: {'mean', 'std'}}}`` or
        None when the data module stored no ``statistics`` hyperparameter.
    """
    hparams = ckpt.get('datamodule_hyper_parameters') or {}
    stats = hparams.get('statistics') if isinstance(hparams, dict) else None
    if not stats:
        return None
    return {
        'scaling': 'clip((x - (mean - 2 std)) / (4 std), 0, 1) per band, raw units',
        'statistics': {
            m: {'mean': list(s['mean']), 'std': list(s['std'])}
            for m, s in stats.items()
        },
    }


def register(subparsers: Any) -> None:
    """Add the ``export`` subcommand.

    Args:
        subparsers: The top-level parser's sub-parser collection.
    """
    parser = subparsers.add_parser(
        'export',
        help='write a trained task checkpoint in the released DeCUR layouts',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('checkpoint', help='Lightning checkpoint (.ckpt)')
    parser.add_argument(
        '--output-dir', default='.', help='directory for the exported files'
    )
    parser.add_argument(
        '--name', default=None, help='file name prefix (default: checkpoint stem)'
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``export`` and print a JSON summary.

    Args:
        args: Parsed arguments.

    Returns:
        Exit status 0.
    """
    summary = export_checkpoint(args.checkpoint, args.output_dir, args.name)
    summary['files'] = {k: os.fspath(v) for k, v in summary['files'].items()}
    print(json.dumps(summary, indent=2))
    return 0


__all__ = ('export_checkpoint', 'input_scaling', 'register', 'run')
