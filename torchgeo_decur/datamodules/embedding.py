"""The patches of an embedding run: a grid over own rasters, or chip folders.

:class:`EmbeddingDataModule` serves Lightning's ``predict`` loop with batches::

    {'image_<modality>': (N, C_m, H, W) raw values, 'patch_id': (N,) int64,
     'bounds': (N, 4) float64 minx, miny, maxx, maxy}

* **rasters**: one torchgeo :class:`~torchgeo.datasets.RasterDataset` per
  modality, put on one grid and intersected exactly as
  :class:`~torchgeo_decur.datamodules.MultimodalGeoDataModule` does, cut into
  ``patch_size`` windows every ``stride`` pixels by torchgeo's
  :class:`~torchgeo.samplers.GriddedPatchSampler` (one regular grid over the
  common ground, snapped to its pixels, windows that touch it); ``bounds`` are the
  window's in the grid's CRS.
* **chips**: :class:`~torchgeo_decur.datasets.PairedChips` folders, one patch
  per key; ``bounds`` are the first modality's chip footprint, in the CRS of the
  first chip (NaN for chips without georeference).

Patch ids number the windows (chips) in a fixed order, so a resumed run and every
rank agree on them. Patches already written by an
:class:`~torchgeo_decur.callbacks.EmbeddingWriter` of the trainer are left out of
the loader, so an interrupted run resumes where it stopped.
"""

import os
from collections.abc import Sequence
from typing import Any

import rasterio
import shapely
import torch
from lightning.pytorch import LightningDataModule
from pyproj import CRS
from rasterio.warp import transform_bounds
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torchgeo.datasets import RasterDataset
from torchgeo.samplers import GriddedPatchSampler

from ..datasets.chips import PairedChips
from .geo import CoRegisteredPatches, MultimodalGeoDataModule, describe

#: A window: minx, maxx, miny, maxy in CRS units.
Window = tuple[float, float, float, float]


class RasterWindows(Dataset[dict[str, Tensor]]):
    """Read every modality at fixed windows of a common grid."""

    def __init__(self, reader: CoRegisteredPatches, windows: Sequence[Window]) -> None:
        """Initialize a new RasterWindows instance.

        Args:
            reader: Reads all modalities at a location (no redraws are used).
            windows: ``(minx, maxx, miny, maxy)`` per patch, in the grid's CRS.
        """
        self.reader = reader
        self.windows = list(windows)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Patch ``index`` in raw units, with its id and bounds."""
        x0, x1, y0, y1 = self.windows[index]
        sample = self.reader.read(slice(x0, x1), slice(y0, y1))
        del sample['bounds']
        sample['patch_id'] = torch.tensor(index)
        sample['bounds'] = torch.tensor([x0, y0, x1, y1], dtype=torch.float64)
        return sample

    def __len__(self) -> int:
        """Number of windows."""
        return len(self.windows)


class ChipPatches(Dataset[dict[str, Tensor]]):
    """The chips of a :class:`PairedChips` with ids and footprints."""

    def __init__(self, chips: PairedChips, bounds: Sequence[Sequence[float]]) -> None:
        """Initialize a new ChipPatches instance.

        Args:
            chips: The paired chips.
            bounds: minx, miny, maxx, maxy per key (NaN where not georeferenced).
        """
        self.chips = chips
        self.bounds = [list(b) for b in bounds]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Chip ``index`` in raw units, with its id and bounds."""
        sample = self.chips[index]
        sample['patch_id'] = torch.tensor(index)
        sample['bounds'] = torch.tensor(self.bounds[index], dtype=torch.float64)
        return sample

    def __len__(self) -> int:
        """Number of chips."""
        return len(self.chips)


def chip_footprints(chips: PairedChips) -> tuple[list[list[float]], str | None]:
    """Footprints of the first modality's chips in the CRS of the first chip.

    Args:
        chips: The paired chips.

    Returns:
        ``(bounds per key, CRS as WKT or None)``; chips without georeference get
        NaN bounds, chips in another CRS are transformed to the first one's.
    """
    first = chips.modalities[0]
    crs: CRS | None = None
    out = []
    for key in chips.keys:
        path = chips.files[first][key]
        with rasterio.open(path) as src:
            if src.crs is None or src.transform.is_identity:
                out.append([float('nan')] * 4)
                continue
            left, bottom, right, top = src.bounds
            here = CRS.from_user_input(src.crs.to_wkt())
            crs = crs or here
            if here != crs:
                left, bottom, right, top = transform_bounds(
                    src.crs, crs.to_wkt(), left, bottom, right, top
                )
            out.append([left, bottom, right, top])
    return out, None if crs is None else crs.to_wkt()


def _path_list(paths: Any) -> list[str]:
    """A dataset's ``paths`` (one path or several) as a list of strings."""
    if isinstance(paths, str | os.PathLike):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


class EmbeddingDataModule(LightningDataModule):
    """Patches of own rasters (a grid with a stride) or of chip folders.

    Give exactly one of ``datasets`` (rasters) and ``chips`` (folders).
    """

    def __init__(
        self,
        datasets: dict[str, RasterDataset] | None = None,
        chips: dict[str, str] | None = None,
        patch_size: int = 64,
        stride: int | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        crs: str | None = None,
        res: float | None = None,
    ) -> None:
        """Initialize a new EmbeddingDataModule instance.

        Args:
            datasets: Modality → torchgeo RasterDataset, modality 1 first.
            chips: Modality → folder of chips (see :class:`PairedChips`).
            patch_size: Window side in pixels of the common grid (rasters).
            stride: Pixels between window corners (default: ``patch_size``).
            batch_size: Patches per batch (per device).
            num_workers: Data loading worker processes.
            crs: CRS of the common grid (default: the first dataset's).
            res: Resolution of the common grid in CRS units per pixel.

        Raises:
            ValueError: For both or neither of ``datasets`` and ``chips``, or
                sizes below 1.
        """
        super().__init__()
        if (datasets is None) == (chips is None):
            raise ValueError('give exactly one of datasets (rasters) and chips')
        stride = patch_size if stride is None else stride
        if min(patch_size, stride, batch_size) < 1 or num_workers < 0:
            raise ValueError(
                'patch_size, stride and batch_size must be >= 1, got '
                f'{patch_size}, {stride}, {batch_size}'
            )
        self.datasets = dict(datasets) if datasets is not None else None
        self.chips = dict(chips) if chips is not None else None
        self.patch_size = patch_size
        self.stride = stride
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.crs = crs
        self.res = res
        self.dataset: RasterWindows | ChipPatches | None = None
        #: Bands per modality, known after :meth:`setup`.
        self.channels: dict[str, int] = {}
        #: CRS of the bounds (WKT), resolution and names, known after setup.
        self.grid: dict[str, Any] = {}
        self.labels: list[str] | None = None

    def setup(self, stage: str) -> None:
        """Cut the rasters into windows or list the chips.

        Args:
            stage: Lightning stage (only 'predict' is meaningful).

        Raises:
            ValueError: For rasters that do not overlap, a window larger than the
                common ground, or chip folders without pairs.
        """
        if self.dataset is not None:
            return
        if self.datasets is not None:
            self._setup_rasters(self.datasets)
        else:
            assert self.chips is not None
            chips = PairedChips(self.chips)
            bounds, crs = chip_footprints(chips)
            self.dataset = ChipPatches(chips, bounds)
            self.channels = chips.channels
            self.labels = list(chips.keys)
            self.grid = {'crs': crs, 'kind': 'chips'}

    def _setup_rasters(self, datasets: dict[str, RasterDataset]) -> None:
        # The intersection of MultimodalGeoDataModule: one grid, and an error
        # naming the modality that does not overlap the others.
        layout = MultimodalGeoDataModule(
            datasets, patch_size=self.patch_size, crs=self.crs, res=self.res
        )
        joint = layout.build_intersection()
        sampler = GriddedPatchSampler(joint, size=self.patch_size, stride=self.stride)
        windows = [(x.start, x.stop, y.start, y.stop) for x, y in sampler]
        if not windows:
            xmin, ymin, xmax, ymax = joint.index.geometry.union_all().bounds
            raise ValueError(
                f'patch_size={self.patch_size} px does not fit the common ground of '
                f'{", ".join(describe(d) for d in datasets.values())}: it is '
                f'{(xmax - xmin) / joint.res[0]:.0f} x {(ymax - ymin) / joint.res[1]:.0f}'
                ' px; use a smaller patch_size or a coarser res'
            )
        nodata = dict.fromkeys(datasets)
        reader = CoRegisteredPatches(
            datasets, shapely.Point(0, 0), self.patch_size, joint.res, 0.0, nodata
        )
        self.dataset = RasterWindows(reader, windows)
        first = reader.read(*[slice(a, b) for a, b in (windows[0][:2], windows[0][2:])])
        self.channels = {m: int(first[f'image_{m}'].shape[0]) for m in datasets}
        self.grid = {
            'kind': 'rasters',
            'crs': CRS.from_user_input(joint.crs).to_wkt(),
            'res': [float(joint.res[0]), float(joint.res[1])],
            'patch_size': self.patch_size,
            'stride': self.stride,
            'bounds': list(joint.index.geometry.union_all().bounds),
        }

    def describe(self) -> str:
        """The data, in words, for messages."""
        if self.datasets is not None:
            return ', '.join(f'{m}: {describe(d)}' for m, d in self.datasets.items())
        return f'chips {self.chips}'

    def embedding_settings(self) -> dict[str, Any]:
        """What determines the patches, recorded in and checked against outputs."""
        inputs = (
            {m: _path_list(d.paths) for m, d in self.datasets.items()}
            if self.datasets is not None
            else dict(self.chips or {})
        )
        return {'inputs': inputs, 'patches': len(self.dataset or [])} | self.grid

    def finished(self) -> set[int]:
        """Ids an EmbeddingWriter of the trainer has already written."""
        trainer = getattr(self, 'trainer', None)
        done: set[int] = set()
        for callback in getattr(trainer, 'callbacks', []) or []:
            finished = getattr(callback, 'finished_ids', None)
            if callable(finished):
                done |= set(finished())
        return done

    def predict_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """The patches not yet written, in id order.

        Returns:
            A loader without shuffling (Lightning shards it over ranks without
            repeating a patch).
        """
        assert self.dataset is not None, 'call setup first'
        done = self.finished()
        todo = [i for i in range(len(self.dataset)) if i not in done]
        data: Dataset[dict[str, Tensor]] = (
            self.dataset
            if len(todo) == len(self.dataset)
            else Subset(self.dataset, todo)
        )
        return DataLoader(
            data,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            shuffle=False,
        )


__all__ = ('ChipPatches', 'EmbeddingDataModule', 'RasterWindows', 'chip_footprints')
