"""Arguments of ``torchgeo-decur cache-ssl4eo-s12``.

Run by ``torchgeo_decur.cli.cache_ssl4eo_s12``.
"""

import argparse

#: Cache encodings (the keys of ``torchgeo_decur.datasets.ssl4eo_s12_cache.DTYPES``,
#: written out so that the parser does not import numpy).
ENCODINGS = ('float32', 'raw', 'uint8')

#: The text of its ``--help`` above the arguments (plain text, preformatted).
DESCRIPTION = """\
Write a cache of paired SSL4EO-S12 locations: every timestamp and band of a
location and product, already on the size x size grid, in one .npy file. A
rerun with the same settings resumes; other settings are refused unless
--overwrite.
"""

#: The subcommand's name.
NAME = 'cache-ssl4eo-s12'
#: Its line in ``torchgeo-decur --help``.
HELP = (
    'write a cache of paired SSL4EO-S12 locations (one .npy array per location '
    'and product)'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``cache-ssl4eo-s12``.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument('--root', required=True, help='SSL4EO-S12 GeoTIFF root')
    parser.add_argument('--output', required=True, help='cache directory to write')
    parser.add_argument(
        '--encoding',
        choices=ENCODINGS,
        default='raw',
        help='raw: lossless S1 float32 + S2 uint16 (default); float32: lossless; '
        'uint8: the reference quantised scaling (exact for normalization: decur_uint8)',
    )
    parser.add_argument('--s2-product', choices=['s2c', 's2a'], default='s2c')
    parser.add_argument('--size', type=int, default=264, help='grid size in px')
    parser.add_argument('--on-invalid', choices=['error', 'skip'], default='error')
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='delete a cache already in --output (any settings) and write it anew',
    )
