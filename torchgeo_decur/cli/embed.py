"""``torchgeo-decur embed``: per-patch embeddings of own rasters, chips or shards.

Builds the encoders (:class:`~torchgeo_decur.tasks.embedding.EmbeddingTask`) and
the data (:class:`~torchgeo_decur.datamodules.embedding.EmbeddingDataModule`) from
the parsed arguments, checks them against each other and runs Lightning's
``predict`` loop with :class:`~torchgeo_decur.callbacks.EmbeddingWriter`. The
arguments and their user-facing description are in ``torchgeo_decur_cli.embed``.
It runs inside :func:`~torchgeo_decur.options.command_line_options`, so the
readers' messages name their options as its arguments (``--on-invalid skip``).
"""

import argparse
import json
import os
from typing import Any

from ..options import command_line_options


def _pairs(values: list[str] | None, option: str) -> dict[str, str] | None:
    """``['s1=path', ...]`` → ``{'s1': 'path'}``."""
    if not values:
        return None
    out: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition('=')
        if not sep or not name or not path:
            raise ValueError(f'{option} takes MODALITY=PATH, got {value!r}')
        if name in out:
            raise ValueError(f'{option} names modality {name!r} twice')
        out[name] = path
    return out


def embed(args: argparse.Namespace) -> dict[str, Any]:
    """Run an embedding from parsed arguments.

    Args:
        args: Parsed ``embed`` arguments.

    Returns:
        The writer's summary (rank 0): ``patches``, ``dims``, ``files``,
        ``written_now``, ``seconds``, and ``skipped_shards`` (shards) or
        ``skipped`` (chip keys or raster files left out as invalid).
    """
    with command_line_options():
        return _embed(args)


def _embed(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`embed`, with the messages naming command-line options."""
    parquet = os.path.join(args.output_dir, 'embeddings.parquet')
    if not args.overwrite and os.path.exists(parquet):
        # Checked before torch loads; the writer checks again (every rank).
        raise FileExistsError(
            f'{parquet!r} exists; pass --overwrite (overwrite=True) to compute it again'
        )
    # Torch, Lightning and torchgeo load here, not when the parser is built.
    from lightning.pytorch import Trainer
    from torchgeo.datasets import RasterDataset

    from ..callbacks.embedding_writer import EmbeddingWriter
    from ..datamodules.embedding import EmbeddingDataModule, fit_config_data
    from ..embeddings import embedding_picture
    from ..export import prepare_output_dir
    from ..tasks.embedding import EmbeddingTask, check_input_channels

    rasters = _pairs(args.raster, '--raster')
    chips = _pairs(args.chips, '--chips')
    shards = _pairs(args.shards, '--shards')
    datasets = None
    given: dict[str, Any] = {'crs': args.crs, 'res': args.res}
    on_missing = args.on_missing
    on_invalid, s2_harmonize = args.on_invalid, args.s2_harmonize
    if args.config is not None:
        given = fit_config_data(args.config)
        datasets, chips, shards = (
            given.get(k) for k in ('datasets', 'chips', 'shards')
        )
        on_missing = on_missing or given.get('on_missing')
        on_invalid = on_invalid or given.get('on_invalid')
        s2_harmonize = s2_harmonize or given.get('s2_harmonize')
        given = {
            'crs': args.crs or given.get('crs'),
            'res': args.res or given.get('res'),
            'chip_options': given.get('chip_options'),
        }
    if args.on_missing is not None and shards is None:
        raise ValueError('--on-missing applies to shards (--shards or a --config)')
    if args.pattern is not None:
        if chips is None:
            raise ValueError('--pattern applies to chips (--chips or a --config)')
        given['chip_options'] = (given.get('chip_options') or {}) | {
            'pattern': args.pattern
        }
    if args.on_invalid is not None and shards is not None:
        raise ValueError(
            '--on-invalid applies to chips and rasters; shards take --on-missing'
        )
    if rasters is not None:
        datasets = {}
        for m, path in rasters.items():
            try:
                datasets[m] = RasterDataset(paths=path)
            except OSError as err:
                raise FileNotFoundError(f'--raster {m}={path}: {err}') from None
    out = prepare_output_dir(args.output_dir)
    writer = EmbeddingWriter(
        str(out),
        overwrite=args.overwrite,
        geotiff=not args.no_geotiff,
        geotiff_bands=args.geotiff_bands,
    )
    task = EmbeddingTask(
        args.encoder, args.modalities, args.fuse, args.model, args.scaling
    )
    data = EmbeddingDataModule(
        datasets=datasets,
        chips=chips,
        patch_size=args.patch_size,
        stride=args.stride,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        shards=shards,
        on_missing=on_missing or 'error',
        on_invalid=on_invalid or 'error',
        s2_harmonize=s2_harmonize or 'auto',
        progress=not args.no_progress,
        **given,
    )
    # Bad data are named before Lightning starts (and prints its device lines).
    data.setup('predict')
    check_input_channels(task.resolved, data.channels, data.describe())
    trainer = Trainer(
        accelerator=args.accelerator,
        devices=args.devices,
        num_nodes=args.num_nodes,
        logger=False,
        callbacks=[writer],
        enable_progress_bar=not args.no_progress,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.predict(task, data, return_predictions=False)
    if not writer.summary and trainer.is_global_zero:
        # Every patch was written by a run that stopped before merging its
        # parts: Lightning skips an empty loop and its hooks, so merge here.
        writer.summary = writer.merge(data.labels) | {
            'written_now': 0,
            'seconds': 0.0,
        }
    summary = dict(writer.summary)
    if summary and shards is not None:
        summary['skipped_shards'] = data.skipped_shards
    elif summary:
        summary['skipped'] = sorted(data.skipped)
    if summary and args.picture and data.datasets is not None:
        picture = out / 'embeddings.png'
        summary['files']['picture'] = embedding_picture(
            summary['files']['parquet'], picture, overwrite=True
        )
    return summary


def run(args: argparse.Namespace) -> int:
    """Run ``embed`` and print a summary line, then the summary as JSON.

    Args:
        args: Parsed arguments.

    Returns:
        Exit status 0 (failures raise; :func:`~torchgeo_decur.cli.main` reports
        them).
    """
    summary = embed(args)
    if not summary:  # a rank other than 0 under a multi-process launcher
        return 0
    patches, now, seconds = (
        summary['patches'],
        summary['written_now'],
        summary['seconds'],
    )
    dims = ', '.join(f'{k}: {v}' for k, v in summary['dims'].items())
    rate = now / seconds if seconds > 0 else 0.0
    skipped = summary.get('skipped_shards') or []
    left_out = (
        f'; {len(skipped)} shard(s) lacking a modality skipped: {", ".join(skipped)}'
        if skipped
        else ''
    )
    invalid = summary.get('skipped') or []
    if invalid:
        left_out += f'; {len(invalid)} invalid input(s) skipped: ' + ', '.join(invalid)
    print(
        f'embedded {patches} patches ({now} now, {patches - now} from an earlier '
        f'run; {dims} values each{left_out}) in {seconds:.1f} s ({rate:.1f} '
        'patches/s) -> ' + ', '.join(str(p) for p in summary['files'].values())
    )
    print(json.dumps(summary, indent=2, default=str))
    return 0


__all__ = ('embed', 'run')
