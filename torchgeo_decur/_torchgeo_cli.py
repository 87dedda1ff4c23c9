"""One line instead of a traceback for bad input under the ``torchgeo`` command.

torchgeo's command line (``torchgeo fit --config ...``) builds the task and data
module from the YAML with jsonargparse, which wraps an error raised while the
task is built in a "Does not validate against any of the Union subtypes" report
of the task's full configuration, under a long traceback. The one line that says
what is wrong (a released file that cannot be downloaded and where to put it, a
``model`` that conflicts with the weights) is lost in it.

:func:`install`, called on ``import torchgeo_decur``, adds a ``sys.excepthook``
to the ``torchgeo`` command only (never to other programs): an uncaught
exception that is, or wraps, a ``ValueError`` or ``OSError`` raised by this
package's own code ends the command with ``torchgeo <subcommand>: error:
<message>`` on stderr and exit status 1. Anything else, and everything with
``TORCHGEO_DECUR_TRACEBACK=1`` set, keeps Python's traceback.
"""

import os
import sys
from collections.abc import Callable
from types import TracebackType

#: This package's folder: errors raised by code in it are its messages.
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

#: Set to show the full traceback of every error.
TRACEBACK_ENV = 'TORCHGEO_DECUR_TRACEBACK'

ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], None]


def _raised_here(error: BaseException) -> bool:
    """Whether the innermost frame of ``error``'s traceback is in this package."""
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
    return filename.startswith(PACKAGE_DIR + os.sep)


def bad_input(error: BaseException) -> BaseException | None:
    """The ``ValueError`` / ``OSError`` of this package that ``error`` is or wraps.

    Args:
        error: An uncaught exception.

    Returns:
        The first exception along the ``__cause__`` / ``__context__`` chain that
        is a ``ValueError`` or ``OSError`` raised by this package's code, or None.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ValueError | OSError) and _raised_here(current):
            return current
        current = current.__cause__ or current.__context__
    return None


def is_torchgeo_command(argv: list[str]) -> bool:
    """Whether this process is torchgeo's command line (``torchgeo`` or ``-m``)."""
    if not argv:
        return False
    program = os.path.normpath(argv[0])
    name = os.path.basename(program).removesuffix('.exe')
    return name == 'torchgeo' or program.endswith(
        os.path.join('torchgeo', '__main__.py')
    )


def one_line_hook(previous: ExceptHook, argv: list[str]) -> ExceptHook:
    """An excepthook that prints this package's bad-input errors in one line.

    Args:
        previous: The hook for everything else.
        argv: The command line, for the program and subcommand names.

    Returns:
        The hook.
    """
    subcommand = next((a for a in argv[1:2] if not a.startswith('-')), None)
    prog = f'torchgeo {subcommand}' if subcommand else 'torchgeo'

    def hook(
        kind: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        found = bad_input(error)
        if found is None or os.environ.get(TRACEBACK_ENV):
            previous(kind, error, tb)
            return
        print(f'{prog}: error: {found}', file=sys.stderr)

    hook.torchgeo_decur = True  # type: ignore[attr-defined]
    return hook


def install() -> None:
    """Install :func:`one_line_hook` in the ``torchgeo`` command (idempotent)."""
    if not is_torchgeo_command(sys.argv) or getattr(
        sys.excepthook, 'torchgeo_decur', False
    ):
        return
    sys.excepthook = one_line_hook(sys.excepthook, list(sys.argv))


__all__ = ('bad_input', 'install', 'is_torchgeo_command', 'one_line_hook')
