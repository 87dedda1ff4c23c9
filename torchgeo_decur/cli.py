"""The ``torchgeo-decur`` command: utilities next to ``torchgeo fit``.

Each subcommand lives in the module that implements its feature and contributes
itself through a ``register(subparsers)`` function listed in :data:`COMMANDS`;
``register`` adds an ``argparse`` sub-parser whose ``func`` default runs it.
"""

import argparse
import importlib
from collections.abc import Sequence

#: Modules that provide a ``register(subparsers)`` function, one per subcommand.
COMMANDS: tuple[str, ...] = (
    'torchgeo_decur.export',  # export
    'torchgeo_decur.export_cmx',  # cmx
    'torchgeo_decur.datasets.ssl4eo_s12_cache',  # cache-ssl4eo-s12
    'torchgeo_decur.info_cli',  # info
    'torchgeo_decur.picture_cli',  # picture
)


def build_parser() -> argparse.ArgumentParser:
    """Assemble the parser from every registered subcommand.

    Returns:
        The top-level parser.
    """
    parser = argparse.ArgumentParser(
        prog='torchgeo-decur', description='DeCUR utilities for TorchGeo.'
    )
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        Process exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, 'func', None) is None:
        parser.print_help()
        return 2
    status: int = args.func(args)
    return status


if __name__ == '__main__':
    raise SystemExit(main())
