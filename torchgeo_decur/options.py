"""How messages name an option: in the form the user types where they are.

Readers of this package (datasets, data modules, transforms) tell the user which
option changes what they do, e.g. "pass on_invalid='skip' to skip". The same
reader runs under Python, under ``torchgeo fit`` (where the option is a YAML key of
the same name) and under ``torchgeo-decur`` commands (where it is a command-line
argument). A message names an option through :func:`option`; a command that offers
the option as an argument wraps its run in :func:`command_line_options`, and the
message then reads "pass --on-invalid skip to skip"::

    raise ValueError(f'{problem} (pass {option("on_invalid", "skip")} to skip)')

The choice is kept in a :class:`~contextvars.ContextVar`, so it holds in the
thread that set it and in data loader workers forked from it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

#: ``'python'``: ``name='value'`` (the keyword argument, also the YAML key);
#: ``'command_line'``: ``--name value``.
Spelling = Literal['python', 'command_line']

_SPELLING: ContextVar[Spelling] = ContextVar('option_spelling', default='python')


def option(name: str, value: Any) -> str:
    """An option set to a value, as the user writes it where they are.

    Args:
        name: The option's Python (and YAML) name, e.g. ``'on_invalid'``.
        value: The value to suggest, e.g. ``'skip'``.

    Returns:
        ``"on_invalid='skip'"``, or ``'--on-invalid skip'`` inside
        :func:`command_line_options`.
    """
    if _SPELLING.get() == 'command_line':
        return f'--{name.replace("_", "-")} {value}'
    return f'{name}={value!r}'


@contextmanager
def command_line_options() -> Iterator[None]:
    """Name options as command-line arguments (``--name value``) inside the block.

    Yields:
        Nothing; the previous spelling is restored on exit.
    """
    token = _SPELLING.set('command_line')
    try:
        yield
    finally:
        _SPELLING.reset(token)


__all__ = ('Spelling', 'command_line_options', 'option')
