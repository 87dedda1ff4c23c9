"""Arguments of ``torchgeo-decur info`` (run by ``torchgeo_decur.cli.info``)."""

import argparse

DESCRIPTION = """\
Describe what a checkpoint file holds: the layout (released joint file,
backbone-only file, RDA backbone, MiT backbone, Lightning task checkpoint,
export), the modalities, the architecture, each encoder's channel order and
expected input scaling, the projector size, the loss settings and the
epoch/step stored in the file. Files are read with weights_only=True; a file
that cannot be read gets one line on stderr and exit status 1.
"""


def register(subparsers: 'argparse._SubParsersAction[argparse.ArgumentParser]') -> None:
    """Add the ``info`` subcommand.

    Args:
        subparsers: The top-level parser's sub-parser collection.
    """
    parser = subparsers.add_parser(
        'info',
        help='describe a checkpoint or released DeCUR file',
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('file', help='.pth / .ckpt file')
    parser.add_argument(
        '--json', action='store_true', help='print the description as JSON'
    )
    parser.set_defaults(implementation='torchgeo_decur.cli.info')
