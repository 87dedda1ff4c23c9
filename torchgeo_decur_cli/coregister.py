"""Arguments of ``torchgeo-decur coregister`` (run by ``torchgeo_decur.cli.coregister``)."""

import argparse

#: The text of its ``--help`` above the arguments (plain text, preformatted).
DESCRIPTION = """\
Read the data: section of a torchgeo fit config (a MultimodalGeoDataModule with
one torchgeo RasterDataset per modality) and write every modality onto the
common grid (the data module's CRS and resolution, extent = the ground all
modalities cover) as Cloud-Optimized GeoTIFF tiles, in parallel over tiles.
Train from them with --data.init_args.coregistered <output>: patches become
windowed reads instead of warping every file per patch. A rerun with the same
settings resumes; other settings or changed source files are refused unless
--overwrite.

    torchgeo-decur coregister --config conf/decur_own_rasters.yaml \\
        --output data/own_rasters_coregistered --num-workers 8
    torchgeo fit --config conf/decur_own_rasters.yaml \\
        --data.init_args.coregistered data/own_rasters_coregistered
"""

#: The subcommand's name.
NAME = 'coregister'
#: Its line in ``torchgeo-decur --help``.
HELP = (
    'write the modalities of an own-raster data config onto one grid as '
    'Cloud-Optimized GeoTIFF tiles, read later without warping'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``coregister``.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument(
        '--config',
        required=True,
        help='YAML whose data: section configures MultimodalGeoDataModule (e.g. the '
        'torchgeo fit config)',
    )
    parser.add_argument('--output', required=True, help='store directory to write')
    parser.add_argument(
        '--tile-size', type=int, default=1024, help='tile side length in px'
    )
    parser.add_argument(
        '--num-workers', type=int, default=0, help='processes writing tiles'
    )
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='delete a store already in --output (any settings) and write it anew',
    )
