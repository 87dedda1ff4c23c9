"""Compact array cache of paired SSL4EO-S12 locations.

Reading one paired sample from the GeoTIFF layout opens 2 views x (2 + 13) band
files and resamples each. The cache stores, per location and product, every
timestamp and band already on the ``size`` x ``size`` grid in one ``.npy`` file::

    <cache>/manifest.json
    <cache>/s1/<location>.npy      (T_s1 x 2, size, size)
    <cache>/s2c/<location>.npy     (T_s2 x 13, size, size)   (or s2a/, 12 bands)

timestamps in acquisition order (the date in the product folder name, see
:func:`~torchgeo_decur.datasets.ssl4eo_s12.acquisition_order`), bands in
checkpoint order. A sample then costs two
small reads of just the planes it needs (plain ``.npy`` files, so they can also
be memory-mapped with ``np.load(path, mmap_mode='r')``).

Encodings, and what each keeps *exactly* (the tests check every claim):

* ``raw`` (default): lossless. S1 dB as float32 (NaN / -inf kept), S2 DN as
  uint16: the bilinear resampling of uint16 bands returns whole numbers in
  [0, 65535], which the writer verifies value by value. Samples are identical to
  the GeoTIFF path (same values, same types: S1 float32, S2 uint16), so tensors
  after *any* normalisation (``quantize`` on or off, or none) are identical.
  9.5 MB per location with four timestamps.
* ``float32``: lossless for any input, 16.7 MB per location; for S2 data whose
  resampled values are not whole numbers.
* ``uint8``: the DeCUR reference's own storage, 4.2 MB per location: the code
  ``k = floor(255 * clip((x - (mean - 2 std)) / (4 std), 0, 1))`` per band (NaN /
  -inf -> 0), computed with :func:`~torchgeo_decur.transforms.ssl4eo_s12_normalization`
  itself. ``k / 255`` equals ``ClipNormalize(quantize=True)`` bit for bit, so it
  is exact for ``quantize: true``. With ``quantize: false`` the GeoTIFF path keeps
  the sub-1/255 detail that no 8-bit code holds; the data module therefore refuses
  that combination instead of silently changing the input.

float16 is deliberately not offered: it has an 11-bit significand, so it is exact
neither for the raw values (DN above 2048 lose their last bits, dB values are
rounded) nor for the normalised ones (k / 255 and continuous values in [0, 1]
are rounded), i.e. it can never reproduce the GeoTIFF path.

Write a cache with ``torchgeo-decur cache-ssl4eo-s12 --root ROOT --output CACHE``
(:mod:`torchgeo_decur.cli.cache_ssl4eo_s12`) and read it with
``SSL4EOS12Pairs(cache=CACHE)`` or the data module's ``cache``. This module holds
the format and the reader only.
"""

import io
import os
from collections.abc import Sequence
from typing import Any, BinaryIO, Literal

import numpy as np
import torch
from torch import Tensor

from .resumable import MANIFEST, ResumableFolder

Encoding = Literal['raw', 'float32', 'uint8']

#: Identifies a cache manifest; bumped when the layout changes.
FORMAT = 'torchgeo_decur/ssl4eo_s12_cache'
#: 2: timestamps in acquisition order (version 1 stored them in folder name
#: order, which for Sentinel-1 is not time order).
VERSION = 2
#: Product folders a cache can hold.
PRODUCTS = ('s1', 's2c', 's2a')
#: Settings that must agree for a rerun to resume into an existing cache.
SETTING_KEYS = ('format', 'version', 'source', 'encoding', 'products', 'bands', 'size')
#: Marker in the names of temporary array files.
TMP_MARKER = '.tmp-'
#: Keys every manifest holds.
MANIFEST_KEYS = (
    'format',
    'version',
    'encoding',
    'products',
    'bands',
    'size',
    'source',
    'locations',
    'skipped',
)
#: How to rebuild a cache, for error messages.
REWRITE_HINT = (
    'rewrite it with `torchgeo-decur cache-ssl4eo-s12 --root ROOT --output CACHE '
    '--overwrite`'
)
#: How a cache folder is written: settings record, resume, refusal, overwrite.
FOLDER = ResumableFolder(
    noun='SSL4EO-S12 cache',
    command='torchgeo-decur cache-ssl4eo-s12',
    rewrite_hint=REWRITE_HINT,
    setting_keys=SETTING_KEYS,
    data_files=tuple(f'{p}/*.npy' for p in PRODUCTS),
    temporaries=tuple(f'{p}/*.npy{TMP_MARKER}*' for p in PRODUCTS),
)
#: Storage dtype of each encoding, per product kind (S1 and S2).
DTYPES: dict[str, dict[str, Any]] = {
    'raw': {'s1': np.dtype('float32'), 's2': np.dtype('uint16')},
    'float32': {'s1': np.dtype('float32'), 's2': np.dtype('float32')},
    'uint8': {'s1': np.dtype('uint8'), 's2': np.dtype('uint8')},
}


def product_kind(product: str) -> str:
    """``'s1'`` or ``'s2'`` for a product folder name."""
    return 's1' if product == 's1' else 's2'


def read_manifest(path: str) -> dict[str, Any]:
    """Read and validate the manifest of a cache.

    Args:
        path: Cache directory.

    Returns:
        The manifest.

    Raises:
        ValueError: If the directory holds no manifest, or one that is not valid
            JSON, misses entries, or was written for another format version
            (each message names the file).
    """
    file = os.path.join(path, MANIFEST)
    manifest = FOLDER.read_manifest(path)
    if manifest.get('format') != FORMAT:
        raise ValueError(
            f'{file!r} is not a {FORMAT} manifest (format={manifest.get("format")!r})'
        )
    if manifest.get('version') != VERSION:
        raise ValueError(
            f'{file!r} is a version-{manifest.get("version")!r} cache; this package '
            f'reads version {VERSION} (version 1 stored Sentinel-1 timestamps in '
            f'folder-name order, not acquisition order): {REWRITE_HINT}'
        )
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        raise ValueError(
            f'cache manifest {file!r} lacks entries {missing}; {REWRITE_HINT}'
        )
    if manifest['encoding'] not in DTYPES:
        raise ValueError(
            f'{file!r} names unknown encoding {manifest["encoding"]!r}; '
            f'known: {sorted(DTYPES)}'
        )
    return dict(manifest)


class SSL4EOS12Cache:
    """Reader of a cache written by :func:`torchgeo_decur.cli.cache_ssl4eo_s12.write_cache`.

    Used by :class:`~torchgeo_decur.datasets.SSL4EOS12Pairs` when given ``cache``.
    """

    def __init__(self, path: str) -> None:
        """Initialize a new SSL4EOS12Cache instance.

        Args:
            path: Cache directory.

        Raises:
            ValueError: If ``path`` holds no valid cache.
        """
        self.path = path
        self.manifest = read_manifest(path)
        self.encoding: Encoding = self.manifest['encoding']
        s1, s2 = self.manifest['products']
        self.products: tuple[str, str] = (s1, s2)
        self.bands: dict[str, list[str]] = self.manifest['bands']
        self.size: int = self.manifest['size']
        self.counts: dict[str, list[int]] = self.manifest['locations']
        #: The ``.npy`` header ``np.save`` writes for each (product, timestamps).
        self._headers: dict[tuple[str, int], bytes] = {}

    def check_compatible(self, products: Sequence[str], size: int | None) -> None:
        """Raise if the cache was written for other products or another grid.

        Args:
            products: The dataset's ``('s1', s2_product)``.
            size: The dataset's ``size`` (None accepts the cached grid).

        Raises:
            ValueError: On a mismatch, naming both settings.
        """
        if tuple(products) != self.products:
            raise ValueError(
                f'cache {self.path!r} holds products {list(self.products)}, but the '
                f'dataset asks for {list(products)}'
            )
        if size is not None and size != self.size:
            raise ValueError(
                f'cache {self.path!r} holds {self.size} x {self.size} px samples, but '
                f'the dataset asks for size={size}'
            )

    def file(self, product: str, location: str) -> str:
        """Path of the array of one product at one location."""
        return os.path.join(self.path, product, f'{location}.npy')

    def _expected_header(self, product: str, count: int) -> bytes:
        """The header ``np.save`` writes for an array of ``count`` timestamps."""
        key = (product, count)
        if key not in self._headers:
            buffer = io.BytesIO()
            shape = (count * len(self.bands[product]), self.size, self.size)
            dtype = self.dtype(product)
            np.lib.format.write_array_header_1_0(
                buffer,
                {
                    'descr': np.lib.format.dtype_to_descr(dtype),
                    'fortran_order': False,
                    'shape': shape,
                },
            )
            self._headers[key] = buffer.getvalue()
        return self._headers[key]

    def _read_header(
        self, file: BinaryIO, path: str, product: str, location: str
    ) -> int:
        """Check the ``.npy`` header of an open cache file; return the data offset.

        A header byte-identical to the one the writer produces for the expected
        shape and type is accepted without parsing (parsing it costs about as
        much as reading a uint8 sample); any other is parsed and checked.
        """
        count = self.counts[location][self.products.index(product)]
        expected = self._expected_header(product, count)
        if file.read(len(expected)) == expected:
            return len(expected)
        file.seek(0)
        try:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
            else:
                raise ValueError(f'unsupported .npy {version=}')
        except (ValueError, EOFError, SyntaxError) as err:
            # numpy's messages do not name the file.
            raise ValueError(
                f'cache file {path!r} has no valid .npy header ({err}); {REWRITE_HINT}'
            ) from None
        bands = len(self.bands[product])
        want_shape = (count * bands, self.size, self.size)
        want = self.dtype(product)
        if shape != want_shape or dtype != want or fortran:
            raise ValueError(
                f'cache file {path!r} holds {dtype} {shape}; expected '
                f'{want} {want_shape} ({count} timestamps x {bands} bands)'
            )
        return file.tell()

    def _open(self, product: str, location: str) -> tuple[BinaryIO, str]:
        """Open one cache file for reading; a missing file is a ValueError."""
        path = self.file(product, location)
        try:
            # Unbuffered: reads go straight into the caller's buffer, and the
            # header read does not pull a whole buffer's worth of planes first
            # (about a quarter of a uint8 sample's read time).
            return open(path, 'rb', buffering=0), path
        except FileNotFoundError:
            raise ValueError(f'cache file {path!r} is missing') from None

    def verify(self, location: str) -> None:
        """Check that both files of a location exist with the right shape and size.

        Raises:
            ValueError: Naming the faulty file.
        """
        for product in self.products:
            file, path = self._open(product, location)
            with file:
                offset = self._read_header(file, path, product, location)
                count = self.counts[location][self.products.index(product)]
                itemsize = self.dtype(product).itemsize
                size = count * len(self.bands[product]) * self.size**2 * itemsize
                if os.fstat(file.fileno()).st_size < offset + size:
                    raise ValueError(f'cache file {path!r} is truncated')

    def dtype(self, product: str) -> np.dtype[Any]:
        """Storage type of one product's arrays (see :data:`DTYPES`)."""
        dtype: np.dtype[Any] = DTYPES[self.encoding][product_kind(product)]
        return dtype

    def read(
        self,
        product: str,
        location: str,
        picks: Sequence[int],
        out: Tensor | None = None,
    ) -> Tensor:
        """Read the chosen timestamps of one product, stacked on the channel axis.

        Only the planes of the picked timestamps are read, with positioned reads
        (in-process about twice as fast as memory-mapping the file per sample),
        straight into the returned tensor, in the storage type (see
        :data:`DTYPES`): DataLoader workers then move 2 (uint16) or 1 (uint8)
        bytes per value instead of 4, and the data module converts on the device.

        Args:
            product: ``'s1'``, ``'s2c'`` or ``'s2a'``.
            location: Location folder name.
            picks: Timestamp indices (acquisition order), one per view.
            out: Contiguous CPU tensor of the returned shape and storage type to
                read into (one row of a batch buffer); a new one if None.

        Returns:
            (len(picks) x bands, size, size) in the storage type: ``'raw'``: S1
            float32 dB, S2 uint16 DN; ``'float32'``: float32 raw values;
            ``'uint8'``: uint8 codes.

        Raises:
            ValueError: If the file is missing, truncated, or has the wrong shape
                or dtype.
        """
        bands = len(self.bands[product])
        stored = self.dtype(product)
        block = bands * self.size**2 * stored.itemsize  # bytes per timestamp
        shape = (len(picks) * bands, self.size, self.size)
        if out is None:
            buffer = np.empty(shape, dtype=stored)
        else:
            buffer = out.numpy()
            if buffer.shape != shape or buffer.dtype != stored:
                raise ValueError(
                    f'output buffer is {buffer.dtype} {buffer.shape}; reading '
                    f'{product} of {location!r} needs {stored} {shape}'
                )
        file, path = self._open(product, location)
        with file:
            offset = self._read_header(file, path, product, location)
            for view, index in enumerate(picks):
                file.seek(offset + index * block)
                target = buffer[view * bands : (view + 1) * bands]
                done = file.readinto(memoryview(target).cast('B'))  # type: ignore[attr-defined]
                if done != block:
                    raise ValueError(f'cache file {path!r} is truncated')
        return torch.from_numpy(buffer) if out is None else out
