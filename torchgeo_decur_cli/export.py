"""Arguments of ``torchgeo-decur export`` (run by ``torchgeo_decur.cli.export``)."""

import argparse

#: The text of its ``--help`` above the arguments (plain text, preformatted).
DESCRIPTION = """\
Write a trained task checkpoint in the layouts of the released DeCUR files, into
--output-dir:

* <name>_joint_decur.pth (two modalities only): both encoders and projectors in
  the released joint layout, which the authors' loaders read;
* <name>_<modality>_decur.pth per modality: the encoder alone, in the released
  backbone layout;
* <name>_<modality>_timm/ per modality: the encoder in timm's Hugging Face
  layout (config.json + model.safetensors, with the architecture, in_chans and
  the input scaling): timm.create_model('local-dir:<folder>', pretrained=True)
  builds the trained encoder;
* <name>_input_scaling.json when the run recorded the band statistics its
  inputs were scaled with.

Each file loads back with torchgeo.models.get_model('decur_<model>',
weights=path) or DeCURTask(weights=path). Files are written atomically; existing
ones are replaced only with --overwrite.
"""

#: The subcommand's name.
NAME = 'export'
#: Its line in ``torchgeo-decur --help``.
HELP = 'write a trained task checkpoint in the released DeCUR layouts'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``export``.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument('checkpoint', help='Lightning checkpoint (.ckpt)')
    parser.add_argument(
        '--output-dir', default='.', help='directory for the exported files'
    )
    parser.add_argument(
        '--name', default=None, help='file name prefix (default: checkpoint stem)'
    )
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace exported files that already exist (default: refuse)',
    )
