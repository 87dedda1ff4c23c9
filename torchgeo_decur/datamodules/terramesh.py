"""Data module streaming TerraMesh-layout WebDataset shards to one or many GPUs."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn
from torch.utils.data import DataLoader
from torchgeo.datamodules import BaseDataModule

from ..datasets.terramesh import Policy, TerraMeshStream, parse_modalities
from ..transforms.harmonize import S2Harmonize
from ..transforms.normalize import ClipNormalize
from ..transforms.statistics import BandStats
from ..transforms.terramesh import TERRAMESH_STATISTICS, VersionedNormalize
from .scaling import Normalization, given_statistics, resolve_normalization


def terramesh_normalization(
    modalities: Sequence[str],
    names: Mapping[str, str] | None = None,
    channels: Mapping[str, int] | None = None,
    statistics: Mapping[str, BandStats] | None = None,
    quantize: bool = False,
) -> VersionedNormalize:
    """The DeCUR mean ± 2σ → [0, 1] scaling for the requested modalities.

    Args:
        modalities: As for :class:`~torchgeo_decur.datasets.terramesh.TerraMeshStream`.
        names: Output names, as there.
        channels: Band count per output name; a 12-band ``s2`` folder is scaled
            with the L2A subset of the SSL4EO-S12 statistics.
        statistics: ``{'mean': [...], 'std': [...]}`` per folder name,
            overriding :data:`~torchgeo_decur.transforms.terramesh.TERRAMESH_STATISTICS`.
        quantize: Round down to multiples of 1/255 (``'decur_uint8'``).

    Returns:
        The batch transform.

    Raises:
        ValueError: If a folder has no statistics (pass ``statistics`` or use
            ``normalization='none'``).
    """
    table = given_statistics(TERRAMESH_STATISTICS) | given_statistics(statistics)
    scalers: dict[str, list[nn.Module | None]] = {}
    for spec in parse_modalities(modalities, names):
        row: list[nn.Module | None] = []
        for version in spec.versions:
            key = version
            if version == 's2' and (channels or {}).get(spec.name) == 12:
                key = 's2a'
            if version == 'LULC' and key not in (statistics or {}):
                row.append(None)  # categorical classes: passed on unscaled
                continue
            if key not in table:
                raise ValueError(
                    f'no statistics for modality folder {version!r}; pass '
                    'statistics={...: {mean: [...], std: [...]}} or '
                    "normalization='none'"
                )
            row.append(
                ClipNormalize(table[key]['mean'], table[key]['std'], quantize=quantize)
            )
        scalers[spec.name] = row
    return VersionedNormalize(scalers)


class _EpochLoader(DataLoader[dict[str, Any]]):
    """DataLoader that tells its stream the trainer's epoch before each pass.

    Workers get a fresh copy of the dataset at every pass (``persistent_workers``
    is off), so setting the epoch here reaches them; resuming from a checkpoint
    restores ``current_epoch`` and with it the shuffles of that epoch.
    """

    def __init__(
        self,
        dataset: TerraMeshStream,
        epoch: Callable[[], int],
        batches: int | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, **kwargs)
        self._epoch = epoch
        self._batches = batches

    def __len__(self) -> int:
        # Known only for a nominal epoch; a one-pass stream has no length (and
        # len() raises TypeError, which Lightning reads as "unsized").
        if self._batches is None:
            raise TypeError('a one-pass TerraMesh stream has no length')
        return self._batches

    def __iter__(self) -> Any:
        assert isinstance(self.dataset, TerraMeshStream)
        self.dataset.set_epoch(self._epoch())
        return super().__iter__()


class TerraMeshDataModule(BaseDataModule):
    """Stream TerraMesh (or ``torchgeo-decur shards`` output) for pretraining.

    Batches are ``{'image_<name>': (N, C, H, W) float, 'version_<name>': (N,),
    'key': [str], 'shard': [str]}``, raw values scaled on the device after the
    batch transfer (``normalization='decur'``: per band mean ± 2σ → [0, 1], see
    :data:`~torchgeo_decur.transforms.terramesh.TERRAMESH_STATISTICS`). With ``modalities=['S1GRD|S1RTC', 'S2L1C']`` (the
    default) they are ``image_s1`` and ``image_s2`` as the DeCUR task expects.

    Every rank reads its own shard groups and each DataLoader worker its own
    share of them (see :class:`~torchgeo_decur.datasets.terramesh.TerraMeshStream`).
    Without ``samples_per_epoch`` one epoch reads every shard once, which is exact
    but gives ranks different batch counts when shards differ in size; under DDP
    set ``samples_per_epoch`` so that every worker of every rank yields
    ``samples_per_epoch // (world_size · num_workers · batch_size)`` batches.
    """

    def __init__(
        self,
        root: str = 'data',
        modalities: Sequence[str] = ('S1GRD|S1RTC', 'S2L1C'),
        names: dict[str, str] | None = None,
        split: str = 'train',
        val_split: str | None = None,
        shards: list[str] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        samples_per_epoch: int | None = None,
        shuffle_buffer: int = 1000,
        seed: int = 0,
        on_missing: Policy = 'error',
        on_error: Policy = 'error',
        channels: dict[str, int] | None = None,
        time_step: int | None = None,
        normalization: Normalization = 'decur',
        statistics: dict[str, BandStats] | None = None,
        s2_harmonize: S2Harmonize = 'auto',
        metadata: bool = False,
        max_cloud_fraction: float | None = None,
    ) -> None:
        """Initialize a new TerraMeshDataModule instance.

        Args:
            root: Dataset root (local path, ``file://`` or any fsspec URL) holding
                ``{split}/{MODALITY}/*.tar``.
            modalities: Modality folders, ``'A|B'`` for alternatives.
            names: Output name per entry of ``modalities``.
            split: Training split folder.
            val_split: Validation split folder (None: no validation).
            shards: Shard file names to use (default: every tar found).
            batch_size: Samples per batch (per device).
            num_workers: DataLoader workers per device.
            samples_per_epoch: Nominal epoch size over all ranks (None: one pass
                over every shard).
            shuffle_buffer: Samples in each worker's shuffle buffer.
            seed: Base seed of the shard and sample shuffles.
            on_missing: Shards lacking a requested modality: ``'error'``/``'skip'``.
            on_error: Unreadable shards or samples: ``'error'``/``'skip'``.
            channels: Expected bands per output name (default: published counts).
            time_step: Time index to keep from multi-temporal samples.
            normalization: ``'decur'``/``'decur_pretraining'`` scaling,
                ``'decur_uint8'`` (the same in 1/255 steps) or ``'none'`` (float
                cast only).
            statistics: ``{'mean': [...], 'std': [...]}`` per folder name,
                overriding the built-in ones.
            s2_harmonize: Remove the 1000 DN offset of Sentinel-2 processing
                baseline 04.00+ from S2L1C/S2L2A: ``'auto'`` (by each sample's
                ``time``, >= 2022-01-25), ``'always'`` or ``'never'``; see
                :class:`~torchgeo_decur.datasets.terramesh.TerraMeshStream`.
            metadata: Batches also carry ``time_<name>`` (N,) ns,
                ``center_lat``/``center_lon`` (N,) degrees and, for optical
                products, ``cloud_mask_<name>`` (N, H, W).
            max_cloud_fraction: Drop samples whose cloud mask covers more than
                this share (None: keep all).

        Raises:
            ValueError: If ``normalization`` is unknown or sizes are not positive.
        """
        super().__init__(TerraMeshStream, batch_size, num_workers)
        scaling = resolve_normalization(normalization, type(self).__name__)
        if samples_per_epoch is not None and samples_per_epoch < 1:
            raise ValueError(
                f'samples_per_epoch must be positive, got {samples_per_epoch}'
            )
        # The folders are saved as 'folders': Lightning refuses a data module
        # hyperparameter that shares a name with the task's ('modalities').
        self.save_hyperparameters(ignore=['modalities'])
        self.hparams['folders'] = list(modalities)
        self.stream_kwargs: dict[str, Any] = dict(
            s2_harmonize=s2_harmonize,
            metadata=metadata,
            max_cloud_fraction=max_cloud_fraction,
            root=root,
            modalities=list(modalities),
            names=names,
            shards=shards,
            on_missing=on_missing,
            on_error=on_error,
            channels=channels,
            time_step=time_step,
            shuffle_buffer=shuffle_buffer,
            seed=seed,
        )
        self.split = split
        self.val_split = val_split
        self.samples_per_epoch = samples_per_epoch
        if scaling.scale:
            self.aug: nn.Module = terramesh_normalization(
                modalities, names, channels, statistics, scaling.quantize
            )
        else:
            self.aug = VersionedNormalize(
                {s.name: [None] for s in parse_modalities(modalities, names)}
            )

    def _world_size(self) -> int:
        trainer = self.trainer
        return int(trainer.world_size) if trainer is not None else 1

    def samples_per_worker(self) -> int | None:
        """Samples each worker yields per epoch (None: one pass over the shards).

        Returns:
            A multiple of ``batch_size``, so every worker yields whole batches.

        Raises:
            ValueError: If ``samples_per_epoch`` is below one batch per worker.
        """
        if self.samples_per_epoch is None:
            return None
        workers = max(1, self.num_workers) * self._world_size()
        batches = self.samples_per_epoch // (workers * self.batch_size)
        if batches < 1:
            raise ValueError(
                f'samples_per_epoch={self.samples_per_epoch} is less than one batch '
                f'of {self.batch_size} for each of {workers} workers over all ranks'
            )
        return batches * self.batch_size

    def setup(self, stage: str) -> None:
        """Find the shard groups of the training (and validation) split.

        Args:
            stage: Either 'fit', 'validate', 'test', or 'predict'.
        """
        if stage in ('fit', 'validate') and self.val_split is not None:
            self.val_dataset = TerraMeshStream(
                split=self.val_split, shuffle=False, **self.stream_kwargs
            )
        if stage == 'fit':
            self.train_dataset = TerraMeshStream(
                split=self.split,
                shuffle=True,
                samples_per_worker=self.samples_per_worker(),
                **self.stream_kwargs,
            )

    def _loader(self, dataset: object) -> DataLoader[dict[str, Any]]:
        if not isinstance(dataset, TerraMeshStream):
            raise ValueError('TerraMeshDataModule.setup has not built this split')

        def epoch() -> int:
            return int(self.trainer.current_epoch) if self.trainer is not None else 0

        batches = None
        if dataset.samples_per_worker is not None:
            batches = (
                dataset.samples_per_worker // self.batch_size * max(1, self.num_workers)
            )
        return _EpochLoader(
            dataset,
            epoch,
            batches,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=False,
        )

    def train_dataloader(self) -> DataLoader[dict[str, Any]]:
        """The streaming training loader.

        Returns:
            A DataLoader over this rank's shards.
        """
        return self._loader(self.train_dataset)

    def val_dataloader(self) -> DataLoader[dict[str, Any]] | list[Any]:
        """The streaming validation loader (no shuffling).

        Returns:
            A DataLoader over this rank's validation shards, or ``[]`` (no
            validation loop) when no ``val_split`` was given.
        """
        if self.val_split is None:
            return []
        return self._loader(self.val_dataset)
