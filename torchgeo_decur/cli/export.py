"""``torchgeo-decur export``: a trained task checkpoint in the released DeCUR layouts."""

import argparse
import json
import os
from typing import Any

from .. import export as library


def register(subparsers: 'argparse._SubParsersAction[Any]') -> None:
    """Add the ``export`` subcommand.

    Args:
        subparsers: The top-level parser's sub-parser collection.
    """
    parser = subparsers.add_parser(
        'export',
        help='write a trained task checkpoint in the released DeCUR layouts',
        description=library.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('checkpoint', help='Lightning checkpoint (.ckpt)')
    parser.add_argument(
        '--output-dir', default='.', help='directory for the exported files'
    )
    parser.add_argument(
        '--name', default=None, help='file name prefix (default: checkpoint stem)'
    )
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace exported files that already exist (default: refuse)',
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``export`` and print a JSON summary.

    Args:
        args: Parsed arguments.

    Returns:
        Exit status 0 (failures raise; :func:`~torchgeo_decur.cli.main` reports
        them).
    """
    summary = library.export_checkpoint(
        args.checkpoint, args.output_dir, args.name, overwrite=args.overwrite
    )
    summary['files'] = {k: os.fspath(v) for k, v in summary['files'].items()}
    print(json.dumps(summary, indent=2))
    return 0
