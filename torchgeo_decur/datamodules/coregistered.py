"""Co-register the datasets of a MultimodalGeoDataModule once, then read windows.

:func:`coregister` writes the data module's modalities onto their common grid as
a store of Cloud-Optimized GeoTIFF tiles
(:mod:`torchgeo_decur.datasets.coregistered`); ``MultimodalGeoDataModule(...,
coregistered=<store>)`` then reads its patches from the store with
:class:`StorePatches`: windowed reads on the grid, no warping or mosaicking.
The sampling (ground, validation strip, redraws of mostly-invalid patches) is
the data module's own; only the reading differs, and every patch is snapped to
the store's pixel grid.
"""

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import rasterio
import torch
from torch import Tensor
from torchgeo.datasets import GeoDataset

from ..datasets.coregistered import (
    CoRegisteredRasters,
    Grid,
    changed_source,
    fingerprints,
    source_files,
    write_coregistered,
)
from .geo import CoRegisteredPatches, MultimodalGeoDataModule, describe, storage_dtype

#: Slack, in pixels, when snapping the common ground to the pixel grid.
SNAP_TOLERANCE = 1e-6


def common_grid(
    datamodule: MultimodalGeoDataModule, joint: GeoDataset, tile_size: int
) -> tuple[Grid, list[tuple[int, int]]]:
    """The store grid of a data module and the tiles touching its common ground.

    The grid has the intersection's CRS and resolution and covers the bounding
    box of the ground all modalities cover, shrunk to whole pixels. Its pixels
    are those of the first dataset's first file when that file is on the grid's
    CRS and resolution (so that modality is copied, not resampled), else those
    of the CRS origin.

    Args:
        datamodule: The data module (its first dataset anchors the grid).
        joint: Its intersection (:meth:`MultimodalGeoDataModule.build_intersection`).
        tile_size: Tile side length in pixels.

    Returns:
        The grid and the (row, col) of every tile that touches the ground.

    Raises:
        ValueError: If the common ground is narrower than one pixel.
    """
    import shapely

    footprint = joint.index.geometry.union_all()
    xmin, ymin, xmax, ymax = footprint.bounds
    rx, ry = (float(r) for r in joint.res)
    ox = oy = 0.0
    first = next(iter(datamodule.datasets.values()))
    files = source_files(first)
    if files:
        with rasterio.open(files[0]) as src:
            t = src.transform
            if (
                src.crs is not None
                and src.crs == rasterio.crs.CRS.from_user_input(joint.crs)
                and math.isclose(t.a, rx)
                and math.isclose(-t.e, ry)
            ):
                ox, oy = t.c, t.f
    c0 = math.ceil((xmin - ox) / rx - SNAP_TOLERANCE)
    c1 = math.floor((xmax - ox) / rx + SNAP_TOLERANCE)
    r0 = math.ceil((oy - ymax) / ry - SNAP_TOLERANCE)
    r1 = math.floor((oy - ymin) / ry + SNAP_TOLERANCE)
    if c1 <= c0 or r1 <= r0:
        raise ValueError(
            f'the common ground of modalities {datamodule.modalities} ('
            + ', '.join(describe(d) for d in datamodule.datasets.values())
            + f') is narrower than one {rx:g} x {ry:g} pixel; nothing to co-register'
        )
    grid = Grid(
        crs=rasterio.crs.CRS.from_user_input(joint.crs).to_wkt(),
        res=(rx, ry),
        west=ox + c0 * rx,
        north=oy - r0 * ry,
        width=c1 - c0,
        height=r1 - r0,
        tile_size=tile_size,
    )
    tiles = []
    for row in range(grid.tiles_down):
        for col in range(grid.tiles_across):
            w = grid.tile_window(row, col)
            x, y = grid.slices(w.col_off, w.row_off, w.width, w.height)
            if footprint.intersects(shapely.box(x.start, y.start, x.stop, y.stop)):
                tiles.append((row, col))
    return grid, tiles


def stored_dtypes(datamodule: MultimodalGeoDataModule) -> dict[str, str]:
    """Numpy type each modality is stored in: its integer storage type or float32."""
    out = {}
    for m, ds in datamodule.datasets.items():
        dtype = storage_dtype(ds)
        out[m] = 'float32' if dtype is None else str(dtype).removeprefix('torch.')
    return out


def coregister(
    datamodule: MultimodalGeoDataModule,
    output: str,
    tile_size: int = 1024,
    num_workers: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write a data module's modalities onto their common grid as COG tiles.

    Args:
        datamodule: Data module whose ``datasets``, ``crs`` and ``res`` define the
            modalities and the grid.
        output: Store directory.
        tile_size: Tile side length in pixels.
        num_workers: Processes writing tiles in parallel (0: this one).
        overwrite: Delete a store already in ``output`` and write it anew.
        progress: Show a progress bar.

    Returns:
        The store's manifest.

    Raises:
        ValueError: If the datasets do not overlap (naming them), ``tile_size``
            is below 16, or ``output`` holds a store of other settings or sources.
        OSError: If a tile cannot be written.
    """
    if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 16:
        raise ValueError(f'tile_size must be an int >= 16 (pixels), got {tile_size!r}')
    joint = datamodule.build_intersection()
    grid, tiles = common_grid(datamodule, joint, tile_size)
    nodata = datamodule._nodata()
    channels = {}
    for m, ds in datamodule.datasets.items():
        bands = ds.bands if ds.separate_files else None
        if bands:
            channels[m] = len(bands)
        else:
            with rasterio.open(source_files(ds)[0]) as src:
                channels[m] = len(ds.band_indexes or []) or src.count
    return write_coregistered(
        datamodule.datasets,
        output,
        grid,
        tiles,
        stored_dtypes(datamodule),
        nodata,
        channels,
        num_workers=num_workers,
        overwrite=overwrite,
        progress=progress,
        offset_files=datamodule.s2_offset_files(),
    )


def open_store(
    path: str,
    datamodule: MultimodalGeoDataModule,
    joint: GeoDataset,
) -> CoRegisteredRasters:
    """Open a store and check it holds the data module's current datasets.

    Args:
        path: Store directory.
        datamodule: The data module reading it.
        joint: Its intersection (for the grid's CRS and resolution).

    Returns:
        The store reader.

    Raises:
        ValueError: If the store is unfinished, holds other modalities or another
            grid, or a source file changed since it was written (naming the file).
    """
    store = CoRegisteredRasters(path)
    if store.modalities != datamodule.modalities:
        raise ValueError(
            f'co-registered store {path!r} holds modalities {store.modalities}, the '
            f'data module has {datamodule.modalities}'
        )
    crs = rasterio.crs.CRS.from_user_input(joint.crs)
    if rasterio.crs.CRS.from_wkt(store.grid.crs) != crs or not np.allclose(
        store.grid.res, joint.res
    ):
        raise ValueError(
            f'co-registered store {path!r} is on a {store.grid.res} grid in '
            f'{store.grid.crs[:40]}..., the data module reads {tuple(joint.res)} in '
            f'{crs.to_string()}; rerun `torchgeo-decur coregister` with these settings'
        )
    offsets = {m: sorted(f) for m, f in datamodule.s2_offset_files().items()}
    if store.manifest.get('s2_offset_files', {}) != offsets:
        raise ValueError(
            f'co-registered store {path!r} was written with another Sentinel-2 '
            f'harmonization (files with the offset removed: '
            f'{store.manifest.get("s2_offset_files")}, now {offsets}); rerun '
            '`torchgeo-decur coregister` with --overwrite and this s2_harmonize'
        )
    current = {
        m: fingerprints(source_files(ds)) for m, ds in datamodule.datasets.items()
    }
    changed = changed_source(store.manifest['sources'], current)
    if changed is not None:
        raise ValueError(
            f'co-registered store {path!r} is out of date: {changed}; rerun '
            '`torchgeo-decur coregister` with --overwrite'
        )
    return store


class StorePatches(CoRegisteredPatches):
    """:class:`~torchgeo_decur.datamodules.geo.CoRegisteredPatches` read from a store.

    Each location is snapped to the store's pixel grid and every modality read
    with one windowed read per tile it touches; images come in the store's
    types (float32 where the data module keeps no storage type).
    """

    def __init__(self, *args: Any, store: CoRegisteredRasters, **kwargs: Any) -> None:
        """Initialize a new StorePatches instance.

        Args:
            *args: Arguments of CoRegisteredPatches.
            store: The opened store.
            **kwargs: Keyword arguments of CoRegisteredPatches.
        """
        super().__init__(*args, **kwargs)
        self.store = store
        first = next(iter(self.datasets.values()))
        t = first.bounds[2]
        self._time = [t.start.timestamp(), t.stop.timestamp(), float(t.step)]

    def read(self, x: slice, y: slice) -> dict[str, Tensor]:
        """Read every modality at the grid location nearest to ``(x, y)``.

        Args:
            x: Slice of x coordinates (CRS units).
            y: Slice of y coordinates (CRS units).

        Returns:
            ``{'image_<m>': (C_m, H, W), 'bounds': (9,)}``, the bounds those of
            the snapped window.
        """
        grid = self.store.grid
        size = self.patch_size
        col, row = grid.pixel(x.start, y.stop)
        out: dict[str, Tensor] = {}
        for m in self.datasets:
            image = torch.from_numpy(self.store.read(m, col, row, size))
            out[f'image_{m}'] = image if self.dtypes.get(m) else image.float()
        xs, ys = grid.slices(col, row, size, size)
        out['bounds'] = torch.tensor(
            [xs.start, xs.stop, xs.step, ys.start, ys.stop, ys.step, *self._time]
        )
        return out

    def to_storage(self, sample: dict[str, Tensor]) -> dict[str, Tensor]:
        """Return the sample: the store holds every modality in its type already."""
        return sample


def store_patches(
    path: str,
    datamodule: MultimodalGeoDataModule,
    joint: GeoDataset,
    dtypes: Mapping[str, torch.dtype | None],
) -> Any:
    """The patch dataset class of a data module reading a store.

    Args:
        path: Store directory.
        datamodule: The data module.
        joint: Its intersection.
        dtypes: The storage type per modality the data module hands on (None:
            float32).

    Returns:
        :class:`StorePatches` bound to the opened store (called like
        CoRegisteredPatches).

    Raises:
        ValueError: As :func:`open_store`, or when a modality's stored type is not
            the one the data module hands on.
    """
    store = open_store(path, datamodule, joint)
    for m, dtype in dtypes.items():
        want = 'float32' if dtype is None else str(dtype).removeprefix('torch.')
        if dtype is not None and store.dtypes[m] != want:
            raise ValueError(
                f'co-registered store {path!r} holds modality {m!r} as '
                f'{store.dtypes[m]}, the data module hands on {want}; rerun '
                '`torchgeo-decur coregister` with --overwrite'
            )
    return functools.partial(StorePatches, store=store)


__all__ = ('StorePatches', 'common_grid', 'coregister', 'open_store', 'store_patches')
