r"""``torchgeo-decur neighbours``: the patches most similar to one patch.

Reads an ``embeddings.parquet`` of ``torchgeo-decur embed`` and prints the ``-k``
nearest patches (cosine distance by default) to a patch given by id or by a
coordinate in the file's CRS, one line per neighbour (``--json``: a JSON list)::

    torchgeo-decur neighbours out/embeddings.parquet --id 12 -k 5
    torchgeo-decur neighbours out/embeddings.parquet --at 508100 5396300
"""

import argparse
import json
from dataclasses import asdict
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``neighbours`` subcommand.

    Args:
        subparsers: The top-level parser's sub-parser collection.
    """
    parser = subparsers.add_parser(
        'neighbours',
        help='the k patches most similar to a patch of an embedding file',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``neighbours``.

    Args:
        args: Parsed arguments.

    Returns:
        Exit status 0.
    """
    from ..embeddings import nearest_patches

    found = nearest_patches(
        args.embeddings,
        args.k,
        patch_id=args.id,
        point=args.at,
        column=args.column,
        metric=args.metric,
    )
    if args.json:
        print(json.dumps([asdict(n) for n in found], indent=2))
        return 0
    for n in found:
        name = f' key {n.key}' if n.key is not None else ''
        box = ', '.join(f'{v:.6g}' for v in n.bounds)
        print(f'patch {n.patch_id}{name}: distance {n.distance:.6f}, bounds ({box})')
    return 0


__all__ = ('register', 'run')
