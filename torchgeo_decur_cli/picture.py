"""Arguments of ``torchgeo-decur picture`` (run by ``torchgeo_decur.cli.picture``)."""

import argparse

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


def register(subparsers: 'argparse._SubParsersAction[argparse.ArgumentParser]') -> None:
    """Add the ``picture`` subcommand.

    Args:
        subparsers: The top-level parser's sub-parser collection.
    """
    parser = subparsers.add_parser(
        'picture',
        help='draw the correlation picture of a task checkpoint as a PNG',
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    parser.set_defaults(implementation='torchgeo_decur.cli.picture')
