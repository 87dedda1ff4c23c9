"""Arguments of ``torchgeo-decur picture`` (run by ``torchgeo_decur.cli.picture``)."""

import argparse

#: The text of its ``--help`` above the arguments (plain text, preformatted).
DESCRIPTION = """\
Draw the correlation picture of a task checkpoint as a PNG: build the task and
data module of a torchgeo fit config, load the weights of the checkpoint, run
one validation pass (the seeded views of the validation loop) and draw the
correlation picture of the projector outputs, as the CorrelationPicture
callback logs it during training:

    torchgeo-decur picture output/quickstart/checkpoints/last.ckpt picture.png \\
        --config conf/quickstart.yaml

The PNG is written atomically; an existing file is refused unless --overwrite.
"""

#: The subcommand's name.
NAME = 'picture'
#: Its line in ``torchgeo-decur --help``.
HELP = 'draw the correlation picture of a task checkpoint as a PNG'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``picture``.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument('checkpoint', help='Lightning checkpoint of a task (.ckpt)')
    parser.add_argument('output', help='PNG file to write')
    parser.add_argument(
        '--config', required=True, help='the torchgeo fit config of the run'
    )
    parser.add_argument(
        '--max-samples', type=int, default=2048, help='validation samples used'
    )
    parser.add_argument(
        '--max-size', type=int, default=256, help='largest drawn matrix side'
    )
    parser.add_argument(
        '--accelerator', default='cpu', help='Lightning accelerator (default: cpu)'
    )
    parser.add_argument('--overwrite', action='store_true', help='replace output')
