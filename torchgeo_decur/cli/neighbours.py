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


__all__ = ('run',)
