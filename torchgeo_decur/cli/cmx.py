"""``torchgeo-decur cmx``: CMX weight files from a DeCUR MiT checkpoint."""

import argparse

from ..export_cmx import export_cmx


def run(args: argparse.Namespace) -> int:
    """Run ``torchgeo-decur cmx``.

    Args:
        args: Parsed arguments.

    Returns:
        Exit status 0 (failures raise; :func:`~torchgeo_decur.cli.main` reports
        them).
    """
    paths = export_cmx(
        args.weights, args.out_dir, args.modalities, args.stem, args.overwrite
    )
    for role, path in paths.items():
        print(f'{role}: {path}')
    return 0
