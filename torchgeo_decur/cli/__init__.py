"""What the ``torchgeo-decur`` subcommands do, one module each.

The command line itself (the argument parsers and :func:`main`) is the
package ``torchgeo_decur_cli``, which imports neither torch nor this package, so
that ``torchgeo-decur --help`` answers at once. After parsing, :func:`main`
imports the module of this package named by the subcommand and calls its
``run(args)``, which returns the exit status. The library code a subcommand
calls lives in the layer it belongs to (datasets, export, ...), so nothing below
this package imports it.

Expected failures (a missing or damaged input file, an output that exists, a
full or read-only disk) raise ``ValueError`` or ``OSError``; :func:`main`
reports them in one line ``torchgeo-decur <command>: error: <message naming
the path>`` on stderr and exits with status 1, without a traceback.
"""

from torchgeo_decur_cli import main

__all__ = ('main',)
