"""Faults written into copies of the tiny fixtures: one function per kind of damage.

Each fault takes the file to damage (a raster or image; for file-level faults
any file) and changes it in place, as a broken download, a bad export or a
wrong conversion would. The catalogue suite (``test_catalogue.py``) applies
every fault of :data:`FAULTS` to every reader.
"""

import os
from collections.abc import Callable

import numpy as np
import rasterio
from PIL import Image

#: An error page as a web server sends it instead of the file asked for.
HTML = '<!DOCTYPE html>\n<html><body><h1>404 Not Found</h1></body></html>\n'


def truncate(path: str) -> None:
    """Keep the first half of the file (a download cut short)."""
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[: max(1, len(data) // 2)])


def html_page(path: str) -> None:
    """Replace the file by an HTML error page under the same name."""
    with open(path, 'w') as f:
        f.write(HTML)


def empty(path: str) -> None:
    """Replace the file by an empty one."""
    open(path, 'wb').close()


def missing(path: str) -> None:
    """Remove the file: its partner files of the other modalities stay."""
    os.remove(path)


def is_image(path: str) -> bool:
    """Whether ``path`` is a PIL image (JPEG/PNG) rather than a GeoTIFF."""
    return path.lower().endswith(('.jpg', '.jpeg', '.png'))


def rewrite(
    path: str,
    change: Callable[[np.ndarray], np.ndarray],
    **profile: object,
) -> None:
    """Rewrite a raster or image with changed values (and profile entries).

    Args:
        path: GeoTIFF or PIL image.
        change: Maps the (C, H, W) values to the new ones.
        **profile: rasterio profile entries to change (GeoTIFF only).
    """
    if is_image(path):
        with Image.open(path) as im:
            mode = im.mode
            data = np.asarray(im)
        array = data[None] if data.ndim == 2 else np.moveaxis(data, -1, 0)
        out = change(array)
        image = out[0] if out.shape[0] == 1 else np.moveaxis(out, 0, -1)
        fmt = 'PNG' if path.lower().endswith('.png') else 'JPEG'
        if out.dtype != data.dtype or (fmt == 'JPEG' and out.shape[0] == 2):
            fmt = 'PNG'  # JPEG cannot hold the changed values; keep the name
        kwargs = {'quality': 100} if fmt == 'JPEG' else {}
        converted = Image.fromarray(
            image.astype('<u2') if out.dtype == np.uint16 else image
        )
        if out.dtype == data.dtype and out.shape[0] == array.shape[0]:
            converted = converted.convert(mode)
        converted.save(path, format=fmt, **kwargs)
        return
    with rasterio.open(path) as src:
        values = src.read()
        meta = src.profile
    out = change(values)
    meta.update(count=out.shape[0], dtype=str(out.dtype), **profile)
    with rasterio.open(path, 'w', **meta) as dst:
        dst.write(out)


def wrong_band_count(path: str) -> None:
    """Drop the last band (or add one to a single-band file)."""

    def change(a: np.ndarray) -> np.ndarray:
        return a[:-1] if a.shape[0] > 1 else np.concatenate([a, a])

    rewrite(path, change)


def mixed_dtype(path: str) -> None:
    """Store the same values in another data type than the modality's others."""

    def change(a: np.ndarray) -> np.ndarray:
        if is_image(path):
            return a[:1].astype(np.uint16) * 257  # a 16-bit image among 8-bit ones
        if np.issubdtype(a.dtype, np.floating):
            return a.astype(np.float64)
        return a.astype(np.float32)

    rewrite(path, change)


def _nodata(path: str) -> float | None:
    if is_image(path):
        return None
    with rasterio.open(path) as src:
        return None if src.nodata is None else float(src.nodata)


def all_nodata(path: str) -> None:
    """Every pixel the file's nodata value (NaN for floats, 0 for integers)."""
    nodata = _nodata(path)

    def change(a: np.ndarray) -> np.ndarray:
        if nodata is not None:
            return np.full_like(a, nodata)
        if np.issubdtype(a.dtype, np.floating):
            return np.full_like(a, np.nan)
        return np.zeros_like(a)

    rewrite(path, change)


def constant_band(path: str) -> None:
    """The first band holds one value everywhere."""

    def change(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        out[0] = a[0].flat[0] if a[0].flat[0] != 0 else 1
        return out

    rewrite(path, change)


def nan_inf(path: str) -> None:
    """The first band is all NaN and inf (float rasters; integers become float32)."""

    def change(a: np.ndarray) -> np.ndarray:
        out = a.astype(
            np.float32 if not np.issubdtype(a.dtype, np.floating) else a.dtype
        )
        out[0] = np.nan
        out[0, :, : out.shape[2] // 2] = np.inf
        return out

    if is_image(path):
        all_nodata(path)  # 8-bit images hold no NaN: the nearest is a blank image
        return
    rewrite(path, change, nodata=None)


def corrupt_band(path: str, band: int = 2) -> None:
    """Garble the compressed data of one band only (band-interleaved, deflate).

    The header and every other band read; decoding ``band`` fails.
    """
    with rasterio.open(path) as src:
        values = src.read()
        meta = src.profile
    meta.update(compress='deflate', interleave='band', tiled=False)
    meta.pop('blockysize', None)
    with rasterio.open(path, 'w', **meta) as dst:
        dst.write(values)
    with rasterio.open(path) as src:
        offset = int(src.get_tag_item('BLOCK_OFFSET_0_0', 'TIFF', bidx=band))
        size = int(src.get_tag_item('BLOCK_SIZE_0_0', 'TIFF', bidx=band))
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(b'\xff' * size)


#: Name -> fault, the columns of the catalogue table.
FAULTS: dict[str, Callable[[str], None]] = {
    'truncated': truncate,
    'html-as-image': html_page,
    'empty-file': empty,
    'wrong-band-count': wrong_band_count,
    'mixed-dtypes': mixed_dtype,
    'all-nodata': all_nodata,
    'constant-band': constant_band,
    'nan-inf': nan_inf,
    'missing-partner': missing,
}
