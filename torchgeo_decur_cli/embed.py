"""Arguments of ``torchgeo-decur embed`` (run by ``torchgeo_decur.cli.embed``)."""

import argparse

#: The text of its ``--help`` above the arguments (plain text, preformatted).
DESCRIPTION = """\
Per-patch embeddings of own rasters, chip folders or shards. Runs an encoder (a
released Weights member or its name, an export of torchgeo-decur export: a .pth
file or _timm folder, a Lightning task checkpoint; or several, one per modality,
e.g. x_s1_timm x_s2_timm) over

* rasters: --raster MODALITY=PATH per modality (a file or a folder of files,
  read as a torchgeo RasterDataset, put on one grid and intersected), cut into
  --patch-size windows every --stride pixels;
* chips: --chips MODALITY=FOLDER per modality (chips paired by file name),
* shards: --shards MODALITY=FOLDER per modality (TerraMesh-layout .tar shards as
  torchgeo-decur shards writes them, the folders side by side in one split
  folder; s1=root/train/S1GRD|S1RTC takes whichever a shard has; --on-missing
  skip leaves out shards lacking a modality, naming them),
* or --config FIT.yaml: the data of a torchgeo fit config of own rasters, chips
  or TerraMesh shards, read as for pretraining,

with the input scaling the encoder was trained with (Sentinel-2 offset removal
by --s2-harmonize; --on-invalid skip leaves out invalid chips and unreadable
raster files, naming them), and writes into OUTPUT_DIR
embeddings.parquet (GeoParquet: patch footprints, ids, vectors; the run's
settings in the file metadata), for rasters embeddings.tif (dense, one cell per
window) and with --picture embeddings.png (PCA of the vectors as RGB beside the
input):

    torchgeo-decur embed DeCURResNet50_Weights.SENTINEL2_L1C out/ \\
        --raster s2=data/s2 --patch-size 64 --stride 32 --picture

It is Lightning's predict loop: --devices 2 runs two processes, each writing its
share of the patches once. An interrupted run resumes (finished batches are
skipped) when run again with the same settings; other settings, or an existing
embeddings.parquet, are refused unless --overwrite.
"""

#: The subcommand's name.
NAME = 'embed'
#: Its line in ``torchgeo-decur --help``.
HELP = 'embed own rasters, chip folders or shards with an encoder (GeoParquet, GeoTIFF)'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``embed``.

    Args:
        parser: The subcommand's parser.
    """
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
        '--pattern',
        metavar='REGEX',
        help='chips: regular expression matching a whole file stem; its group '
        "'key' (else its first group) pairs the chips of the modalities, e.g. "
        "'(?:S1_)?(tile_\\d+)(?:_S2)?' (default: the stem)",
    )
    parser.add_argument(
        '--on-invalid',
        choices=('error', 'skip'),
        help='chips that cannot be read, lack a partner or differ in size or '
        'bands, and raster files that cannot be opened: error (default, or what '
        'the --config says) or skip them (named in the summary)',
    )
    parser.add_argument(
        '--s2-harmonize',
        choices=('auto', 'always', 'never'),
        help='remove the 1000 DN offset of Sentinel-2 processing baseline 04.00+ '
        '(s2... modalities, S2L1C/S2L2A shards): auto (default, or what the '
        '--config says: by the baseline in the name, an offset tag, else the '
        'date, 2022-01-25 on), always, or never (harmonized or older products)',
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
