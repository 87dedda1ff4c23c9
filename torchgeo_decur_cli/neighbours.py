"""Arguments of ``torchgeo-decur neighbours`` (run by ``torchgeo_decur.cli.neighbours``)."""

import argparse

#: The text of its ``--help`` above the arguments (plain text, preformatted).
DESCRIPTION = """\
Read an embeddings.parquet of torchgeo-decur embed and print the -k nearest
patches (cosine distance by default) to a patch given by id or by a coordinate
in the file's CRS, one line per neighbour (--json: a JSON list):

    torchgeo-decur neighbours out/embeddings.parquet --id 12 -k 5
    torchgeo-decur neighbours out/embeddings.parquet --at 508100 5396300
"""

#: The subcommand's name.
NAME = 'neighbours'
#: Its line in ``torchgeo-decur --help``.
HELP = 'the k patches most similar to a patch of an embedding file'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``neighbours``.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument('embeddings', help='embeddings.parquet of torchgeo-decur embed')
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument('--id', type=int, help='id of the query patch')
    where.add_argument(
        '--at',
        nargs=2,
        type=float,
        metavar=('X', 'Y'),
        help="a coordinate in the file's CRS; the patch covering it is the query",
    )
    parser.add_argument('-k', type=int, default=5, help='neighbours (default: 5)')
    parser.add_argument('--column', help='vector column (per-modality files)')
    parser.add_argument(
        '--metric', choices=('cosine', 'euclidean'), default='cosine', help='distance'
    )
    parser.add_argument('--json', action='store_true', help='print JSON')
