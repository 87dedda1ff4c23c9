"""``torchgeo-decur info FILE``: describe what a checkpoint file holds.

Prints the layout (released joint file, backbone-only file, RDA backbone, MiT
backbone, Lightning task checkpoint), the modalities, the architecture, each
encoder's channel order and expected input scaling, the projector size, the
loss settings and the epoch/step stored in the file. Files are read with
``weights_only=True``; a file that cannot be read gets one line on stderr and
exit status 1.
"""

import argparse
import json
import sys

from ..weights.inspect import inspect_checkpoint


def run(args: argparse.Namespace) -> int:
    """Run ``info``.

    Args:
        args: Parsed arguments (``file``, ``json``).

    Returns:
        0, or 1 when the file cannot be read or holds no known layout.
    """
    try:
        info = inspect_checkpoint(args.file)
    except (OSError, ValueError) as error:
        message = ' '.join(str(error).split())
        print(f'torchgeo-decur info: error: {message}', file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(info.as_dict(), indent=2, default=str))
    else:
        print('\n'.join(info.lines()))
    return 0


__all__ = ('run',)
