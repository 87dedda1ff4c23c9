r"""The pictures and numbers of a quickstart run: loss curves, correlations, JSON.

From the CSV log of a ``torchgeo fit --config conf/quickstart.yaml`` run, writes
the training and validation loss per epoch as a PNG, and the correlation picture
of its last checkpoint (``torchgeo-decur picture``: one validation pass over the
seeded validation views) as a second PNG. A JSON document records the per-epoch
losses, the collapse monitors of every validation epoch and, with ``--run``, the
wall-clock and CPU time of the fit, which the script then runs itself::

    rm -rf output/quickstart
    python -m benchmarks.quickstart_picture --run --overwrite

(the pictures of the README: ``docs/_static/quickstart_loss.png`` and
``docs/_static/quickstart_correlation.png``; the JSON:
``benchmarks/results/cpu/quickstart.json``). Without ``--run`` it reads an
existing run under ``--output-dir``. Every file is written atomically and an
existing one is kept unless ``--overwrite``.
"""

import argparse
import csv
import glob
import os
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmarks.common import environment, write_json
from torchgeo_decur.callbacks import write_figure_png
from torchgeo_decur.cli.picture import draw

#: Validation metrics recorded per epoch besides ``val_loss``: the embedding
#: spread (``std_of_l2_normalized``; about 1/sqrt(K) when healthy, 0 when
#: collapsed) and the mean cross-modal correlation of the common and unique
#: dimensions.
MONITORS = (
    'val_std_s1',
    'val_std_s2',
    'val_common_diag',
    'val_unique_diag',
)


def read_log(csv_dir: str) -> dict[str, dict[int, float]]:
    """Per-epoch values of the newest CSV log under ``csv_dir``.

    ``train_loss`` is logged every step; its per-epoch value is the mean over
    the epoch's steps. The ``val_*`` metrics are logged once per epoch.

    Args:
        csv_dir: Directory holding ``version_*/metrics.csv`` (a CSVLogger's).

    Returns:
        Metric name → {epoch: value} for ``train_loss``, ``val_loss`` and
        :data:`MONITORS` (those present in the log).

    Raises:
        FileNotFoundError: If there is no ``metrics.csv`` under ``csv_dir``.
    """
    files = glob.glob(os.path.join(csv_dir, 'version_*', 'metrics.csv'))
    if not files:
        raise FileNotFoundError(f'no version_*/metrics.csv under {csv_dir!r}')
    newest = max(files, key=lambda f: int(f.split('version_')[-1].split(os.sep)[0]))
    steps: dict[int, list[float]] = defaultdict(list)
    out: dict[str, dict[int, float]] = defaultdict(dict)
    with open(newest, newline='') as f:
        for row in csv.DictReader(f):
            if not row.get('epoch'):
                continue  # a step-only row (the learning-rate monitor's)
            epoch = int(row['epoch'])
            if row.get('train_loss'):
                steps[epoch].append(float(row['train_loss']))
            for name in ('val_loss', *MONITORS):
                if row.get(name):
                    out[name][epoch] = float(row[name])
    out['train_loss'] = {e: sum(v) / len(v) for e, v in sorted(steps.items())}
    return dict(out)


def loss_figure(log: dict[str, dict[int, float]], title: str) -> Figure:
    """Training and validation loss per epoch.

    Args:
        log: What :func:`read_log` returns (``train_loss`` and ``val_loss``).
        title: Figure title.

    Returns:
        The figure (on an Agg canvas, not attached to pyplot).
    """
    figure = Figure(figsize=(6.4, 3.6), dpi=100, layout='constrained')
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for name, label, style in (
        ('train_loss', 'training (mean over the epoch)', 'o-'),
        ('val_loss', 'validation (fixed views)', 's-'),
    ):
        values = log.get(name, {})
        epochs = sorted(values)
        ax.plot(
            [e + 1 for e in epochs],
            [values[e] for e in epochs],
            style,
            ms=3,
            label=label,
        )
    ax.set_xlabel('epoch')
    ax.set_ylabel('DeCUR loss')
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=10)
    return figure


def summary(log: dict[str, dict[int, float]]) -> dict[str, Any]:
    """First and last validation loss and their relative change.

    Args:
        log: What :func:`read_log` returns.

    Returns:
        ``{'first_epoch', 'last_epoch', 'val_loss_first', 'val_loss_last',
        'val_loss_change'}`` (change as a fraction: -0.3 is a 30 % drop).

    Raises:
        ValueError: If the log holds no validation loss.
    """
    val = log.get('val_loss', {})
    if not val:
        raise ValueError('the log holds no val_loss')
    first, last = min(val), max(val)
    return {
        'first_epoch': first,
        'last_epoch': last,
        'val_loss_first': val[first],
        'val_loss_last': val[last],
        'val_loss_change': val[last] / val[first] - 1,
    }


def run_fit(config: str, output_dir: str) -> dict[str, float]:
    """Run ``torchgeo fit --config config`` in a subprocess and time it.

    Args:
        config: The quickstart YAML.
        output_dir: Its ``--trainer.default_root_dir`` (logs and checkpoints).

    Returns:
        ``{'wall_s', 'user_s', 'sys_s'}``: wall-clock time and the CPU time of
        the child process.

    Raises:
        subprocess.CalledProcessError: If the fit fails.
    """
    torchgeo = shutil.which('torchgeo', path=os.path.dirname(sys.executable))
    command = [torchgeo] if torchgeo else [sys.executable, '-m', 'torchgeo']
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [
            *command,
            'fit',
            '--config',
            config,
            f'--trainer.default_root_dir={output_dir}',
        ],
        check=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        'wall_s': round(wall, 1),
        'user_s': round(after.ru_utime - before.ru_utime, 1),
        'sys_s': round(after.ru_stime - before.ru_stime, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, optionally run the fit, write the pictures and JSON.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        0 on success.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('--config', default='conf/quickstart.yaml', help='fit config')
    parser.add_argument(
        '--output-dir',
        default='output/quickstart',
        help='its --trainer.default_root_dir: csv/ logs and checkpoints/',
    )
    parser.add_argument(
        '--run',
        action='store_true',
        help='run the fit first (the output directory must not exist) and time it',
    )
    parser.add_argument(
        '--loss', default='docs/_static/quickstart_loss.png', help='loss PNG'
    )
    parser.add_argument(
        '--correlation',
        default='docs/_static/quickstart_correlation.png',
        help='correlation PNG ("" to skip; needs checkpoints/last.ckpt)',
    )
    parser.add_argument(
        '--json', default='benchmarks/results/cpu/quickstart.json', help='result'
    )
    parser.add_argument('--overwrite', action='store_true', help='replace outputs')
    args = parser.parse_args(argv)
    outputs = [p for p in (args.loss, args.correlation, args.json) if p]
    if not args.overwrite:
        for path in outputs:
            if os.path.exists(path):
                parser.error(f'{path!r} exists; pass --overwrite to replace it')

    timing: dict[str, float] = {}
    if args.run:
        if os.path.exists(args.output_dir):
            parser.error(
                f'{args.output_dir!r} exists; remove it so the logs hold one run'
            )
        timing = run_fit(args.config, args.output_dir)

    log = read_log(os.path.join(args.output_dir, 'csv'))
    result: dict[str, Any] = {
        'benchmark': 'quickstart',
        'config': args.config,
        'environment': environment(torch.device('cpu')),
        'summary': summary(log),
        'per_epoch': {
            name: {str(e): round(v, 4) for e, v in sorted(values.items())}
            for name, values in sorted(log.items())
        },
    }
    if timing:
        result['fit_time'] = timing
    epochs = len(log.get('val_loss', {}))
    write_figure_png(
        loss_figure(log, f'quickstart: DeCUR loss over {epochs} epochs'),
        args.loss,
        overwrite=args.overwrite,
    )
    if args.correlation:
        checkpoint = os.path.join(args.output_dir, 'checkpoints', 'last.ckpt')
        draw(checkpoint, args.correlation, args.config, overwrite=args.overwrite)
    write_json(args.json, result, overwrite=args.overwrite)
    print(
        f'wrote {", ".join(outputs)}; val_loss '
        f'{result["summary"]["val_loss_first"]:.2f} -> '
        f'{result["summary"]["val_loss_last"]:.2f}'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
