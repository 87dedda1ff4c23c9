"""Arguments of ``torchgeo-decur info`` (run by ``torchgeo_decur.cli.info``)."""

import argparse

#: The text of its ``--help`` above the arguments (plain text, preformatted).
DESCRIPTION = """\
Describe what a checkpoint file holds: the layout (released joint file,
backbone-only file, RDA backbone, MiT backbone, Lightning task checkpoint,
export), the modalities, the architecture, each encoder's channel order and
expected input scaling, the projector size, the loss settings and the
epoch/step stored in the file. Files are read with weights_only=True; a file
that cannot be read gets one line on stderr and exit status 1.
"""

#: The subcommand's name.
NAME = 'info'
#: Its line in ``torchgeo-decur --help``.
HELP = 'describe a checkpoint or released DeCUR file'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``info``.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument('file', help='.pth / .ckpt file')
    parser.add_argument(
        '--json', action='store_true', help='print the description as JSON'
    )
