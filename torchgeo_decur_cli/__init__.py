"""The ``torchgeo-decur`` command line, importable without torch.

``torchgeo-decur --help`` and ``torchgeo-decur <command> --help`` must answer at
once, so the argument parsers live here, apart from ``torchgeo_decur`` (whose
``__init__`` imports torch to register the models and weights): this package
uses the standard library only. Each subcommand is a module of this package
holding its ``NAME``, ``HELP`` line, ``DESCRIPTION`` and ``add_arguments(parser)``;
the module of the same name in ``torchgeo_decur.cli`` carries it out with
``run(args)``, which returns the exit status. :func:`main` parses first and
imports that module only then.

Expected failures (a missing or damaged input file, an output that exists, a
full or read-only disk) end with one line ``torchgeo-decur <command>: error:
<message naming the path>`` on stderr and exit status 1, without a traceback.
"""

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import (
    cache_ssl4eo_s12,
    cmx,
    coregister,
    embed,
    export,
    info,
    neighbours,
    picture,
    shards,
)

#: The subcommand modules, in the order ``torchgeo-decur --help`` lists them.
COMMANDS = (
    export,
    cmx,
    cache_ssl4eo_s12,
    shards,
    info,
    picture,
    embed,
    neighbours,
    coregister,
)

#: Exceptions that mean bad input or a failing disk rather than a bug: reported in
#: one line instead of a traceback. (torchgeo's DatasetNotFoundError is an OSError.)
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def build_parser() -> argparse.ArgumentParser:
    """Assemble the parser from every subcommand (no torch, no Lightning).

    Returns:
        The top-level parser.
    """
    parser = argparse.ArgumentParser(
        prog='torchgeo-decur', description='DeCUR utilities for TorchGeo.'
    )
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for command in COMMANDS:
        sub = subparsers.add_parser(
            command.NAME,
            help=command.HELP,
            description=command.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub)
        module = command.__name__.rpartition('.')[2]
        sub.set_defaults(implementation=f'torchgeo_decur.cli.{module}')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line: parse, then import and run the subcommand.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        Process exit status: 0 on success, 1 for an expected failure (reported
        on stderr in one line), 2 for a usage error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        module = importlib.import_module(args.implementation)
        status: int = module.run(args)
    except EXPECTED_ERRORS as err:
        message = ' '.join(str(err).split()) or type(err).__name__
        print(f'{parser.prog} {args.command}: error: {message}', file=sys.stderr)
        return 1
    return status


__all__ = ('COMMANDS', 'EXPECTED_ERRORS', 'build_parser', 'main')
