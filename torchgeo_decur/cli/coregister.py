r"""``torchgeo-decur coregister``: put your own rasters on one grid, once.

Reads the ``data:`` section of a ``torchgeo fit`` config (a
``MultimodalGeoDataModule`` with one torchgeo RasterDataset per modality), and
writes every modality onto the common grid (the data module's CRS and
resolution, extent = the ground all modalities cover) as Cloud-Optimized GeoTIFF
tiles, in parallel over tiles. Train from them with
``--data.init_args.coregistered <output>``: patches become windowed reads
instead of warping every file per patch. A rerun with the same settings resumes;
other settings or changed source files are refused unless ``--overwrite``.

Example::

    torchgeo-decur coregister --config conf/decur_own_rasters.yaml \\
        --output data/own_rasters_coregistered --num-workers 8
    torchgeo fit --config conf/decur_own_rasters.yaml \\
        --data.init_args.coregistered data/own_rasters_coregistered
"""

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..datamodules import MultimodalGeoDataModule


def load_datamodule(config: str) -> 'MultimodalGeoDataModule':
    """Instantiate the ``data:`` section of a config.

    Args:
        config: YAML file with a ``data:`` section (``class_path`` +
            ``init_args``, as ``torchgeo fit`` takes it).

    Returns:
        The data module (not set up).

    Raises:
        FileNotFoundError: If ``config`` does not exist.
        ValueError: If it has no ``data:`` section (see
            :func:`~torchgeo_decur.datamodules.utils.read_data_section`) or that is
            not a MultimodalGeoDataModule.
    """
    from jsonargparse import ArgumentParser

    from ..datamodules import MultimodalGeoDataModule
    from ..datamodules.utils import read_data_section

    data = read_data_section(config)
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument('--data', type=MultimodalGeoDataModule)
    try:
        parsed = parser.parse_object({'data': data})
    except Exception as err:  # jsonargparse's ArgumentError and friends
        raise ValueError(
            f'the data: section of {config!r} does not configure a '
            f'MultimodalGeoDataModule: {err}'
        ) from None
    datamodule: MultimodalGeoDataModule = parser.instantiate_classes(parsed).data
    return datamodule


def run(args: argparse.Namespace) -> int:
    """Write the store described by the parsed arguments.

    Args:
        args: Parsed ``coregister`` arguments.

    Returns:
        Exit status 0 (failures raise; :func:`~torchgeo_decur.cli.main` reports
        them).
    """
    import contextlib

    from ..datamodules.coregistered import coregister

    datamodule = load_datamodule(args.config)
    # torchgeo announces each CRS/resolution change on stdout.
    with contextlib.redirect_stdout(sys.stderr):
        manifest = coregister(
            datamodule,
            args.output,
            tile_size=args.tile_size,
            num_workers=args.num_workers,
            overwrite=args.overwrite,
        )
    grid = manifest['grid']
    print(
        f'wrote {len(manifest["tiles"])} tiles x {len(manifest["modalities"])} '
        f'modalities ({", ".join(manifest["modalities"])}) on a {grid["width"]} x '
        f'{grid["height"]} px grid of {grid["res"][0]:g} x {grid["res"][1]:g} to '
        f'{args.output}; train with --data.init_args.coregistered {args.output}'
    )
    return 0


__all__ = ('load_datamodule', 'run')
