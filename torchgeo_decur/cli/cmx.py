"""``torchgeo-decur cmx``: CMX weight files from a DeCUR MiT checkpoint."""

import argparse

from ..export_cmx import export_cmx


def run(args: argparse.Namespace) -> int:
    """Write the CMX files of ``args.weights``; print their paths; return 0 (errors raise)."""
    paths = export_cmx(
        args.weights, args.out_dir, args.modalities, args.stem, args.overwrite
    )
    for role, path in paths.items():
        print(f'{role}: {path}')
    return 0
