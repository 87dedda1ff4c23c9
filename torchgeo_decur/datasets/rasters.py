"""Reading single-band GeoTIFFs with errors that name the file.

rasterio reports a damaged file with messages such as ``Read failed. See previous
exception for details.`` (a truncated file opens, because its header is intact,
and fails only when its pixels are read) or ``'B2.tif' not recognized as being in a
supported file format`` (a text or HTML error page saved as ``.tif``), raised as
``RasterioIOError``, an ``OSError``. On 250k locations the user needs the full path
to find and replace the file, and the datasets' ``on_invalid='skip'`` handling
catches ``ValueError``; :func:`read_band` turns every read failure into a
:class:`RasterReadError` (a ``ValueError``) naming the full path and, when given,
the sample it belongs to.
"""

import copy
import os
import warnings
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from torchgeo.datasets import RasterDataset

from ..transforms.harmonize import remove_offset
from ..transforms.statistics import valid_mask


class RasterReadError(ValueError):
    """A raster file could not be opened or read (corrupt, truncated, not a TIFF)."""


def read_band(
    path: str,
    out_shape: tuple[int, int] | None = None,
    where: str = '',
    band: int = 1,
    expect_count: int | None = 1,
    keep_dtypes: Collection[str] = (),
) -> np.ndarray:
    """Read one band of a raster file as float32, naming the file on any failure.

    Files whose data type is listed in ``keep_dtypes`` are returned in that type
    instead. GDAL resamples in the file's type either way (a bilinear uint16 read
    rounds to whole numbers, also into a float32 buffer), so such a read equals
    the float32 one converted, value for value.

    Args:
        path: Raster file (usually a single-band GeoTIFF).
        out_shape: (height, width) to resample to bilinearly, or None for the
            native grid.
        where: What the file belongs to, for the message (e.g. ``SSL4EO-S12
            location '0000042'``).
        band: 1-based index of the band to read.
        expect_count: Required number of bands in the file (None: any).
        keep_dtypes: File data types (rasterio names, e.g. ``'uint16'``) read
            as they are rather than as float32.

    Returns:
        Array of shape ``out_shape`` (or the native (H, W)) in the file's units:
        float32, or the file's own type if it is in ``keep_dtypes``.

    Raises:
        RasterReadError: If the file cannot be opened or decoded, or holds a
            different number of bands than ``expect_count``.
    """
    suffix = f' ({where})' if where else ''
    with naming_file(path, where), rasterio.open(path) as src:
        if expect_count is not None and src.count != expect_count:
            raise RasterReadError(
                f'{path!r} has {src.count} bands; expected '
                f'{"a single band" if expect_count == 1 else expect_count}'
                f'{suffix}'
            )
        dtype = 'float32'
        if 1 <= band <= src.count and src.dtypes[band - 1] in keep_dtypes:
            dtype = src.dtypes[band - 1]
        if out_shape is None:
            array = src.read(band, out_dtype=dtype)
        else:
            array = src.read(
                band,
                out_shape=out_shape,
                resampling=Resampling.bilinear,
                out_dtype=dtype,
            )
        nodata = src.nodata
    out = np.asarray(array, dtype=dtype)
    check_values(out[None], f'{path!r}{suffix}', nodata)
    return out


def check_values(values: np.ndarray, what: str, nodata: float | None = None) -> None:
    """Refuse bands without a valid value; warn about constant bands.

    A band that is all NaN/inf, or all the file's nodata value, is what a failed
    export or a blank download looks like; one holding a single value everywhere
    carries no information (and scales to a constant input).

    Args:
        values: (C, H, W) values of one file or sample.
        what: The file (and what it belongs to), for the messages.
        nodata: The file's nodata value, if any.

    Raises:
        RasterReadError: If a band holds no finite, non-nodata value.
    """
    for band, array in enumerate(values, start=1):
        valid = (
            np.isfinite(array)
            if array.dtype.kind == 'f'
            else np.ones_like(array, dtype=bool)
        )
        if nodata is not None and not np.isnan(nodata):
            valid &= array != nodata
        if not valid.any():
            raise RasterReadError(
                f'{what}: band {band} holds no valid value (all NaN/inf or '
                f'nodata={nodata}); the file is blank or damaged'
            )
        ok = array[valid]
        if ok.size > 1 and ok.min() == ok.max():
            warnings.warn(
                f'{what}: band {band} is constant ({ok.flat[0]!r} everywhere); '
                'check the file',
                UserWarning,
                stacklevel=3,
            )


@contextmanager
def naming_file(path: str, where: str = '') -> Iterator[None]:
    """Re-raise any failure to decode ``path`` as a :class:`RasterReadError`.

    Wraps rasterio and PIL reads: ``RasterioError``/``OSError`` (unreadable,
    truncated, unknown format), ``SyntaxError`` (PIL's broken PNG/JPEG) and
    ``ValueError`` (PIL's unsupported band layouts).

    Args:
        path: The file being read.
        where: What the file belongs to, for the message.

    Yields:
        Nothing; the block runs inside the handler.

    Raises:
        RasterReadError: Naming ``path``, chained to the original error.
    """
    suffix = f' ({where})' if where else ''
    try:
        yield
    except RasterReadError:
        raise
    except (RasterioError, OSError, SyntaxError, ValueError) as err:
        size = _size_or_none(path)
        raise RasterReadError(
            f'cannot read {path!r}{suffix}: {err} ({_describe_size(size)}; the file '
            'is corrupt, truncated or not an image of the expected format: '
            'download it again or remove the sample)'
        ) from err


def _size_or_none(path: str) -> int | None:
    """File size in bytes, or None if it cannot be read."""
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _describe_size(size: int | None) -> str:
    """Human-readable file size for error messages."""
    return 'file size unknown' if size is None else f'{size} bytes on disk'


def read_harmonized(
    dataset: RasterDataset, x: slice, y: slice, offset_files: frozenset[str]
) -> dict[str, Any]:
    """Read a location, removing the offset from the pixels of ``offset_files``.

    When only some files carry the offset, the two groups of files are read
    separately and merged: pixels the offset files leave invalid (nodata, 0 or
    non-finite) come from the others.

    Args:
        dataset: A Sentinel-2 raster dataset.
        x: Slice of x coordinates (CRS units).
        y: Slice of y coordinates (CRS units).
        offset_files: Files whose DN carry the offset.

    Returns:
        The dataset's sample with the harmonized ``image``.
    """
    paths = dataset.index['filepath'].astype(str)
    shifted = paths.isin(offset_files)
    if bool(shifted.all()):
        sample = dict(dataset[x, y])
        sample['image'] = remove_offset(sample['image'])
        return sample
    nodata = 0.0 if dataset.nodata is None else float(dataset.nodata)
    merged: dict[str, Any] | None = None
    for rows, shift in ((shifted, True), (~shifted, False)):
        part = copy.copy(dataset)
        part.index = dataset.index[rows]
        try:
            sample = dict(part[x, y])
        except IndexError:  # no file of this group covers the location
            continue
        image = remove_offset(sample['image']) if shift else sample['image']
        if merged is None:
            merged = sample | {'image': image}
        else:
            hole = ~(valid_mask(merged['image'], nodata) & (merged['image'] != 0))
            merged['image'] = torch.where(hole, image, merged['image'])
    if merged is None:
        return dict(dataset[x, y])  # raises torchgeo's own error
    return merged
