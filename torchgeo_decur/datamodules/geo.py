"""Pretraining on your own rasters: co-registered patches of any torchgeo RasterDatasets.

:class:`MultimodalGeoDataModule` takes one torchgeo
:class:`~torchgeo.datasets.RasterDataset` per modality (``Sentinel1``, ``Sentinel2``,
a plain ``RasterDataset(paths=...)``, a subclass), reprojects them to one CRS and
resolution with torchgeo's :class:`~torchgeo.datasets.IntersectionDataset`, samples
patches of the common ground with torchgeo's spatial samplers and returns one view
per modality, pixel for pixel on the same grid::

    {'image_<modality>': (N, C_m, patch_size, patch_size), 'bounds': (N, 9)}

The workers return raw values in the rasters' storage type (8- and 16-bit
integer rasters stay uint8/int16/uint16, everything else float32), which cuts
what crosses their shared memory and the host-to-device copy by 2-4x for
integer rasters; on the device they become float32 (exactly: every 8- and
16-bit integer is a float32) and are scaled, per band, with the mean ± 2σ → [0, 1] window
of the DeCUR checkpoints (:class:`~torchgeo_decur.transforms.ClipNormalize`); the
statistics are estimated from a seeded sample of patches at ``setup`` unless given,
and stored in the data module's hyperparameters (so in every checkpoint).
Sentinel-2 rasters are harmonized file by file to the pre-2022 DN scale
(``s2_harmonize``, see :mod:`torchgeo_decur.transforms.harmonize`).
"""

import math
import os
import re
import warnings
import zlib
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any, Literal, cast

import numpy as np
import rasterio
import shapely
import shapely.affinity
import torch
from pyproj import CRS
from rasterio.errors import RasterioError
from rasterio.warp import calculate_default_transform
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchgeo.datamodules import GeoDataModule
from torchgeo.datasets import GeoDataset, IntersectionDataset, RasterDataset, Sentinel2
from torchgeo.samplers import GeoSampler, RandomPatchSampler

from ..datasets.chips import listing
from ..datasets.rasters import RasterReadError, naming_file, read_harmonized
from ..options import option
from ..transforms.harmonize import (
    S2Harmonize,
    S2Harmonizer,
    check_s2_harmonize,
    date_from_name,
)
from ..transforms.normalize import ApplyToKeys
from ..transforms.statistics import BandStatistics, valid_mask
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
    to_float32,
)
from .utils import OptionalValidation, PinMemoryOnCuda


def describe(dataset: RasterDataset) -> str:
    """Name a dataset and where it reads from, for error messages.

    Args:
        dataset: A torchgeo raster dataset.

    Returns:
        E.g. ``"Sentinel2(paths='/data/s2')"``.
    """
    return f'{type(dataset).__name__}(paths={dataset.paths!r})'


def dataset_nodata(dataset: RasterDataset) -> float | None:
    """The nodata value of a raster dataset.

    The dataset's own ``nodata`` if set, else that of its first file.

    Args:
        dataset: A torchgeo raster dataset.

    Returns:
        The nodata value, or None when neither defines one.
    """
    if dataset.nodata is not None:
        return float(dataset.nodata)
    files = dataset.index['filepath'] if 'filepath' in dataset.index else []
    for path in files:
        with rasterio.open(path) as src:
            return None if src.nodata is None else float(src.nodata)
    return None


#: Raster data types the workers keep (every value is exactly a float32).
STORAGE_DTYPES: dict[str, torch.dtype] = {
    'uint8': torch.uint8,
    'int8': torch.int8,
    'uint16': torch.uint16,
    'int16': torch.int16,
}


def storage_dtype(dataset: RasterDataset) -> torch.dtype | None:
    """The integer type a modality's patches can travel in, if any.

    The data type of the first band of the dataset's first file (as
    :func:`dataset_nodata` reads the nodata value) when it is a type of
    :data:`STORAGE_DTYPES`. torchgeo merges and reprojects in the files' own
    type and only then casts to float32, so such patches hold whole numbers of
    that type.

    Args:
        dataset: A torchgeo raster dataset.

    Returns:
        The torch type, or None to keep float32.
    """
    if not dataset.is_image:
        return None
    files = dataset.index['filepath'] if 'filepath' in dataset.index else []
    for path in files:
        with rasterio.open(path) as src:
            return STORAGE_DTYPES.get(src.dtypes[0])
    return None


#: Largest ``length``: torchgeo's RandomPatchSampler draws every location of an
#: epoch up front (several arrays of ``length`` 8-byte values).
MAX_LENGTH = 2**27


def indexed_files(dataset: RasterDataset) -> list[str]:
    """The files in a raster dataset's index.

    Args:
        dataset: A torchgeo raster dataset.

    Returns:
        Their paths, in index order.
    """
    if 'filepath' not in dataset.index:
        return []
    return [str(p) for p in dataset.index['filepath']]


def check_raster_files(
    modality: str, dataset: RasterDataset, on_invalid: Literal['error', 'skip']
) -> None:
    """Check a modality's raster files before training.

    torchgeo leaves files it cannot open (a text or HTML page saved as ``.tif``,
    an empty file) out of a dataset's index without a word; they are reported
    here. The headers of the indexed files must agree on data type and band
    count, since torchgeo merges a patch's files into one array of the first
    file's type.

    Args:
        modality: Modality name, for the messages.
        dataset: Its torchgeo raster dataset.
        on_invalid: ``'error'`` raises on unreadable files; ``'skip'`` warns,
            listing every one (they are left out of the index either way).

    Raises:
        RasterReadError: For files matching the dataset's pattern that cannot be
            opened (under ``on_invalid='error'``).
        ValueError: If the indexed files differ in data type or band count,
            naming one file of each kind.
    """
    indexed = indexed_files(dataset)
    left_out = sorted(set(dataset.files) - set(indexed))
    if left_out:
        details = []
        for path in left_out[:3]:
            try:
                with naming_file(path), rasterio.open(path):
                    pass
                details.append(f'{path!r}: not read by {type(dataset).__name__}')
            except RasterReadError as err:
                details.append(str(err))
        message = (
            f'modality {modality!r} ({describe(dataset)}): {len(left_out)} file(s) '
            f'cannot be opened as rasters and were left out: {listing(left_out)} '
            f'({"; ".join(details)})'
        )
        if on_invalid == 'error':
            raise RasterReadError(
                f'{message}; remove or replace them, or pass '
                f'{option("on_invalid", "skip")}'
            )
        warnings.warn(message, UserWarning, stacklevel=2)
    kinds: dict[tuple[str, int], str] = {}
    for path in indexed:
        with naming_file(path, f'modality {modality!r}'), rasterio.open(path) as src:
            kinds.setdefault((src.dtypes[0], src.count), path)
    if len(kinds) > 1:
        raise ValueError(
            f'modality {modality!r} ({describe(dataset)}) mixes raster files of '
            'different data types or band counts: '
            + ', '.join(
                f'{path!r} is {dtype} with {count} band(s)'
                for (dtype, count), path in kinds.items()
            )
            + "; torchgeo merges a patch in the first file's type, so convert "
            'them to one type and band layout'
        )


def unreadable_files(
    modality: str, dataset: RasterDataset, x: slice, y: slice
) -> list[str]:
    """The files under a patch that fail to read, each named in a message.

    Args:
        modality: Modality name.
        dataset: Its torchgeo raster dataset (on the common grid).
        x: Slice of x coordinates (CRS units).
        y: Slice of y coordinates (CRS units).

    Returns:
        One message per failing file (from :func:`naming_file`).
    """
    index = dataset.index
    hits = index[index.intersects(shapely.box(x.start, y.start, x.stop, y.stop))]
    out = []
    for path in hits['filepath'] if 'filepath' in hits else []:
        try:
            with naming_file(str(path), f'modality {modality!r}'):
                with rasterio.open(path) as src:
                    src.read()
        except RasterReadError as err:
            out.append(str(err))
    return out


def converted_res(dataset: RasterDataset, crs: CRS) -> tuple[float, float]:
    """A dataset's resolution carried over to another CRS's units.

    Args:
        dataset: A torchgeo raster dataset (its ``res`` in its own CRS).
        crs: The target CRS.

    Returns:
        (x, y) resolution in ``crs`` units: that of GDAL's default warp of the
        dataset's extent (about the same number of pixels).
    """
    xmin, xmax = dataset.bounds[0].start, dataset.bounds[0].stop
    ymin, ymax = dataset.bounds[1].start, dataset.bounds[1].stop
    xres, yres = dataset.res
    width = max(1, round((xmax - xmin) / xres))
    height = max(1, round((ymax - ymin) / yres))
    transform, _, _ = calculate_default_transform(
        dataset.crs.to_wkt(), crs.to_wkt(), width, height, xmin, ymin, xmax, ymax
    )
    return float(abs(transform.a)), float(abs(transform.e))


def is_sentinel2(name: str, dataset: RasterDataset) -> bool:
    """Whether a modality holds Sentinel-2 DN (a ``Sentinel2`` or a name ``s2...``).

    Args:
        name: Modality name.
        dataset: Its dataset.

    Returns:
        True for torchgeo's :class:`~torchgeo.datasets.Sentinel2` (and
        subclasses) and for modalities whose name starts with ``s2``.
    """
    return isinstance(dataset, Sentinel2) or name.lower().startswith('s2')


def file_date(dataset: RasterDataset, path: str) -> date | None:
    """Acquisition date of one file: torchgeo's ``filename_regex``/``date_format``.

    Falls back to the first ``YYYYMMDD``/``YYYY-MM-DD`` in the file name.

    Args:
        dataset: The file's dataset.
        path: The file.

    Returns:
        The date, or None.
    """
    name = os.path.basename(path)
    match = re.match(dataset.filename_regex, name, re.VERBOSE)
    if match is not None and match.groupdict().get('date'):
        try:
            return datetime.strptime(match['date'], dataset.date_format).date()
        except ValueError:
            pass
    return date_from_name(name)


def s2_offset_files(
    name: str, dataset: RasterDataset, harmonizer: S2Harmonizer
) -> frozenset[str]:
    """The files of a Sentinel-2 modality whose DN carry the 04.00 offset.

    Each file is placed by the ``_N0400_``-style baseline in its path, an offset
    tag in its metadata, else its acquisition date (see
    :class:`~torchgeo_decur.transforms.harmonize.S2Harmonizer`).

    Args:
        name: Modality name.
        dataset: Its dataset.
        harmonizer: Decides (and warns once for the dataset when it cannot).

    Returns:
        Paths of the files to shift.
    """
    files = dataset.index['filepath'] if 'filepath' in dataset.index else []
    out = set()
    for path in files:
        tags: dict[str, str] = {}
        if harmonizer.mode == 'auto':
            with rasterio.open(path) as src:
                tags = src.tags() | src.tags(1)
        if harmonizer.decide(
            f'modality {name!r} ({describe(dataset)})',
            name=str(path),
            tags=tags,
            when=file_date(dataset, str(path)),
        ):
            out.add(str(path))
    return frozenset(out)


def valid_fraction(image: Tensor, nodata: float | None) -> float:
    """Share of pixels whose bands are all valid (finite and not nodata).

    Args:
        image: Patch (C, H, W).
        nodata: Nodata value of the patch's dataset, or None.

    Returns:
        Fraction in [0, 1].
    """
    return float(valid_mask(image, nodata).all(dim=0).float().mean())


class CoRegisteredPatches(Dataset[dict[str, Tensor]]):
    """Read one patch per modality at a location, redrawing mostly-invalid ones.

    Indexed by the ``(x slice, y slice)`` locations of torchgeo's spatial samplers.
    Each modality's dataset reads the location on the common grid (the
    intersection's CRS and resolution), so the patches are co-registered pixel for
    pixel. When a modality has fewer than ``min_valid_fraction`` valid pixels, a new
    location inside ``region`` is drawn, from a generator seeded by the rejected
    location, so a given location always leads to the same patch (reproducible
    validation patches) and different training locations to different ones.
    """

    def __init__(
        self,
        datasets: Mapping[str, RasterDataset],
        region: shapely.Geometry,
        patch_size: int,
        res: tuple[float, float],
        min_valid_fraction: float,
        nodata: Mapping[str, float | None],
        seed: int = 0,
        max_draws: int = 100,
        dtypes: Mapping[str, torch.dtype | None] | None = None,
        on_invalid: Literal['error', 'skip'] = 'error',
        offset_files: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        """Initialize a new CoRegisteredPatches instance.

        Args:
            datasets: Modality name -> dataset, all on the same CRS and resolution.
            region: Where a redrawn patch's lower left corner may lie (the
                sampling region shrunk by the patch size), in CRS units.
            patch_size: Side length of a patch in pixels.
            res: (x, y) resolution of the common grid, CRS units per pixel.
            min_valid_fraction: Smallest share of valid pixels accepted for every
                modality, in [0, 1].
            nodata: Nodata value per modality (None: only non-finite is invalid).
            seed: Seed mixed into the redraws.
            max_draws: Locations tried before giving up.
            dtypes: Per modality, the type accepted patches are returned in
                (see :func:`storage_dtype`); None or missing: float32.
            on_invalid: A raster file that fails to read: ``'error'`` raises
                naming it and the modality; ``'skip'`` warns once per file and
                draws another patch.
            offset_files: Per Sentinel-2 modality, the files whose DN carry the
                processing baseline 04.00 offset (see :func:`s2_offset_files`).
        """
        self.datasets = dict(datasets)
        self.region = region
        self.patch_size = patch_size
        self.res = res
        self.min_valid_fraction = min_valid_fraction
        self.nodata = dict(nodata)
        self.seed = seed
        self.max_draws = max_draws
        self.dtypes = dict(dtypes or {})
        self.on_invalid = on_invalid
        #: Files that failed to read (reported once each) in this process.
        self.bad_files: set[str] = set()
        self.offset_files = dict(offset_files or {})

    def _read_one(self, m: str, ds: RasterDataset, x: slice, y: slice) -> Any:
        """``ds[x, y]`` (harmonized), naming the modality and failing file on errors."""
        offset = self.offset_files.get(m)
        try:
            return read_harmonized(ds, x, y, offset) if offset else ds[x, y]
        except (RasterioError, OSError) as err:
            found = unreadable_files(m, ds, x, y)
            detail = '; '.join(found) if found else f'{err}'
            raise RasterReadError(
                f'modality {m!r} ({describe(ds)}): a patch failed to read: {detail}'
            ) from err

    def read(self, x: slice, y: slice) -> dict[str, Tensor]:
        """Read every modality at one location, without validity checks.

        Args:
            x: Slice of x coordinates (CRS units).
            y: Slice of y coordinates (CRS units).

        Returns:
            ``{'image_<m>': (C_m, H, W) float32, 'bounds': (9,)}``.

        Raises:
            ValueError: If a dataset returns no ``image`` or not a (C, H, W) patch.
        """
        out: dict[str, Tensor] = {}
        size = (self.patch_size, self.patch_size)
        for m, ds in self.datasets.items():
            sample = self._read_one(m, ds, x, y)
            image = sample.get('image')
            if image is None or image.ndim != 3 or tuple(image.shape[-2:]) != size:
                shape = None if image is None else tuple(image.shape)
                raise ValueError(
                    f'modality {m!r} ({describe(ds)}) returned image of shape {shape} '
                    f'for a {size} patch; expected (C, {size[0]}, {size[1]}) '
                    '(time_series datasets and mask datasets are not supported)'
                )
            out[f'image_{m}'] = image.float()
            out.setdefault('bounds', sample['bounds'])
        return out

    def invalid(self, sample: Mapping[str, Tensor]) -> dict[str, float]:
        """Modalities whose valid share is below the threshold.

        Args:
            sample: Output of :meth:`read`.

        Returns:
            ``{modality: valid fraction}`` for every modality below the threshold.
        """
        out = {}
        for m in self.datasets:
            frac = valid_fraction(sample[f'image_{m}'], self.nodata[m])
            if frac < self.min_valid_fraction:
                out[m] = frac
        return out

    def to_storage(self, sample: dict[str, Tensor]) -> dict[str, Tensor]:
        """Convert each modality to its storage type, checking it is exact.

        Args:
            sample: Output of :meth:`read`.

        Returns:
            The sample with ``image_<m>`` in ``dtypes[m]`` where one is set.

        Raises:
            ValueError: If a patch holds values its storage type cannot hold
                (files of different types, or a ``nodata`` outside the type).
        """
        out = dict(sample)
        for m, dtype in self.dtypes.items():
            if dtype is None:
                continue
            image = sample[f'image_{m}']
            stored = image.to(dtype)
            if not torch.equal(stored.float(), image):
                raise ValueError(
                    f'modality {m!r} ({describe(self.datasets[m])}) returned values '
                    f'that are not exact {dtype} values, though its first file is '
                    'of that type (files of different data types, or a nodata value '
                    'outside the type?); pass native_dtypes=False to keep float32'
                )
            out[f'image_{m}'] = stored
        return out

    def redraw(self, x: slice, y: slice, attempt: int) -> tuple[slice, slice]:
        """A new location in ``region``, determined by the rejected one.

        Args:
            x: Rejected x slice.
            y: Rejected y slice.
            attempt: Number of the redraw, from 0.

        Returns:
            The new ``(x, y)`` slices, snapped to the pixel grid of the old one.
        """
        key = f'{self.seed}:{attempt}:{x.start:.6f}:{y.start:.6f}'.encode()
        rng = np.random.default_rng(zlib.crc32(key))
        xmin, ymin, xmax, ymax = self.region.bounds
        width = self.patch_size * self.res[0]
        height = self.patch_size * self.res[1]
        for _ in range(1000):
            px = rng.uniform(xmin, xmax) if xmax > xmin else xmin
            py = rng.uniform(ymin, ymax) if ymax > ymin else ymin
            # Keep the original pixel grid: whole-pixel steps from the old corner.
            px = x.start + round((px - x.start) / self.res[0]) * self.res[0]
            py = y.start + round((py - y.start) / self.res[1]) * self.res[1]
            if self.region.covers(shapely.Point(px, py)):
                break
        return slice(px, px + width), slice(py, py + height)

    def __getitem__(self, index: tuple[slice, ...]) -> dict[str, Tensor]:
        """Read a patch at ``index``, redrawing while a modality is mostly invalid.

        Args:
            index: ``(x slice, y slice)`` (a third, temporal slice is ignored: every
                dataset mosaics all its dates).

        Returns:
            ``{'image_<m>': (C_m, H, W), 'bounds': (9,)}`` in raw units, each
            image in its ``dtypes`` entry (float32 where none is set).

        Raises:
            ValueError: If ``max_draws`` locations in a row are mostly invalid.
        """
        x, y = index[0], index[1]
        bad: dict[str, float] = {}
        for attempt in range(self.max_draws):
            try:
                sample = self.read(x, y)
            except RasterReadError as err:
                if self.on_invalid == 'error':
                    raise
                if str(err) not in self.bad_files:
                    self.bad_files.add(str(err))
                    warnings.warn(
                        f'{err}; skipping the patch', UserWarning, stacklevel=2
                    )
                x, y = self.redraw(x, y, attempt)
                continue
            bad = self.invalid(sample)
            if not bad:
                return self.to_storage(sample)
            x, y = self.redraw(x, y, attempt)
        names = ', '.join(
            f'{m!r} ({describe(self.datasets[m])}, nodata={self.nodata[m]}, '
            f'last valid fraction {frac:.3f})'
            for m, frac in bad.items()
        )
        if not bad:
            raise ValueError(
                f'{self.max_draws} patches in a row could not be read '
                f'(on_invalid={self.on_invalid!r}); unreadable: '
                f'{sorted(self.bad_files)[:3]}'
            )
        raise ValueError(
            f'{self.max_draws} patches in a row had fewer than '
            f'min_valid_fraction={self.min_valid_fraction} valid (finite, '
            f'non-nodata) pixels in modality {names}: the sampled region is (almost) '
            'all nodata there; check the rasters or lower min_valid_fraction'
        )


class MultimodalGeoDataModule(
    PinMemoryOnCuda, TaskAgreement, StatisticsState, OptionalValidation, GeoDataModule
):
    """Co-registered multimodal patches from any torchgeo RasterDatasets.

    One dataset per modality; the first dataset's CRS and resolution (or ``crs``
    and ``res``) define the common grid, to which the others are reprojected on
    the fly (torchgeo's :class:`~torchgeo.datasets.IntersectionDataset`, spatial
    only: the dates of different sensors need not match). Training patches are
    drawn uniformly from the common ground (torchgeo's
    :class:`~torchgeo.samplers.RandomPatchSampler`, ``length`` per epoch);
    ``val_fraction`` keeps the eastern strip of that ground for validation, read
    on a grid of patches that lie entirely in the strip
    (:class:`ContainedGridSampler`), while training patches lie entirely west of it, so the
    two never share a pixel.

    A patch in which a modality has fewer than ``min_valid_fraction`` valid pixels
    (finite, not the dataset's nodata; a pixel counts when all its bands are valid)
    is replaced by another one. Set the nodata value on the files (or the
    dataset class's ``nodata``) so that the fill outside a reprojected scene is
    recognised; without one, only NaN/inf count as invalid.

    Batches hold ``image_<modality>`` (N, C_m, patch_size, patch_size), one view
    per modality (the task draws the augmented views), and ``bounds``. They leave
    the workers in the rasters' storage type (uint8, int8, uint16 or int16
    rasters as such, others as float32; ``native_dtypes=False``: all float32)
    and are pinned on a CUDA trainer. On the device they become float32 and each
    band is scaled with mean ± 2σ → [0, 1]
    (:class:`~torchgeo_decur.transforms.ClipNormalize`, as the DeCUR checkpoints);
    the statistics are given or estimated at ``setup`` from
    ``statistics_patches`` patches drawn with ``seed`` (nodata and non-finite values
    left out) and saved in ``hparams['statistics']``, which Lightning writes into
    every checkpoint (``datamodule_hyper_parameters``).
    """

    modality_noun = 'datasets'

    def __init__(
        self,
        datasets: dict[str, RasterDataset],
        patch_size: int = 256,
        length: int = 10000,
        batch_size: int = 64,
        num_workers: int = 0,
        crs: str | None = None,
        res: float | None = None,
        val_fraction: float = 0.0,
        min_valid_fraction: float = 0.9,
        statistics: dict[str, BandStats] | None = None,
        statistics_patches: int = 256,
        normalization: Normalization = 'decur',
        seed: int = 0,
        native_dtypes: bool = True,
        on_invalid: Literal['error', 'skip'] = 'error',
        coregistered: str | None = None,
        s2_harmonize: S2Harmonize = 'auto',
    ) -> None:
        """Initialize a new MultimodalGeoDataModule instance.

        Args:
            datasets: Modality name -> torchgeo RasterDataset, modality 1 first;
                the names must be the task's ``modalities``.
            patch_size: Side length of the patches in pixels of the common grid.
            length: Random training patches per epoch.
            batch_size: Patches per batch (per device).
            num_workers: Data loading worker processes.
            crs: CRS of the common grid (e.g. ``'EPSG:32632'``); default: the
                first dataset's.
            res: Resolution of the common grid in CRS units per pixel; default:
                the first dataset's.
            val_fraction: Share of the common ground's width (its eastern strip)
                kept for validation, in [0, 1); 0: no validation.
            min_valid_fraction: Smallest share of valid pixels every modality
                must have in a patch, in [0, 1].
            statistics: Per-modality band statistics in raw units,
                ``{m: {'mean': [...], 'std': [...]}}``; modalities left out are
                estimated.
            statistics_patches: Patches drawn to estimate missing statistics.
            normalization: Input scaling on the device (see
                :data:`~torchgeo_decur.datamodules.scaling.Normalization`):
                ``'decur'``/``'decur_pretraining'`` mean ± 2σ → [0, 1] per band,
                ``'decur_uint8'`` the same in 1/255 steps, ``'none'`` raw values
                as float32.
            seed: Seed of the statistics sample, the training sampler and redraws.
            native_dtypes: Workers return 8- and 16-bit integer rasters in their
                own type, converted to float32 on the device (the same values);
                False: as float32 (4 bytes per value through the workers).
            on_invalid: Raster files that cannot be read: ``'error'`` raises
                naming the file and modality (files torchgeo could not open at
                all: at ``setup``); ``'skip'`` warns, listing them, and draws
                other patches instead of those that fail.
            coregistered: Folder written by ``torchgeo-decur coregister`` from
                these datasets: patches are windowed reads of its tiles, snapped
                to its grid, instead of warping every file per patch (see
                :mod:`torchgeo_decur.datamodules.coregistered`).
            s2_harmonize: Remove the 1000 DN offset of Sentinel-2 processing
                baseline 04.00+, file by file, from Sentinel-2 modalities
                (torchgeo ``Sentinel2`` datasets and names starting with ``s2``):
                ``'auto'`` (by the ``_N0400_``-style baseline in the file path,
                an offset tag in the file, else the date from the dataset's
                ``filename_regex``/``date_format``, >= 2022-01-25; warns once
                per dataset when none tells), ``'always'`` or ``'never'``.

        Raises:
            ValueError: For no datasets, a value that is not a RasterDataset, or
                invalid sizes and fractions.
        """
        super().__init__(
            RasterDataset,
            batch_size=batch_size,
            patch_size=patch_size,
            length=length,
            num_workers=num_workers,
        )
        if not datasets:
            raise ValueError('datasets must name at least one modality')
        for m, ds in datasets.items():
            if not isinstance(ds, RasterDataset):
                raise ValueError(
                    f'datasets[{m!r}] must be a torchgeo RasterDataset, got '
                    f'{type(ds).__name__}'
                )
            if ds.time_series:
                raise ValueError(
                    f'datasets[{m!r}] ({describe(ds)}) has time_series=True; '
                    'MultimodalGeoDataModule needs one (C, H, W) mosaic per modality'
                )
        if isinstance(patch_size, bool) or not isinstance(patch_size, int):
            raise ValueError(f'patch_size must be an int (pixels), got {patch_size!r}')
        if patch_size < 1 or length < 1 or batch_size < 1 or statistics_patches < 1:
            raise ValueError(
                'patch_size, length, batch_size and statistics_patches must be >= 1, '
                f'got {patch_size}, {length}, {batch_size}, {statistics_patches}'
            )
        if length > MAX_LENGTH:
            raise ValueError(
                f'length={length:g} patches per epoch is more than {MAX_LENGTH}: '
                "torchgeo's RandomPatchSampler draws every location of an epoch "
                f'up front (about {8 * length / 2**30:,.0f} GiB); use a smaller '
                'length and more epochs'
            )
        if not 0 <= val_fraction < 1:
            raise ValueError(f'val_fraction must be in [0, 1), got {val_fraction}')
        if on_invalid not in ('error', 'skip'):
            raise ValueError(
                f"on_invalid must be 'error' or 'skip', got {on_invalid!r}"
            )
        if not 0 <= min_valid_fraction <= 1:
            raise ValueError(
                f'min_valid_fraction must be in [0, 1], got {min_valid_fraction}'
            )
        resolve_normalization(normalization, type(self).__name__)
        check_s2_harmonize(s2_harmonize)
        unknown = sorted(set(statistics or {}) - set(datasets))
        if unknown:
            raise ValueError(
                f'statistics names modalities {unknown} that are not in datasets '
                f'{list(datasets)}'
            )
        self.datasets = dict(datasets)
        self.save_hyperparameters(ignore=['datasets'])
        self.aug = ApplyToKeys({})
        self.channels: dict[str, int] = {}
        self._checked_task = False

    @property
    def modalities(self) -> list[str]:
        """Modality names, in the order of ``datasets``."""
        return list(self.datasets)

    # ------------------------------------------------------------------ grid
    def build_intersection(self) -> GeoDataset:
        """Put every dataset on the common grid and intersect their footprints.

        Returns:
            The (nested) IntersectionDataset, or the single dataset.

        Raises:
            ValueError: If a dataset does not overlap the others, naming it.
        """
        first_name, first = next(iter(self.datasets.items()))
        if self.hparams['crs'] is not None:
            target = CRS.from_user_input(self.hparams['crs'])
            if self.hparams['res'] is None and target != first.crs:
                # The first dataset's resolution is in its own CRS's units
                # (e.g. degrees): carry it over to the target CRS.
                first.res = converted_res(first, target)
            first.crs = target
        if self.hparams['res'] is not None:
            first.res = float(self.hparams['res'])
        joint: GeoDataset = first
        names = [first_name]
        for m, ds in list(self.datasets.items())[1:]:
            try:
                joint = IntersectionDataset(joint, ds, spatial_only=True)
            except RuntimeError as err:
                raise ValueError(
                    f'modality {m!r} ({describe(ds)}) does not overlap modalities '
                    f'{names} ('
                    + ', '.join(describe(self.datasets[n]) for n in names)
                    + f') on the ground: {err}'
                ) from None
            names.append(m)
        return joint

    def _regions(
        self, joint: GeoDataset
    ) -> tuple[shapely.Geometry, shapely.Geometry | None]:
        """Training and validation ground (the validation strip is the east)."""
        ground = joint.index.geometry.union_all()
        fraction = float(self.hparams['val_fraction'])
        if fraction == 0:
            return ground, None
        xmin, ymin, xmax, ymax = ground.bounds
        cut = xmin + (1 - fraction) * (xmax - xmin)
        train = ground & shapely.box(xmin, ymin, cut, ymax)
        val = ground & shapely.box(cut, ymin, xmax, ymax)
        return train, val

    def _too_small(
        self, where: str, joint: GeoDataset, region: shapely.Geometry | None = None
    ) -> ValueError:
        """Error for a patch that does not fit the sampling ground."""
        shape = region if region is not None else joint.index.geometry.union_all()
        xmin, ymin, xmax, ymax = shape.bounds
        res = joint.res
        size = self.hparams['patch_size']
        # The ground is rarely a rectangle (reprojected footprints are rotated,
        # the modalities overlap partly): a patch must fit inside its outline,
        # not just inside its bounding box. Find the largest that does.
        fits = 0
        low, high = 1, int(size) - 1
        while low <= high:
            mid = (low + high) // 2
            inner = shape.buffer(-mid * max(res) / 2, join_style='mitre')
            if inner.is_empty:
                high = mid - 1
            else:
                fits, low = mid, mid + 1
        return ValueError(
            f'patch_size={size} px ({size * res[0]:g} x {size * res[1]:g} CRS '
            f'units) does not fit the {where} of modalities {self.modalities} '
            f'({", ".join(describe(d) for d in self.datasets.values())}): its '
            f'bounding box is {(xmax - xmin) / res[0]:.0f} x '
            f'{(ymax - ymin) / res[1]:.0f} px, but its outline is not a rectangle '
            f'and the largest square patch inside it is about {fits} px. Use '
            'patch_size <= that, a smaller val_fraction, or a coarser res'
        )

    def s2_offset_files(self) -> dict[str, frozenset[str]]:
        """Per Sentinel-2 modality, the files whose DN carry the 04.00 offset.

        Decided by ``s2_harmonize`` (see :func:`s2_offset_files`); warns once per
        dataset that ``'auto'`` cannot place.

        Returns:
            Modality -> paths of its files to shift (Sentinel-2 modalities only).
        """
        harmonizer = S2Harmonizer(self.hparams['s2_harmonize'])
        return {
            m: s2_offset_files(m, ds, harmonizer)
            for m, ds in self.datasets.items()
            if is_sentinel2(m, ds)
        }

    def _nodata(self) -> dict[str, float | None]:
        return {m: dataset_nodata(ds) for m, ds in self.datasets.items()}

    # ----------------------------------------------------------------- setup
    def setup(self, stage: str) -> None:
        """Build the common grid, samplers, statistics and the scaling.

        Args:
            stage: Either 'fit', 'validate', 'test', or 'predict'.

        Raises:
            ValueError: For datasets that do not overlap, patches that do not fit,
                all-nodata ground, statistics of the wrong length, or dataset
                names / band counts that disagree with the task's.
        """
        self._check_task_hparams()
        for m, ds in self.datasets.items():
            check_raster_files(m, ds, self.hparams['on_invalid'])
        joint = self.build_intersection()
        train_region, val_region = self._regions(joint)
        size = int(self.hparams['patch_size'])
        seed = int(self.hparams['seed'])
        nodata = self._nodata()
        min_valid = float(self.hparams['min_valid_fraction'])
        dtypes = {
            m: storage_dtype(ds) if self.hparams['native_dtypes'] else None
            for m, ds in self.datasets.items()
        }
        offset_files = self.s2_offset_files()

        def sampler(region: shapely.Geometry, length: int) -> RandomPatchSampler:
            s = RandomPatchSampler(
                joint, size=size, length=length, roi=region, generator=seed
            )
            if s.series.iloc[0].is_empty:
                raise self._too_small(
                    'training ground' if val_region is not None else 'intersection',
                    joint,
                    region,
                )
            return s

        patches: Any = CoRegisteredPatches
        if self.hparams.get('coregistered') is not None:
            from .coregistered import store_patches

            patches = store_patches(self.hparams['coregistered'], self, joint, dtypes)
        self.train_sampler = sampler(train_region, int(self.hparams['length']))
        # Redrawn lower-left corners lie where a whole patch fits in the region.
        corner = shapely.affinity.translate(
            self.train_sampler.series.iloc[0],
            -size * joint.res[0] / 2,
            -size * joint.res[1] / 2,
        )
        self.train_dataset = cast(
            Any,
            patches(
                self.datasets,
                corner,
                size,
                joint.res,
                min_valid,
                nodata,
                seed,
                dtypes=dtypes,
                on_invalid=self.hparams['on_invalid'],
                offset_files=offset_files,
            ),
        )
        if val_region is not None:
            self.val_sampler = ContainedGridSampler(joint, size, val_region)
            if len(self.val_sampler) == 0:
                raise self._too_small('validation strip', joint, val_region)
            if len(self.val_sampler) < 2:
                raise ValueError(
                    f'the validation strip (val_fraction={self.hparams["val_fraction"]}'
                    f' of the common ground of modalities {self.modalities}) holds '
                    f'{len(self.val_sampler)} patch of {size} x {size} px; the '
                    'pretraining losses need at least 2 per batch. Raise '
                    'val_fraction, lower patch_size, or set val_fraction: 0'
                )
            val_corner = shapely.affinity.translate(
                shapely.buffer(val_region, -size * max(joint.res) * math.sqrt(2) / 2),
                -size * joint.res[0] / 2,
                -size * joint.res[1] / 2,
            )
            self.val_dataset = cast(
                Any,
                patches(
                    self.datasets,
                    val_corner if not val_corner.is_empty else val_region,
                    size,
                    joint.res,
                    min_valid,
                    nodata,
                    seed + 1,
                    dtypes=dtypes,
                    on_invalid=self.hparams['on_invalid'],
                    offset_files=offset_files,
                ),
            )
        self._setup_scaling(
            sampler(train_region, int(self.hparams['statistics_patches'])), nodata
        )

    def _setup_scaling(
        self, stats_sampler: RandomPatchSampler, nodata: Mapping[str, float | None]
    ) -> None:
        """Estimate missing statistics and build the on-device scaling."""
        given = given_statistics(self.hparams['statistics'])
        missing = [m for m in self.modalities if m not in given]
        estimators = {m: BandStatistics(nodata[m]) for m in self.modalities}
        loader: DataLoader[dict[str, Tensor]] = DataLoader(
            cast(Dataset[dict[str, Tensor]], self.train_dataset),
            sampler=stats_sampler,
            batch_size=None,
            num_workers=int(self.hparams['num_workers']),
        )
        scale = self.hparams['normalization'] != 'none'
        todo = missing if scale else []
        for i, sample in enumerate(loader):
            for m in self.modalities:
                self.channels[m] = int(sample[f'image_{m}'].shape[0])
            for m in todo:
                estimators[m].update(sample[f'image_{m}'].float())
            if not todo and i == 0:
                break
        stats = dict(given)
        for m in todo:
            stats[m] = finish_estimate(
                estimators[m], f'modality {m!r} ({describe(self.datasets[m])})'
            )
        check_statistics(stats, self.channels, lambda m: describe(self.datasets[m]))
        self._check_task_hparams()
        if scale:
            self.hparams['statistics'] = {m: stats[m] for m in self.modalities}
        self._build_aug()

    def _build_aug(self) -> None:
        # Both convert the workers' storage types to float32 on the device.
        scaling = resolve_normalization(
            self.hparams['normalization'], type(self).__name__
        )
        if scaling.scale:
            self.aug = clip_normalization(
                self.hparams['statistics'], self.modalities, scaling.quantize
            )
        else:
            self.aug = to_float32(self.modalities)

    # ------------------------------------------------------- task agreement
    def _describe(self, m: str) -> str:
        return describe(self.datasets[m])


class ContainedGridSampler(GeoSampler):
    """Non-overlapping grid patches lying entirely inside a region.

    Written instead of using torchgeo's
    :class:`~torchgeo.samplers.GriddedPatchSampler` because that one also yields
    patches that only partly overlap the region (and centres the grid on it), which
    would let validation patches reach into the training ground. Here the grid
    starts at the region's south-west corner, snapped inwards to the dataset's
    pixel grid, and a patch is kept only when the region covers it.
    """

    def __init__(
        self, dataset: GeoDataset, size: int, region: shapely.Geometry
    ) -> None:
        """Initialize a new ContainedGridSampler instance.

        Args:
            dataset: Dataset whose pixel grid (bounds and resolution) is used.
            size: Patch side length in pixels (also the stride).
            region: Where patches may lie, in the dataset's CRS.
        """
        xres, yres = dataset.res
        x_origin, y_origin = dataset.bounds[0].start, dataset.bounds[1].start
        width, height = size * xres, size * yres
        rx0, ry0, rx1, ry1 = region.bounds
        # Tolerance for coordinates that are a whole number of pixels apart but
        # not exactly representable in floating point.
        tol = 1e-6
        first_col = math.ceil((rx0 - x_origin) / xres - tol)
        first_row = math.ceil((ry0 - y_origin) / yres - tol)
        cover = region.buffer(tol * max(xres, yres))
        self.locations: list[tuple[slice, slice]] = []
        y = y_origin + first_row * yres
        while y + height <= ry1 + tol * yres:
            x = x_origin + first_col * xres
            while x + width <= rx1 + tol * xres:
                if cover.covers(shapely.box(x, y, x + width, y + height)):
                    self.locations.append((slice(x, x + width), slice(y, y + height)))
                x += width
            y += height
        self._length = len(self.locations)

    def __iter__(self) -> Iterator[tuple[slice, slice]]:
        """Yield the kept patch locations, south to north, west to east.

        Yields:
            ``(x slice, y slice)`` in CRS units.
        """
        yield from self.locations


__all__ = (
    'CoRegisteredPatches',
    'ContainedGridSampler',
    'MultimodalGeoDataModule',
    'dataset_nodata',
)
