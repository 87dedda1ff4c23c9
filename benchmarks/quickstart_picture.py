r"""Draw the correlation picture of a trained quickstart run as a PNG.

Runs the task of a checkpoint over the validation split of the quickstart's data
module (the same seeded views as the validation loop) and writes
:func:`torchgeo_decur.callbacks.correlation_figure` of the embeddings. Also
prints the ``val_loss`` per epoch from the run's CSV log, so the before/after
numbers that go with the picture are reproducible.

    torchgeo fit --config conf/quickstart.yaml
    python benchmarks/quickstart_picture.py \
        output/quickstart/checkpoints/last.ckpt \
        docs/_static/quickstart_correlation.png --overwrite

The output file is written atomically and not replaced without ``--overwrite``.
"""

import argparse
import csv
import glob
import json
import os

import torch
from lightning.pytorch import Trainer

from torchgeo_decur import DeCURTask
from torchgeo_decur.callbacks import CorrelationPicture, write_figure_png
from torchgeo_decur.callbacks.correlation import correlation_figure
from torchgeo_decur.datamodules import SSL4EOS12PairsDataModule


def val_losses(log_dir: str) -> dict[int, float]:
    """``val_loss`` per epoch from the newest CSV log under ``log_dir``.

    Args:
        log_dir: Directory holding ``version_*/metrics.csv``.

    Returns:
        Epoch → validation loss (empty when there is no log).
    """
    files = sorted(glob.glob(os.path.join(log_dir, 'version_*', 'metrics.csv')))
    if not files:
        return {}
    out: dict[int, float] = {}
    with open(files[-1], newline='') as f:
        for row in csv.DictReader(f):
            if row.get('val_loss'):
                out[int(row['epoch'])] = float(row['val_loss'])
    return out


def main() -> None:
    """Parse the arguments, draw and write the picture."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help='quickstart checkpoint (.ckpt)')
    parser.add_argument('output', help='PNG to write')
    parser.add_argument('--root', default='tests/data/ssl4eo_s12', help='data root')
    parser.add_argument('--size', type=int, default=32, help='resampled size (px)')
    parser.add_argument(
        '--csv-dir', default='output/quickstart/csv', help='CSV logs of the run'
    )
    parser.add_argument('--overwrite', action='store_true', help='replace output')
    args = parser.parse_args()
    if os.path.exists(args.output) and not args.overwrite:
        parser.error(f'{args.output!r} exists; pass --overwrite to replace it')

    task = DeCURTask.load_from_checkpoint(args.checkpoint, map_location='cpu')
    dm = SSL4EOS12PairsDataModule(root=args.root, size=args.size, batch_size=4)
    picture = CorrelationPicture()
    trainer = Trainer(
        accelerator='cpu',
        logger=False,
        callbacks=[picture],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    torch.manual_seed(0)
    metrics = trainer.validate(task, dm, verbose=False)[0]
    epoch = torch.load(args.checkpoint, map_location='cpu', weights_only=True)['epoch']
    figure = correlation_figure(
        panels=picture.last_panels,
        title=f'quickstart after {epoch + 1} epochs (validation embeddings)',
    )
    write_figure_png(figure, args.output, overwrite=args.overwrite)
    print(
        json.dumps(
            {
                'output': args.output,
                'validation': {k: round(float(v), 4) for k, v in metrics.items()},
                'val_loss_per_epoch': val_losses(args.csv_dir),
            },
            indent=2,
        )
    )


if __name__ == '__main__':
    main()
