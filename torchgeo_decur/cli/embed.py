r"""``torchgeo-decur embed``: per-patch embeddings of own rasters, chips or shards.

Runs an encoder (a released Weights member or its name, an export of
``torchgeo-decur export``: a ``.pth`` file or ``_timm`` folder, a Lightning task
checkpoint; or several, one per modality, e.g. ``x_s1_timm x_s2_timm``) over

* rasters: ``--raster MODALITY=PATH`` per modality (a file or a folder of files,
  read as a torchgeo RasterDataset, put on one grid and intersected), cut into
  ``--patch-size`` windows every ``--stride`` pixels;
* chips: ``--chips MODALITY=FOLDER`` per modality (chips paired by file name),
* shards: ``--shards MODALITY=FOLDER`` per modality (TerraMesh-layout ``.tar``
  shards as ``torchgeo-decur shards`` writes them, the folders side by side in
  one split folder; ``s1=root/train/S1GRD|S1RTC`` takes whichever a shard has;
  ``--on-missing skip`` leaves out shards lacking a modality, naming them),
* or ``--config FIT.yaml``: the data of a ``torchgeo fit`` config of own rasters,
  chips or TerraMesh shards, read as for pretraining,

with the input scaling the encoder was trained with, and writes into OUTPUT_DIR
``embeddings.parquet`` (GeoParquet: patch footprints, ids, vectors; the run's
settings in the file metadata), for rasters ``embeddings.tif`` (dense, one cell
per window) and with ``--picture`` ``embeddings.png`` (PCA of the vectors as RGB
beside the input)::

    torchgeo-decur embed DeCURResNet50_Weights.SENTINEL2_L1C out/ \
        --raster s2=data/s2 --patch-size 64 --stride 32 --picture

It is Lightning's ``predict`` loop (:class:`~torchgeo_decur.tasks.embedding.EmbeddingTask`
with :class:`~torchgeo_decur.callbacks.EmbeddingWriter`): ``--devices 2`` runs two
processes, each writing its share of the patches once. An interrupted run
resumes (finished batches are skipped) when run again with the same settings;
other settings, or an existing ``embeddings.parquet``, are refused unless
``--overwrite``. Errors print one line and exit 1.
"""

import argparse
import json
import os
from typing import Any


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


def register(subparsers: Any) -> None:
    """Add the ``embed`` subcommand.

    Args:
        subparsers: The top-level parser's sub-parser collection.
    """
    parser = subparsers.add_parser(
        'embed',
        help='embed own rasters, chip folders or shards with an encoder '
        '(GeoParquet, GeoTIFF)',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        'encoder',
        nargs='+',
        help='Weights member name, export (.pth or _timm folder) or task checkpoint '
        '(.ckpt); several (one per modality, MODALITY=PATH to name one) are put '
        'together',
    )
    parser.add_argument('output_dir', help='folder of the outputs (created if needed)')
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument(
        '--raster',
        action='append',
        metavar='MODALITY=PATH',
        help='raster file or folder of one modality (repeat per modality)',
    )
    data.add_argument(
        '--chips',
        action='append',
        metavar='MODALITY=FOLDER',
        help='chip folder of one modality (repeat per modality)',
    )
    data.add_argument(
        '--shards',
        action='append',
        metavar='MODALITY=FOLDER',
        help='folder of TerraMesh-layout .tar shards of one modality (repeat per '
        'modality)',
    )
    data.add_argument(
        '--config',
        metavar='FIT.yaml',
        help='the data section of a torchgeo fit config (own rasters, chips or '
        'TerraMesh shards)',
    )
    parser.add_argument(
        '--on-missing',
        choices=('error', 'skip'),
        help='shards lacking one of the modalities: error (default, or what the '
        '--config says) or skip them (named in the summary)',
    )
    parser.add_argument(
        '--modalities', nargs='+', help='encoders to use (default: all the source has)'
    )
    parser.add_argument(
        '--fuse',
        choices=('concat', 'separate'),
        default='concat',
        help='one concatenated vector per patch, or one per modality',
    )
    parser.add_argument('--model', help='architecture of files that do not say it')
    parser.add_argument(
        '--scaling',
        help="'none' (inputs already scaled) or a JSON file of statistics "
        '(default: the scaling the encoder records)',
    )
    parser.add_argument('--patch-size', type=int, default=64, help='window (pixels)')
    parser.add_argument('--stride', type=int, help='pixels between windows')
    parser.add_argument('--crs', help='CRS of the common grid (default: first raster)')
    parser.add_argument('--res', type=float, help='resolution of the common grid')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument(
        '--geotiff-bands',
        type=int,
        help='principal components in the GeoTIFF (default: every vector entry)',
    )
    parser.add_argument('--no-geotiff', action='store_true', help='skip the GeoTIFF')
    parser.add_argument(
        '--picture', action='store_true', help='also draw embeddings.png (rasters)'
    )
    parser.add_argument('--accelerator', default='cpu', help='Lightning accelerator')
    parser.add_argument('--devices', type=int, default=1, help='processes/devices')
    parser.add_argument('--num-nodes', type=int, default=1, help='nodes')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--overwrite', action='store_true', help='start over')
    parser.set_defaults(func=run)


def embed(args: argparse.Namespace) -> dict[str, Any]:
    """Run an embedding from parsed arguments.

    Args:
        args: Parsed ``embed`` arguments.

    Returns:
        The writer's summary (rank 0): ``patches``, ``dims``, ``files``,
        ``written_now``, ``seconds``.
    """
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
    from ..datasets.terramesh import MissingModalityError
    from ..embeddings import embedding_picture
    from ..export import prepare_output_dir
    from ..tasks.embedding import EmbeddingTask, check_input_channels

    rasters = _pairs(args.raster, '--raster')
    chips = _pairs(args.chips, '--chips')
    shards = _pairs(args.shards, '--shards')
    datasets = None
    given: dict[str, Any] = {'crs': args.crs, 'res': args.res}
    on_missing = args.on_missing
    if args.config is not None:
        given = fit_config_data(args.config)
        datasets, chips, shards = (
            given.get(k) for k in ('datasets', 'chips', 'shards')
        )
        on_missing = on_missing or given.get('on_missing')
        given = {
            'crs': args.crs or given.get('crs'),
            'res': args.res or given.get('res'),
            'chip_options': given.get('chip_options'),
        }
    if args.on_missing is not None and shards is None:
        raise ValueError('--on-missing applies to shards (--shards or a --config)')
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
        **given,
    )
    # Bad data are named before Lightning starts (and prints its device lines).
    try:
        data.setup('predict')
    except MissingModalityError as err:
        raise MissingModalityError(
            err.problem,
            'pass --on-missing skip to leave such shards out, or give alternatives '
            "such as 's1=ROOT/SPLIT/S1GRD|S1RTC'",
        ) from None
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
    summary = dict(writer.summary)
    if summary and shards is not None:
        summary['skipped_shards'] = data.skipped_shards
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
    print(
        f'embedded {patches} patches ({now} now, {patches - now} from an earlier '
        f'run; {dims} values each{left_out}) in {seconds:.1f} s ({rate:.1f} '
        'patches/s) -> ' + ', '.join(str(p) for p in summary['files'].values())
    )
    print(json.dumps(summary, indent=2, default=str))
    return 0


__all__ = ('embed', 'register', 'run')
