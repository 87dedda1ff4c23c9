"""Compact array cache of paired SSL4EO-S12 locations.

Reading one paired sample from the GeoTIFF layout opens 2 views x (2 + 13) band
files and resamples each. The cache stores, per location and product, every
timestamp and band already on the ``size`` x ``size`` grid in one ``.npy`` file::

    <cache>/manifest.json
    <cache>/s1/<location>.npy      (T_s1 x 2, size, size)
    <cache>/s2c/<location>.npy     (T_s2 x 13, size, size)   (or s2a/, 12 bands)

timestamps in sorted name order, bands in checkpoint order. A sample then costs two
small reads of just the planes it needs (plain ``.npy`` files, so they can also
be memory-mapped with ``np.load(path, mmap_mode='r')``).

Encodings, and what each keeps *exactly* (the tests check every claim):

* ``raw`` (default): lossless. S1 dB as float32 (NaN / -inf kept), S2 DN as
  uint16: the bilinear resampling of uint16 bands returns whole numbers in
  [0, 65535], which the writer verifies value by value. Samples are bit-identical
  to the GeoTIFF path, so tensors after *any* normalisation (``quantize`` on or
  off, or none) are identical. 9.5 MB per location with four timestamps.
* ``float32``: lossless for any input, 16.7 MB per location; for S2 data whose
  resampled values are not whole numbers.
* ``uint8``: the DeCUR reference's own storage, 4.2 MB per location: the code
  ``k = floor(255 * clip((x - (mean - 2 std)) / (4 std), 0, 1))`` per band (NaN /
  -inf -> 0), computed with :func:`~torchgeo_decur.datamodules.ssl4eo_s12_normalization`
  itself. ``k / 255`` equals ``ClipNormalize(quantize=True)`` bit for bit, so it
  is exact for ``quantize: true``. With ``quantize: false`` the GeoTIFF path keeps
  the sub-1/255 detail that no 8-bit code holds; the data module therefore refuses
  that combination instead of silently changing the input.

float16 is deliberately not offered: it has an 11-bit significand, so it is exact
neither for the raw values (DN above 2048 lose their last bits, dB values are
rounded) nor for the normalised ones (k / 255 and continuous values in [0, 1]
are rounded), i.e. it can never reproduce the GeoTIFF path.

Write a cache with ``torchgeo-decur cache-ssl4eo-s12 --root ROOT --output CACHE``
and read it with ``SSL4EOS12Pairs(cache=CACHE)`` or the data module's ``cache``.
"""

import argparse
import json
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

if TYPE_CHECKING:
    from .ssl4eo_s12 import SSL4EOS12Pairs

Encoding = Literal['raw', 'float32', 'uint8']

#: Identifies a cache manifest; bumped when the layout changes.
FORMAT = 'torchgeo_decur/ssl4eo_s12_cache'
VERSION = 1
MANIFEST = 'manifest.json'
#: Storage dtype of each encoding, per product kind (S1 and S2).
DTYPES: dict[str, dict[str, Any]] = {
    'raw': {'s1': np.dtype('float32'), 's2': np.dtype('uint16')},
    'float32': {'s1': np.dtype('float32'), 's2': np.dtype('float32')},
    'uint8': {'s1': np.dtype('uint8'), 's2': np.dtype('uint8')},
}


def _kind(product: str) -> str:
    """``'s1'`` or ``'s2'`` for a product folder name."""
    return 's1' if product == 's1' else 's2'


def read_manifest(path: str) -> dict[str, Any]:
    """Read and validate the manifest of a cache.

    Args:
        path: Cache directory.

    Returns:
        The manifest.

    Raises:
        ValueError: If the directory holds no valid cache manifest.
    """
    file = os.path.join(path, MANIFEST)
    if not os.path.isfile(file):
        raise ValueError(
            f'{file!r} not found: {path!r} is not an SSL4EO-S12 cache (write one '
            'with `torchgeo-decur cache-ssl4eo-s12`)'
        )
    with open(file) as f:
        manifest: dict[str, Any] = json.load(f)
    if manifest.get('format') != FORMAT or manifest.get('version') != VERSION:
        raise ValueError(
            f'{file!r} is not a version-{VERSION} {FORMAT} manifest '
            f'(format={manifest.get("format")!r}, version={manifest.get("version")!r})'
        )
    if manifest.get('encoding') not in DTYPES:
        raise ValueError(
            f'{file!r} names unknown encoding {manifest.get("encoding")!r}; '
            f'known: {sorted(DTYPES)}'
        )
    return manifest


class SSL4EOS12Cache:
    """Reader of a cache written by :func:`write_cache`.

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

    def _read_header(
        self, file: BinaryIO, path: str, product: str, location: str
    ) -> int:
        """Check the ``.npy`` header of an open cache file; return the data offset."""
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
        else:
            raise ValueError(f'cache file {path!r} has unsupported .npy {version=}')
        bands = len(self.bands[product])
        count = self.counts[location][self.products.index(product)]
        expected = (count * bands, self.size, self.size)
        want = DTYPES[self.encoding][_kind(product)]
        if shape != expected or dtype != want or fortran:
            raise ValueError(
                f'cache file {path!r} holds {dtype} {shape}; expected '
                f'{want} {expected} ({count} timestamps x {bands} bands)'
            )
        return file.tell()

    def _open(self, product: str, location: str) -> tuple[BinaryIO, str]:
        """Open one cache file for reading; a missing file is a ValueError."""
        path = self.file(product, location)
        try:
            return open(path, 'rb'), path
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
                itemsize = DTYPES[self.encoding][_kind(product)].itemsize
                size = count * len(self.bands[product]) * self.size**2 * itemsize
                if os.fstat(file.fileno()).st_size < offset + size:
                    raise ValueError(f'cache file {path!r} is truncated')

    def read(self, product: str, location: str, picks: Sequence[int]) -> Tensor:
        """Read the chosen timestamps of one product, stacked on the channel axis.

        Only the planes of the picked timestamps are read, with positioned reads
        (in-process about twice as fast as memory-mapping the file per sample).

        Args:
            product: ``'s1'``, ``'s2c'`` or ``'s2a'``.
            location: Location folder name.
            picks: Timestamp indices (sorted-name order), one per view.

        Returns:
            (len(picks) x bands, size, size): float32 raw values for the
            lossless encodings, uint8 codes for ``'uint8'``.

        Raises:
            ValueError: If the file is missing, truncated, or has the wrong shape
                or dtype.
        """
        bands = len(self.bands[product])
        stored = DTYPES[self.encoding][_kind(product)]
        dtype = np.dtype(np.uint8 if self.encoding == 'uint8' else np.float32)
        block = bands * self.size**2  # values per timestamp
        out = np.empty((len(picks) * bands, self.size, self.size), dtype=dtype)
        file, path = self._open(product, location)
        with file:
            offset = self._read_header(file, path, product, location)
            for view, index in enumerate(picks):
                file.seek(offset + index * block * stored.itemsize)
                target = out[view * bands : (view + 1) * bands]
                if stored == dtype:
                    done = file.readinto(memoryview(target).cast('B'))  # type: ignore[attr-defined]
                    complete = done == target.nbytes
                else:  # S2 uint16 DN, widened exactly to float32
                    values = np.fromfile(file, dtype=stored, count=block)
                    complete = values.size == block
                    if complete:
                        target[...] = values.reshape(target.shape)
                if not complete:
                    raise ValueError(f'cache file {path!r} is truncated')
        return torch.from_numpy(out)


def _encode(
    encoding: Encoding, raw: Mapping[str, Tensor], s2_product: str
) -> dict[str, np.ndarray]:
    """Turn one location's raw values into the arrays stored for ``encoding``.

    Args:
        encoding: Cache encoding.
        raw: ``{'s1': (T1 x 2, H, W), s2_product: (T2 x B, H, W)}`` float32.
        s2_product: Key of the S2 product in ``raw``.

    Returns:
        Arrays keyed by product.

    Raises:
        ValueError: If a lossless encoding cannot hold the values exactly.
    """
    if encoding == 'uint8':
        from ..datamodules.ssl4eo_s12 import ssl4eo_s12_normalization

        # The data module's own quantised scaling, so the codes cannot drift from it.
        l2a = s2_product == 's2a'
        scaled = ssl4eo_s12_normalization('s2a' if l2a else 's2c', quantize=True)(
            {'image_s1': raw['s1'], 'image_s2': raw[s2_product]}
        )
        return {
            's1': (scaled['image_s1'] * 255.0).round().to(torch.uint8).numpy(),
            s2_product: (scaled['image_s2'] * 255.0).round().to(torch.uint8).numpy(),
        }
    out = {}
    for product, values in raw.items():
        dtype = DTYPES[encoding][_kind(product)]
        array = values.numpy()
        stored = array.astype(dtype)
        if not np.array_equal(stored.astype(np.float32), array, equal_nan=True):
            raise ValueError(
                f'{product} values are not exactly representable as {dtype} '
                f"(encoding {encoding!r}); write the cache with encoding='float32'"
            )
        out[product] = stored
    return out


def _save_atomically(path: str, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` via a temporary file, so no partial file exists."""
    tmp = f'{path}.tmp-{os.getpid()}.npy'
    np.save(tmp, array)
    os.replace(tmp, path)


class _WriteJob(Dataset[tuple[str, list[int], str]]):
    """Writes one location per item, so a DataLoader's workers write in parallel."""

    def __init__(
        self,
        dataset: 'SSL4EOS12Pairs',
        output: str,
        encoding: Encoding,
        overwrite: bool,
    ) -> None:
        self.dataset = dataset
        self.output = output
        self.encoding: Encoding = encoding
        self.overwrite = overwrite

    def __len__(self) -> int:
        return len(self.dataset.locations)

    def _done(self, location: str, counts: Sequence[int]) -> bool:
        """Whether a previous run already wrote this location completely."""
        for product, count in zip(self.dataset.products, counts, strict=True):
            path = os.path.join(self.output, product, f'{location}.npy')
            if not os.path.isfile(path):
                return False
            array = np.load(path, mmap_mode='r')
            bands = len(self.dataset.bands[product])
            dtype = DTYPES[self.encoding][_kind(product)]
            if array.dtype != dtype or array.shape[0] != count * bands:
                return False
            if self.dataset.size is not None and array.shape[1:] != (
                self.dataset.size,
                self.dataset.size,
            ):
                return False
        return True

    def __getitem__(self, index: int) -> tuple[str, list[int], str]:
        """Write location ``index``; returns (location, counts, error message)."""
        location = self.dataset.locations[index]
        try:
            counts = self.dataset.timestamp_counts(location)
            if not self.overwrite and self._done(location, counts):
                return location, counts, ''
            raw = self.dataset.read_all_timestamps(location)
            arrays = _encode(self.encoding, raw, self.dataset.products[1])
        except ValueError as err:
            return location, [], str(err)
        for product, array in arrays.items():
            _save_atomically(
                os.path.join(self.output, product, f'{location}.npy'), array
            )
        return location, counts, ''


def _identity(item: Any) -> Any:
    """Collate function that passes each item through (picklable, unlike a lambda)."""
    return item


def write_cache(
    root: str,
    output: str,
    encoding: Encoding = 'raw',
    s2_product: Literal['s2c', 's2a'] = 's2c',
    size: int = 264,
    on_invalid: Literal['error', 'skip'] = 'error',
    num_workers: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the cache of every paired location under ``root``.

    Locations follow :class:`~torchgeo_decur.datasets.SSL4EOS12Pairs`' rules: an
    unpaired or malformed location (missing band file, multi-band file, bands on
    different grids, values a lossless encoding cannot hold) raises a
    ``ValueError`` naming it, or with ``on_invalid='skip'`` is left out with a
    warning and listed under ``skipped`` in the manifest. Files are written
    atomically; a rerun skips locations already written (unless ``overwrite``).
    The manifest is written last, so a cache without one is incomplete.

    Args:
        root: Directory with ``s1`` and ``s2c``/``s2a`` GeoTIFF folders.
        output: Cache directory (created).
        encoding: ``'raw'``, ``'float32'`` or ``'uint8'`` (see the module docs).
        s2_product: ``'s2c'`` (L1C) or ``'s2a'`` (L2A).
        size: Grid every band is resampled to, in pixels.
        on_invalid: ``'error'`` or ``'skip'`` for unpaired/malformed locations.
        num_workers: Processes writing locations in parallel (0: this one).
        overwrite: Rewrite locations that a previous run already wrote.
        progress: Show a tqdm progress bar.

    Returns:
        The manifest that was written.

    Raises:
        ValueError: For an unknown encoding, or an invalid location when
            ``on_invalid='error'``.
    """
    from .ssl4eo_s12 import SSL4EOS12Pairs

    if encoding not in DTYPES:
        raise ValueError(f'encoding must be one of {sorted(DTYPES)}, got {encoding!r}')
    dataset = SSL4EOS12Pairs(
        root, s2_product=s2_product, size=size, on_invalid=on_invalid
    )
    for product in dataset.products:
        os.makedirs(os.path.join(output, product), exist_ok=True)
    job = _WriteJob(dataset, output, encoding, overwrite)
    loader = DataLoader(
        job, batch_size=None, num_workers=num_workers, collate_fn=_identity
    )
    locations: dict[str, list[int]] = {}
    skipped = dict(dataset.skipped)  # unpaired locations
    for location, counts, error in tqdm(
        loader,
        total=len(job),
        desc=f'Caching SSL4EO-S12 ({encoding})',
        unit='location',
        disable=not progress,
    ):
        if not error:
            locations[location] = counts
            continue
        message = f'malformed SSL4EO-S12 location {location!r}: {error}'
        if on_invalid == 'error':
            raise ValueError(message + " (pass on_invalid='skip' to skip it)")
        warnings.warn(message + '; skipping it', UserWarning, stacklevel=2)
        skipped[location] = message
    manifest = {
        'format': FORMAT,
        'version': VERSION,
        'encoding': encoding,
        'products': list(dataset.products),
        'bands': {p: list(dataset.bands[p]) for p in dataset.products},
        'size': size,
        'source': os.path.abspath(root),
        'locations': dict(sorted(locations.items())),
        'skipped': dict(sorted(skipped.items())),
    }
    tmp = os.path.join(output, MANIFEST + '.tmp')
    with open(tmp, 'w') as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(output, MANIFEST))
    return manifest


def _directory_mib(path: str) -> float:
    """Total size of the files under ``path`` in MiB."""
    total = 0
    for directory, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(directory, f)) for f in files)
    return total / 2**20


def register(subparsers: Any) -> None:
    """Add the ``cache-ssl4eo-s12`` subcommand.

    Args:
        subparsers: The ``argparse`` sub-parser collection of ``torchgeo-decur``.
    """
    parser = subparsers.add_parser(
        'cache-ssl4eo-s12',
        help='write a cache of paired SSL4EO-S12 locations (one .npy array per location and product)',
        description=__doc__.split('\n\n')[1],
    )
    parser.add_argument('--root', required=True, help='SSL4EO-S12 GeoTIFF root')
    parser.add_argument('--output', required=True, help='cache directory to write')
    parser.add_argument(
        '--encoding',
        choices=sorted(DTYPES),
        default='raw',
        help='raw: lossless S1 float32 + S2 uint16 (default); float32: lossless; '
        'uint8: the reference quantised scaling (exact for quantize: true)',
    )
    parser.add_argument('--s2-product', choices=['s2c', 's2a'], default='s2c')
    parser.add_argument('--size', type=int, default=264, help='grid size in px')
    parser.add_argument('--on-invalid', choices=['error', 'skip'], default='error')
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the cache described by the parsed arguments.

    Args:
        args: Parsed ``cache-ssl4eo-s12`` arguments.

    Returns:
        0 on success, 1 if the data could not be cached (message on stderr).
    """
    from torchgeo.datasets import DatasetNotFoundError

    try:
        manifest = write_cache(
            args.root,
            args.output,
            encoding=args.encoding,
            s2_product=args.s2_product,
            size=args.size,
            on_invalid=args.on_invalid,
            num_workers=args.num_workers,
            overwrite=args.overwrite,
        )
    except (ValueError, DatasetNotFoundError) as err:
        print(f'torchgeo-decur cache-ssl4eo-s12: error: {err}', file=sys.stderr)
        return 1
    print(
        f'wrote {len(manifest["locations"])} locations '
        f'({len(manifest["skipped"])} skipped, {_directory_mib(args.output):.1f} MiB, '
        f'encoding {manifest["encoding"]}) to {args.output}'
    )
    return 0
