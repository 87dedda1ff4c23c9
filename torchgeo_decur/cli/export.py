"""``torchgeo-decur export``: a trained task checkpoint in the released DeCUR layouts."""

import argparse
import json
import os

from .. import export as library


def run(args: argparse.Namespace) -> int:
    """Export ``args.checkpoint``; print a JSON summary; return 0 (errors raise)."""
    summary = library.export_checkpoint(
        args.checkpoint, args.output_dir, args.name, overwrite=args.overwrite
    )
    summary['files'] = {k: os.fspath(v) for k, v in summary['files'].items()}
    print(json.dumps(summary, indent=2))
    return 0
