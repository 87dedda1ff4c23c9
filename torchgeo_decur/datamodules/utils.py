"""Helpers shared by the data modules (and the commands that read their configs)."""

import ctypes
import ctypes.util
import math
import os
import warnings
from collections.abc import Mapping
from typing import Any

import torch
import torch.utils.data
from torch import nn

# glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Freed heap memory a DataLoader worker keeps for reuse instead of trimming.
WORKER_TRIM_THRESHOLD = 256 * 2**20
#: Allocations below this size come from the heap (glibc's maximum is 32 MiB).
WORKER_MMAP_THRESHOLD = 32 * 2**20

_tuned_pid: int | None = None


def sample_fraction(length: int, fraction: float, seed: int) -> list[int]:
    """Indices of a random label fraction, drawn WITHOUT replacement.

    The reference code drew its 1 % subsets with ``numpy.random.choice`` and its
    default ``replace=True``, so a "1 %" subset held duplicates and fewer distinct
    samples. Here every index appears at most once.

    Args:
        length: Size N of the full training set.
        fraction: Share of samples to keep, in (0, 1]; ``floor(fraction * N)``
            samples are kept (at least one).
        seed: Seed of the draw; the same seed gives the same subset.

    Returns:
        Sorted distinct indices (all of ``range(N)`` for ``fraction=1``).

    Raises:
        ValueError: If ``fraction`` is outside (0, 1] or the set is empty.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f'train_fraction must be in (0, 1], got {fraction}')
    if length < 1:
        raise ValueError('cannot draw a label fraction from an empty training set')
    if fraction == 1:
        return list(range(length))
    # floor(fraction * N) as the reference, but 0.29 * 100 = 28.999... is 29:
    # round away float noise before flooring.
    count = max(1, math.floor(round(fraction * length, 6)))
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(length, generator=generator)[:count]
    return sorted(chosen.tolist())


class RenameKeys(nn.Module):
    """Rename entries of a sample/batch dictionary (e.g. ``image_s1`` → ``image``).

    Lets single-modality batches feed torchgeo's own tasks, which read ``image``.
    """

    def __init__(self, names: Mapping[str, str]) -> None:
        """Initialize a new RenameKeys instance.

        Args:
            names: Map from old to new key.
        """
        super().__init__()
        self.names = dict(names)

    def forward(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Rename the keys.

        Args:
            sample: Sample or batch dictionary.

        Returns:
            A new dictionary with the keys renamed.

        Raises:
            ValueError: If an old key is missing or a new key already exists.
        """
        out = dict(sample)
        for old, new in self.names.items():
            if old not in out:
                raise ValueError(f'sample has no key {old!r}; it has {sorted(out)}')
            if new in out:
                raise ValueError(f'sample already has a key {new!r}')
            out[new] = out.pop(old)
        return out


def world_size(datamodule: Any) -> int:
    """Number of training processes of the trainer a data module is attached to.

    Args:
        datamodule: A LightningDataModule (its ``trainer`` may be None).

    Returns:
        ``trainer.world_size``, or 1 without a trainer.
    """
    trainer = getattr(datamodule, 'trainer', None)
    return int(getattr(trainer, 'world_size', 1) or 1)


def check_train_batches(
    length: int,
    batch_size: int,
    what: str,
    world_size: int = 1,
    skipped: int = 0,
    note: str = '',
) -> None:
    """Refuse a training set that gives no full batch.

    Training loaders drop the last incomplete batch (torchgeo's data modules
    set ``drop_last`` for training, which the batch-statistics losses need), so
    a training set smaller than one batch per process trains for zero steps and
    Lightning ends "successfully" without ever updating the model.

    Args:
        length: Number of training samples.
        batch_size: Samples per batch and process.
        what: The dataset, for the message.
        world_size: Number of processes sharing the samples.
        skipped: Samples left out as invalid (``on_invalid='skip'``), for the
            message.
        note: Further explanation appended to the message (e.g. the train
            fraction).

    Raises:
        ValueError: If ``batch_size`` is not positive, or ``length`` gives no
            full batch on some process.
    """
    if isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
    per_process = math.ceil(length / max(1, world_size))
    if per_process >= batch_size:
        return
    parts = [f'{length} training samples in {what}']
    if skipped:
        parts.append(f"after on_invalid='skip' removed {skipped} invalid location(s)")
    if world_size > 1:
        parts.append(f'{per_process} per process on {world_size} processes')
    raise ValueError(
        f'batch_size={batch_size} is larger than the {", ".join(parts)}{note}; the '
        'training loader drops incomplete batches, so an epoch would have zero '
        'steps. Lower batch_size or add data.'
    )


def warn_small_fraction(
    kept: int, total: int, fraction: float, batch_size: int
) -> None:
    """Warn when ``train_fraction`` leaves fewer samples than one batch.

    Args:
        kept: Samples kept by the fraction.
        total: Samples of the full training split.
        fraction: The ``train_fraction``.
        batch_size: Samples per batch.
    """
    if kept < batch_size:
        warnings.warn(
            f'train_fraction={fraction} keeps {kept} of {total} training samples, '
            f'fewer than one batch (batch_size={batch_size})',
            UserWarning,
            stacklevel=3,
        )


class TrainBatchCheck:
    """Data module mixin: the training loader must give at least one batch.

    Put it before torchgeo's data module class in the bases. ``train_dataloader``
    then raises :func:`check_train_batches`' error, naming ``batch_size``, the
    training set length, the samples ``on_invalid='skip'`` removed and the
    ``train_fraction``, instead of letting Lightning run zero steps and exit 0.
    """

    def train_dataloader(self) -> Any:
        """The parent's training loader, after checking it has a full batch.

        Returns:
            The DataLoader.

        Raises:
            ValueError: If the training set is smaller than one batch per process.
        """
        loader = super().train_dataloader()  # type: ignore[misc]
        dataset = loader.dataset
        inner = getattr(dataset, 'dataset', dataset)  # through a Subset
        root = getattr(inner, 'root', None)
        what = type(inner).__name__ + ('' if root is None else f' at {str(root)!r}')
        note = ''
        fraction = getattr(self, 'train_fraction', 1.0)
        if fraction != 1.0:
            note = f' (train_fraction={fraction} of {len(inner)})'
        check_train_batches(
            len(dataset),
            int(getattr(self, 'batch_size', 1)),
            what,
            world_size(self),
            skipped=len(getattr(inner, 'skipped', ())),
            note=note,
        )
        return loader


def retain_freed_memory_in_worker(worker_id: int | None = None) -> bool:
    """Let a DataLoader worker reuse freed sample buffers instead of refaulting them.

    The SSL4EO-S12 data module runs it in each DataLoader worker when the worker
    starts (:func:`tune_worker_memory` is its ``worker_init_fn``).

    Why this exists: a paired sample is a few MiB of fresh arrays. glibc serves
    such sizes with ``mmap`` (or trims its heap once the batch is freed), so every
    sample faults its pages in anew; in a worker on a virtual machine that costs
    more than reading the sample from the cache (one worker on the real 264 px
    SSL4EO-S12 sample: about 390 -> 600 samples/s, see ``benchmarks/data_loading``).
    Raising glibc's mmap and trim thresholds keeps those pages in the heap.

    Only DataLoader worker processes are changed (they exist just to load data);
    the main process is left alone. A no-op without glibc, and once per process.
    The same tuning is available to any process without code through glibc's
    environment variables ``MALLOC_MMAP_THRESHOLD_=33554432`` and
    ``MALLOC_TRIM_THRESHOLD_=268435456``.

    Args:
        worker_id: Index of the worker (passed by the DataLoader; unused).

    Returns:
        True if the thresholds are set in this process (now or earlier).
    """
    global _tuned_pid
    pid = os.getpid()
    if _tuned_pid == pid:
        return True
    if torch.utils.data.get_worker_info() is None:
        return False
    name = ctypes.util.find_library('c')
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl, Windows)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if not (
        mallopt(_M_MMAP_THRESHOLD, WORKER_MMAP_THRESHOLD)
        and mallopt(_M_TRIM_THRESHOLD, WORKER_TRIM_THRESHOLD)
    ):
        return False
    _tuned_pid = pid
    return True


def tune_worker_memory(worker_id: int) -> None:
    """``worker_init_fn`` that applies :func:`retain_freed_memory_in_worker`.

    Args:
        worker_id: Index of the worker (unused).
    """
    retain_freed_memory_in_worker(worker_id)


class OptionalValidation:
    """Data module mixin: no validation loader when there is no validation data.

    The pretraining tasks define ``validation_step``, so Lightning asks every data
    module for a validation loader; torchgeo's factory raises when ``setup``
    defined neither ``val_dataset`` nor ``dataset``. Data modules whose validation
    split is optional (own rasters with ``val_fraction: 0``, SUN RGB-D pretraining)
    put this mixin first in their bases: without validation data the loader list
    is empty and Lightning skips the validation loop.
    """

    def val_dataloader(self) -> Any:
        """The parent's validation loader, or ``[]`` when there is no validation data.

        Returns:
            A DataLoader, or an empty list.
        """
        if getattr(self, 'val_dataset', None) is None and (
            getattr(self, 'dataset', None) is None
        ):
            return []
        return super().val_dataloader()  # type: ignore[misc]


def trains_on_cuda(datamodule: Any) -> bool:
    """Whether the trainer a data module is attached to runs on a CUDA device.

    Args:
        datamodule: A LightningDataModule (its ``trainer`` may be None).

    Returns:
        True if the trainer's root device is a CUDA device.
    """
    trainer = getattr(datamodule, 'trainer', None)
    strategy = getattr(trainer, 'strategy', None)
    device = getattr(strategy, 'root_device', None)
    return isinstance(device, torch.device) and device.type == 'cuda'


class PinMemoryOnCuda:
    """Data module mixin: page-locked (pinned) batches when training on CUDA.

    Put it before torchgeo's data module class in the bases. Every loader of
    torchgeo's ``_dataloader_factory`` then gets ``pin_memory=True`` when the
    attached trainer runs on a CUDA device: the loader's pinning thread copies
    each batch into page-locked memory, from which the host-to-device copy runs
    at full speed and asynchronously (Lightning copies with
    ``non_blocking=True``). Without a trainer, or on a CPU or other device,
    pinning only costs a copy, so it stays off.
    """

    def _dataloader_factory(self, split: str) -> Any:
        """The parent's loader, pinned on a CUDA trainer.

        Args:
            split: Either 'train', 'val', 'test', or 'predict'.

        Returns:
            The data loader.
        """
        loader = super()._dataloader_factory(split)  # type: ignore[misc]
        # Not a constructor argument of torchgeo's factory; DataLoader allows
        # setting it before the first iteration.
        loader.pin_memory = trains_on_cuda(self)
        return loader


def read_data_section(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``data:`` section of a ``torchgeo fit`` config (YAML).

    Commands that work on the data a model was (or will be) trained on read it
    here: ``class_path`` plus ``init_args``, as ``torchgeo fit`` takes them.

    Args:
        path: The YAML file.

    Returns:
        The section, with a string ``class_path``.

    Raises:
        FileNotFoundError: If the file does not exist.
        IsADirectoryError: If it is a directory.
        ValueError: If it is not YAML or has no ``data:`` section with a
            ``class_path``.
    """
    import yaml

    where = os.fspath(path)
    if os.path.isdir(where):
        raise IsADirectoryError(f'config {where!r} is a directory, not a YAML file')
    if not os.path.isfile(where):
        raise FileNotFoundError(f'config {where!r} does not exist')
    try:
        with open(where) as f:
            config = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise ValueError(f'config {where!r} is not YAML: {err}') from None
    data = config.get('data') if isinstance(config, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get('class_path'), str):
        raise ValueError(f'config {where!r} has no data: section with a class_path')
    return data
