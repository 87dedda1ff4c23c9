"""Pretraining on your own chips: one folder per modality, paired by file name.

:class:`PairedChipsDataModule` reads :class:`~torchgeo_decur.datasets.PairedChips`
(``{modality: folder}``, chips matched by stem or a regex key), splits the keys
into training and validation (seeded fraction or split files) and yields::

    {'image_<modality>': (N, C_m, H_m, W_m)}

Raw values are scaled on the device exactly as in
:class:`~torchgeo_decur.datamodules.MultimodalGeoDataModule`: per band, mean ± 2σ →
[0, 1] (:class:`~torchgeo_decur.transforms.ClipNormalize`), with statistics given
or estimated at ``setup`` from a seeded sample of training chips (nodata and
non-finite values left out) and kept in the hyperparameters, so in every
checkpoint.
"""

import os
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Literal, cast

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torchgeo.datamodules import NonGeoDataModule

from ..datasets.chips import PairedChips, listing
from ..transforms.harmonize import S2Harmonize, check_s2_harmonize
from ..transforms.normalize import ApplyToKeys
from ..transforms.statistics import BandStatistics
from .scaling import (
    BandStats,
    Normalization,
    StatisticsState,
    TaskAgreement,
    check_statistics,
    clip_normalization,
    finish_estimate,
    given_statistics,
    resolve_normalization,
)
from .utils import OptionalValidation


def read_split_file(path: str) -> list[str]:
    """Keys listed in a split file: one per line; blank lines and ``#`` comments out.

    Args:
        path: Text file.

    Returns:
        The keys, in file order.

    Raises:
        ValueError: If the file cannot be read or lists a key twice.
    """
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise ValueError(f'cannot read split file {path!r}: {err}') from None
    keys = [s for s in (line.strip() for line in lines) if s and not s.startswith('#')]
    twice = sorted(k for k, n in Counter(keys).items() if n > 1)
    if twice:
        raise ValueError(f'split file {path!r} lists keys {listing(twice)} twice')
    return keys


class PairedChipsDataModule(
    TaskAgreement, StatisticsState, OptionalValidation, NonGeoDataModule
):
    """Multimodal chips from one folder per modality, for pretraining.

    Chips are paired by key (file stem, or what ``pattern`` extracts from it; see
    :class:`~torchgeo_decur.datasets.PairedChips`). The paired keys are split into
    training and validation either at random (``val_fraction``, drawn with
    ``seed`` from the sorted keys: the same chips and seed give the same split) or
    by split files (``train_split``/``val_split``, one key per line). Batches hold
    ``image_<modality>`` (N, C_m, H_m, W_m), one view per modality (the task draws
    the augmented views).

    On the device each band is scaled with mean ± 2σ → [0, 1]; the statistics are
    given or estimated at ``setup`` from ``statistics_chips`` training chips drawn
    with ``seed`` (nodata and non-finite values left out) and saved in
    ``hparams['statistics']``, which Lightning writes into every checkpoint.
    """

    modality_noun = 'folders'

    def __init__(
        self,
        folders: dict[str, str],
        pattern: str | dict[str, str] | None = None,
        bands: dict[str, list[int | str]] | None = None,
        extensions: Sequence[str] = ('.tif', '.tiff'),
        val_fraction: float = 0.0,
        train_split: str | None = None,
        val_split: str | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        on_invalid: Literal['error', 'skip'] = 'error',
        check_files: bool = False,
        statistics: dict[str, BandStats] | None = None,
        statistics_chips: int = 256,
        normalization: Normalization = 'decur',
        seed: int = 0,
        s2_harmonize: S2Harmonize = 'auto',
    ) -> None:
        """Initialize a new PairedChipsDataModule instance.

        Args:
            folders: Modality name -> folder of its chips, modality 1 first; the
                names must be the task's ``modalities``.
            pattern: Regular expression extracting the key from a file's stem,
                one for all or ``{modality: pattern}``; default: the stem.
            bands: Per modality, 1-based band indexes or band descriptions to
                read, in order; default: all bands.
            extensions: File name endings of chips (case-insensitive).
            val_fraction: Share of the paired keys drawn for validation, in
                [0, 1); 0: no validation (unless ``val_split``).
            train_split: Text file of training keys (default with ``val_split``:
                every other paired key).
            val_split: Text file of validation keys.
            batch_size: Chips per batch (per device).
            num_workers: Data loading worker processes.
            on_invalid: ``'error'`` raises on invalid chips and on split-file
                keys without paired chips; ``'skip'`` leaves them out with a
                warning (and checks every chip when the dataset is built).
            check_files: Open every chip when the dataset is built.
            statistics: Per-modality band statistics in raw units (after band
                selection), ``{m: {'mean': [...], 'std': [...]}}``; modalities
                left out are estimated.
            statistics_chips: Training chips drawn to estimate missing statistics
                (all of them if there are fewer).
            normalization: Input scaling on the device (see
                :data:`~torchgeo_decur.datamodules.scaling.Normalization`):
                ``'decur'``/``'decur_pretraining'`` mean ± 2σ → [0, 1] per band,
                ``'decur_uint8'`` the same in 1/255 steps, ``'none'`` raw values.
            seed: Seed of the random split and of the statistics sample.
            s2_harmonize: Remove the 1000 DN offset of Sentinel-2 processing
                baseline 04.00+ from modalities whose name starts with ``s2``
                (``'auto'``, ``'always'``, ``'never'``; see
                :class:`~torchgeo_decur.datasets.PairedChips`); saved in the
                hyperparameters (so in every checkpoint).

        Raises:
            ValueError: For no folders, statistics of unknown modalities, both a
                fraction and split files, or sizes and fractions out of range.
        """
        super().__init__(
            PairedChips,
            batch_size,
            num_workers,
            folders=folders,
            pattern=pattern,
            bands=bands,
            extensions=tuple(extensions),
            on_invalid=on_invalid,
            check_files=check_files,
            s2_harmonize=check_s2_harmonize(s2_harmonize),
        )
        if not folders:
            raise ValueError('folders must name at least one modality')
        if not 0 <= val_fraction < 1:
            raise ValueError(f'val_fraction must be in [0, 1), got {val_fraction}')
        if val_fraction and (train_split or val_split):
            raise ValueError(
                'give either val_fraction or split files (train_split/val_split), '
                f'not both (got val_fraction={val_fraction}, train_split='
                f'{train_split!r}, val_split={val_split!r})'
            )
        if batch_size < 1 or statistics_chips < 1:
            raise ValueError(
                'batch_size and statistics_chips must be >= 1, got '
                f'{batch_size}, {statistics_chips}'
            )
        resolve_normalization(normalization, type(self).__name__)
        unknown = sorted(set(statistics or {}) - set(folders))
        if unknown:
            raise ValueError(
                f'statistics names modalities {unknown} that are not in folders '
                f'{list(folders)}'
            )
        self.save_hyperparameters()
        self.aug = ApplyToKeys({})
        # Not ``dataset``: torchgeo's loaders fall back to that attribute for a
        # split without its own dataset, which would validate on training chips.
        self.chips: PairedChips | None = None
        self.channels: dict[str, int] = {}
        self._checked_task = False

    @property
    def modalities(self) -> list[str]:
        """Modality names, in the order of ``folders``."""
        return list(self.hparams['folders'])

    def _describe(self, m: str) -> str:
        return f'the chips in {self.hparams["folders"][m]!r}'

    # ----------------------------------------------------------------- split
    def split_keys(self, dataset: PairedChips) -> tuple[list[str], list[str]]:
        """Training and validation keys of the paired chips.

        Args:
            dataset: All paired chips.

        Returns:
            ``(train keys, validation keys)``, disjoint and sorted (split files:
            in file order).

        Raises:
            ValueError: If a split file lists a key without paired chips (under
                ``on_invalid='error'``), the split files overlap, or a split is
                empty.
        """
        keys = list(dataset.keys)
        train_file, val_file = self.hparams['train_split'], self.hparams['val_split']
        if train_file or val_file:
            known = set(keys)
            lists: dict[str, list[str]] = {}
            for name, path in (('train_split', train_file), ('val_split', val_file)):
                if not path:
                    continue
                listed = read_split_file(os.fspath(path))
                missing = [k for k in listed if k not in known]
                if missing:
                    message = (
                        f'{name} {os.fspath(path)!r} lists {len(missing)} key(s) '
                        f'without paired chips in {dict(self.hparams["folders"])}: '
                        f'{listing(missing)}'
                    )
                    if self.hparams['on_invalid'] == 'error':
                        raise ValueError(message + " (pass on_invalid='skip' to skip)")
                    warnings.warn(message + '; skipping', UserWarning, stacklevel=2)
                lists[name] = [k for k in listed if k in known]
            val = lists.get('val_split', [])
            both = sorted(set(lists.get('train_split', [])) & set(val))
            if both:
                raise ValueError(
                    f'train_split {train_file!r} and val_split {val_file!r} share '
                    f'keys {listing(both)}'
                )
            held_out = set(val)
            train = (
                lists['train_split']
                if train_file
                else [k for k in keys if k not in held_out]
            )
        else:
            fraction = float(self.hparams['val_fraction'])
            count = max(1, round(fraction * len(keys))) if fraction else 0
            if count >= len(keys) and count:
                raise ValueError(
                    f'val_fraction={fraction} of {len(keys)} paired chips leaves none '
                    'for training'
                )
            generator = torch.Generator().manual_seed(int(self.hparams['seed']))
            order = torch.randperm(len(keys), generator=generator).tolist()
            chosen = set(order[:count])
            val = [k for i, k in enumerate(keys) if i in chosen]
            train = [k for i, k in enumerate(keys) if i not in chosen]
        if not train:
            raise ValueError(
                f'the training split of {dict(self.hparams["folders"])} is empty'
            )
        return train, val

    # ----------------------------------------------------------------- setup
    def setup(self, stage: str) -> None:
        """Pair the chips, split them, and build the statistics and scaling.

        Args:
            stage: Either 'fit', 'validate', 'test', or 'predict'.

        Raises:
            ValueError: For invalid chips or split files (see
                :class:`~torchgeo_decur.datasets.PairedChips` and
                :meth:`split_keys`), fewer training chips than ``batch_size``,
                statistics of the wrong length, or modality names / band counts
                that disagree with the task's.
        """
        self._check_task_hparams()
        if self.chips is None:
            self.chips = PairedChips(**self.kwargs)
        train, val = self.split_keys(self.chips)
        if len(train) < self.batch_size:
            raise ValueError(
                f'the training split has {len(train)} paired chips, fewer than '
                f'batch_size={self.batch_size} (the last incomplete batch is '
                'dropped, so no batch would be left)'
            )
        self.train_dataset = self.chips.select(train)
        if val:
            self.val_dataset = self.chips.select(val)
        self.channels = self.chips.channels
        self._check_task_hparams()
        self._setup_scaling(self.train_dataset)

    def _setup_scaling(self, train: PairedChips) -> None:
        """Estimate missing statistics and build the on-device scaling."""
        given = given_statistics(self.hparams['statistics'])
        todo = [m for m in self.modalities if m not in given]
        stats = dict(given)
        scale = self.hparams['normalization'] != 'none'
        if scale and todo:
            count = min(int(self.hparams['statistics_chips']), len(train))
            generator = torch.Generator().manual_seed(int(self.hparams['seed']))
            picks = torch.randperm(len(train), generator=generator)[:count].tolist()
            nodata = train.nodata
            estimators = {m: BandStatistics(nodata[m]) for m in todo}
            loader: DataLoader[dict[str, Tensor]] = DataLoader(
                cast(Dataset[dict[str, Tensor]], Subset(train, picks)),
                batch_size=None,
                num_workers=self.num_workers,
            )
            for sample in loader:
                for m in todo:
                    estimators[m].update(sample[f'image_{m}'])
            for m in todo:
                stats[m] = finish_estimate(
                    estimators[m], f'modality {m!r} ({self._describe(m)})'
                )
        check_statistics(stats, self.channels, self._describe)
        if scale:
            self.hparams['statistics'] = {m: stats[m] for m in self.modalities}
            self._build_aug()

    def _build_aug(self) -> None:
        scaling = resolve_normalization(
            self.hparams['normalization'], type(self).__name__
        )
        self.aug = clip_normalization(
            self.hparams['statistics'], self.modalities, scaling.quantize
        )


__all__ = ('PairedChipsDataModule', 'read_split_file')
