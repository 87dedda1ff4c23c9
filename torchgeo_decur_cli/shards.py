"""Arguments of ``torchgeo-decur shards`` (run by ``torchgeo_decur.cli.shards``)."""

import argparse

#: The text of its ``--help`` above the arguments (plain text, preformatted).
DESCRIPTION = """\
Write a dataset of this package (or any map-style dataset class yielding
image_<modality> tensors) as TerraMesh-layout WebDataset shards that
TerraMeshDataModule streams. A rerun with the same arguments resumes an
interrupted conversion.

    torchgeo-decur shards ssl4eo-s12 --root data/ssl4eo-s12 --out shards/ssl4eo
    torchgeo-decur shards bigearthnet-mm --root data/bigearthnet --out shards/ben \\
        --split train
    torchgeo-decur shards my_package.chips:ChipPairs --init-args '{"root": "chips"}' \\
        --out shards/chips
"""

#: The subcommand's name.
NAME = 'shards'
#: Its line in ``torchgeo-decur --help``.
HELP = 'write a paired dataset as TerraMesh-layout WebDataset shards'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``shards``.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument(
        'dataset',
        help="'ssl4eo-s12', 'bigearthnet-mm' or module.path:ClassName of any "
        'map-style dataset yielding image_<modality> tensors',
    )
    parser.add_argument('--root', help='dataset root directory')
    parser.add_argument('--out', required=True, help='shard root to write')
    parser.add_argument('--split', default='train', help='split folder (and split)')
    parser.add_argument(
        '--prefix', default=None, help='shard/sample name prefix (default: dataset)'
    )
    parser.add_argument('--samples-per-shard', type=int, default=1000)
    parser.add_argument('--compression', choices=['zstd', 'none'], default='zstd')
    parser.add_argument(
        '--seasons',
        type=int,
        nargs='+',
        default=[0, 1, 2, 3],
        help='ssl4eo-s12: timestamps written per location (default: all four)',
    )
    parser.add_argument(
        '--init-args', default=None, help='JSON object of further dataset arguments'
    )
    parser.add_argument(
        '--s2-harmonize',
        choices=['auto', 'always', 'never'],
        default=None,
        help="passed to the dataset's s2_harmonize (readers of Sentinel-2 of any "
        'date): remove the processing baseline 04.00 offset of 1000 DN; default: '
        "the dataset's own (auto)",
    )
