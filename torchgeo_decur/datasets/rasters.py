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

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioError


class RasterReadError(ValueError):
    """A raster file could not be opened or read (corrupt, truncated, not a TIFF)."""


def read_band(
    path: str,
    out_shape: tuple[int, int] | None = None,
    where: str = '',
    band: int = 1,
    expect_count: int | None = 1,
) -> np.ndarray:
    """Read one band of a raster file as float32, naming the file on any failure.

    Args:
        path: Raster file (usually a single-band GeoTIFF).
        out_shape: (height, width) to resample to bilinearly, or None for the
            native grid.
        where: What the file belongs to, for the message (e.g. ``SSL4EO-S12
            location '0000042'``).
        band: 1-based index of the band to read.
        expect_count: Required number of bands in the file (None: any).

    Returns:
        Float32 array of shape ``out_shape`` (or the native (H, W)) in the file's
        units.

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
        if out_shape is None:
            array = src.read(band, out_dtype='float32')
        else:
            array = src.read(
                band,
                out_shape=out_shape,
                resampling=Resampling.bilinear,
                out_dtype='float32',
            )
    return np.asarray(array, dtype=np.float32)


@contextmanager
def naming_file(path: str, where: str = '') -> Iterator[None]:
    """Re-raise any failure to decode ``path`` as a :class:`RasterReadError`.

    Wraps rasterio and PIL reads: ``RasterioError``/``OSError`` (unreadable,
    truncated, unknown format) and ``SyntaxError`` (PIL's broken PNG/JPEG).

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
    except (RasterioError, OSError, SyntaxError) as err:
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
