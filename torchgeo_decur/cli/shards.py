r"""The ``torchgeo-decur shards`` subcommand: convert a paired dataset to shards.

Writes a dataset of this package (or any map-style dataset class yielding
``image_<modality>`` tensors) as TerraMesh-layout WebDataset shards that
``TerraMeshDataModule`` streams; see :mod:`torchgeo_decur.datasets.shards`. A rerun
with the same arguments resumes an interrupted conversion.

Examples::

    torchgeo-decur shards ssl4eo-s12 --root data/ssl4eo-s12 --out shards/ssl4eo
    torchgeo-decur shards bigearthnet-mm --root data/bigearthnet --out shards/ben \\
        --split train
    torchgeo-decur shards my_package.chips:ChipPairs --init-args '{"root": "chips"}' \\
        --out shards/chips
"""

import argparse
import importlib
import json
import sys
from typing import TYPE_CHECKING, Any

from torch import Tensor
from torch.utils.data import Dataset

if TYPE_CHECKING:
    # zarr and webdataset load when shards are written, not when the command line
    # is assembled.
    from ..datasets.shards import SizedDataset


class SeasonsOf(Dataset[dict[str, Tensor]]):
    """Every listed timestamp ("season") of every SSL4EO-S12 location, one view each.

    Sample ``i`` is location ``i // len(seasons)`` at season ``seasons[i % len]``,
    so the conversion is deterministic and keeps all seasons instead of a random
    draw per epoch (the streaming side then shuffles samples).
    """

    def __init__(self, seasons: list[int], **kwargs: Any) -> None:
        """Initialize a new SeasonsOf instance.

        Args:
            seasons: Timestamp indices to write per location.
            **kwargs: Arguments of :class:`~torchgeo_decur.datasets.SSL4EOS12Pairs`.
        """
        from ..datasets import SSL4EOS12Pairs

        if not seasons:
            raise ValueError('seasons must list at least one timestamp index')
        self.seasons = list(seasons)
        self.datasets = [
            SSL4EOS12Pairs(views=1, season_mode='fixed', season=s, **kwargs)
            for s in self.seasons
        ]

    def __len__(self) -> int:
        return len(self.datasets[0]) * len(self.seasons)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        location, season = divmod(index, len(self.seasons))
        sample: dict[str, Tensor] = self.datasets[season][location]
        return sample


def build_dataset(args: argparse.Namespace) -> 'SizedDataset':
    """Instantiate the dataset named on the command line.

    Args:
        args: Parsed ``shards`` arguments.

    Returns:
        A map-style dataset of ``image_<modality>`` samples.

    Raises:
        ValueError: If the dataset name or class path is unknown.
    """
    extra: dict[str, Any] = {}
    if args.init_args:
        try:
            extra = json.loads(args.init_args)
        except json.JSONDecodeError as err:
            raise ValueError(
                f'--init-args is not valid JSON ({err}): {args.init_args!r}'
            ) from None
        if not isinstance(extra, dict):
            raise ValueError(
                f'--init-args must be a JSON object of dataset arguments, got '
                f'{args.init_args!r}'
            )
    if args.s2_harmonize is not None:
        if ':' not in args.dataset:
            raise ValueError(
                f'--s2-harmonize: {args.dataset} holds pre-2022 Sentinel-2 products '
                '(no processing baseline 04.00 offset); it applies to readers of '
                'Sentinel-2 of any date, e.g. torchgeo_decur.datasets:PairedChips'
            )
        extra.setdefault('s2_harmonize', args.s2_harmonize)
    if args.dataset == 'ssl4eo-s12':
        return SeasonsOf(seasons=args.seasons, root=args.root, **extra)
    if args.dataset == 'bigearthnet-mm':
        from ..datasets import BigEarthNetMM

        return BigEarthNetMM(root=args.root, split=args.split, **extra)
    if ':' not in args.dataset:
        raise ValueError(
            f'unknown dataset {args.dataset!r}: use ssl4eo-s12, bigearthnet-mm or '
            'module.path:ClassName'
        )
    module, name = args.dataset.split(':', 1)
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f'cannot load dataset class {args.dataset!r}: {err}') from None
    if args.root is not None:
        extra.setdefault('root', args.root)
    dataset: SizedDataset = cls(**extra)
    return dataset


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (never empty)."""
    return ' '.join(str(exc).split()) or type(exc).__name__


def run(args: argparse.Namespace) -> int:
    """Write the shards described by the parsed arguments.

    Args:
        args: Parsed ``shards`` arguments.

    Returns:
        0 on success, 1 on a data or argument error (message on stderr).
    """
    from ..datasets.shards import write_shards

    try:
        dataset = build_dataset(args)
        prefix = args.prefix or args.dataset.split(':')[-1].replace('-', '').lower()

        def progress(done: int, total: int) -> None:
            print(f'\rshard {done}/{total}', end='', file=sys.stderr, flush=True)

        report = write_shards(
            dataset,
            args.out,
            split=args.split,
            prefix=prefix,
            samples_per_shard=args.samples_per_shard,
            compression=args.compression,
            source=f'{args.dataset} root={args.root} init_args={args.init_args}',
            progress=progress,
        )
    except (ValueError, TypeError, OSError) as exc:
        print(f'\ntorchgeo-decur shards: error: {_one_line(exc)}', file=sys.stderr)
        return 1
    except (KeyError, IndexError, RuntimeError) as exc:
        # Raised by a dataset class while reading a sample (e.g. a missing file
        # in its own index): still one line, with the error's type.
        print(
            f'\ntorchgeo-decur shards: error: reading {args.dataset} failed: '
            f'{type(exc).__name__}: {_one_line(exc)}',
            file=sys.stderr,
        )
        return 1
    print(
        f'\n{report.samples} samples of {report.modalities} in '
        f'{len(report.written) + len(report.kept)} shards under {args.out}/'
        f'{args.split} ({len(report.written)} written, {len(report.kept)} kept)',
        file=sys.stderr,
    )
    return 0
