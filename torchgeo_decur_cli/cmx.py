"""Arguments of ``torchgeo-decur cmx`` (run by ``torchgeo_decur.cli.cmx``)."""

import argparse

#: The text of its ``--help`` above the arguments (plain text, preformatted).
DESCRIPTION = """\
Write the dual-branch file CMX loads (RGB encoder keys, then HHA encoder keys
with the extra_ prefix) and the two plain encoder files from a DeCUR joint
checkpoint (released file or member name, or a DeCURTask checkpoint). Files are
written atomically; existing ones are replaced only with --overwrite.
"""

#: The subcommand's name.
NAME = 'cmx'
#: Its line in ``torchgeo-decur --help``.
HELP = 'write CMX weight files from a DeCUR MiT checkpoint'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``cmx``.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument('weights', help='joint checkpoint path or Weights member name')
    parser.add_argument('--out-dir', default='.', help='output folder (default: .)')
    parser.add_argument(
        '--modalities',
        nargs=2,
        default=['rgb', 'hha'],
        metavar=('RGB', 'X'),
        help='modality names, RGB first (default: rgb hha)',
    )
    parser.add_argument('--stem', default=None, help='file name stem')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace files that already exist (default: refuse)',
    )
