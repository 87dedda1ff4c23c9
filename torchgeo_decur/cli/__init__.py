"""The ``torchgeo-decur`` command: utilities next to ``torchgeo fit``.

Every subcommand is a module of this package with a ``register(subparsers)``
function, listed in :data:`COMMANDS`; ``register`` adds an ``argparse`` sub-parser
whose ``func`` default runs it and returns the exit status. The library code a
subcommand calls lives in the layer it belongs to (datasets, models, ...), so
nothing below this package imports it.

Expected failures (a missing or damaged input file, an output that exists, a
full or read-only disk) end with one line ``torchgeo-decur <command>: error:
<message naming the path>`` on stderr and exit status 1, without a traceback.
"""

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

#: Modules that provide a ``register(subparsers)`` function, one per subcommand.
COMMANDS: tuple[str, ...] = (
    'torchgeo_decur.cli.export',  # export
    'torchgeo_decur.cli.cmx',  # cmx
    'torchgeo_decur.cli.cache_ssl4eo_s12',  # cache-ssl4eo-s12
    'torchgeo_decur.cli.shards',  # shards
    'torchgeo_decur.cli.info',  # info
    'torchgeo_decur.cli.picture',  # picture
    'torchgeo_decur.cli.embed',  # embed
    'torchgeo_decur.cli.neighbours',  # neighbours
    'torchgeo_decur.cli.coregister',  # coregister
)

#: Exceptions that mean bad input or a failing disk rather than a bug: reported in
#: one line instead of a traceback. (torchgeo's DatasetNotFoundError is an OSError.)
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


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
    for sub in subparsers.choices.values():
        sub.description = plain_text(sub.description)
        for action in sub._actions:
            action.help = plain_text(action.help)
    for choice in subparsers._choices_actions:
        choice.help = plain_text(choice.help)
    return parser


#: A Sphinx cross-reference role, e.g. :func:`~torchgeo_decur.export.export_checkpoint`.
_ROLE = re.compile(r':[a-z]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`')


def plain_text(text: str | None) -> str | None:
    """Help text without reStructuredText markup, for the terminal.

    ``:func:`~a.b.c``` becomes ``c`` (``a.b.c`` without the tilde), double
    backticks become nothing.

    Args:
        text: A docstring or help string.

    Returns:
        The text as a terminal shows it best.
    """
    if text is None:
        return None

    def name(match: re.Match[str]) -> str:
        target = match.group(1).strip()
        return target.rsplit('.', 1)[-1] if match.group(0).count('~') else target

    return _ROLE.sub(name, text).replace('``', '')


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        Process exit status: 0 on success, 1 for an expected failure (reported
        on stderr in one line), 2 for a usage error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, 'func', None) is None:
        parser.print_help()
        return 2
    try:
        status: int = args.func(args)
    except EXPECTED_ERRORS as err:
        message = ' '.join(str(err).split()) or type(err).__name__
        print(f'{parser.prog} {args.command}: error: {message}', file=sys.stderr)
        return 1
    return status


if __name__ == '__main__':
    raise SystemExit(main())
