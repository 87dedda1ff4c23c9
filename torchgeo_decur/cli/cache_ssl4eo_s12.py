"""``torchgeo-decur cache-ssl4eo-s12``: write the compact array cache of SSL4EO-S12.

The format and its reader are :mod:`torchgeo_decur.datasets.ssl4eo_s12_cache`;
this module holds the writer, which reads the GeoTIFFs through
:class:`~torchgeo_decur.datasets.SSL4EOS12Pairs` and stores one ``.npy`` array per
location and product.

A cache never mixes sources: the settings of a run (GeoTIFF root, encoding,
products, bands, grid size, format version) are recorded in the cache folder
before the first array is written. A rerun with the same settings resumes
(locations already written are kept); a rerun with different settings is refused
unless ``overwrite`` is given, which deletes the cache's arrays first. Temporary
files of an interrupted run are removed.
"""

import argparse
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..datasets.ssl4eo_s12 import SSL4EOS12Pairs
from ..datasets.ssl4eo_s12_cache import (
    DTYPES,
    FOLDER,
    FORMAT,
    TMP_MARKER,
    VERSION,
    Encoding,
    product_kind,
)
from ..transforms.pretrained import ssl4eo_s12_normalization


def _encode(
    encoding: Encoding, raw: Mapping[str, Tensor], s2_product: str
) -> dict[str, np.ndarray]:
    """Turn one location's raw values into the arrays stored for ``encoding``.

    Args:
        encoding: Cache encoding.
        raw: ``{'s1': (T1 x 2, H, W), s2_product: (T2 x B, H, W)}`` raw values
            as the dataset reads them (S1 float32; S2 uint16, or float32 for
            band files of another type).
        s2_product: Key of the S2 product in ``raw``.

    Returns:
        Arrays keyed by product.

    Raises:
        ValueError: If a lossless encoding cannot hold the values exactly.
    """
    if encoding == 'uint8':
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
        dtype = DTYPES[encoding][product_kind(product)]
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
    tmp = f'{path}{TMP_MARKER}{os.getpid()}.npy'
    try:
        np.save(tmp, array)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class _WriteJob(Dataset[tuple[str, list[int], str]]):
    """Writes one location per item, so a DataLoader's workers write in parallel."""

    def __init__(
        self, dataset: SSL4EOS12Pairs, output: str, encoding: Encoding
    ) -> None:
        self.dataset = dataset
        self.output = output
        self.encoding: Encoding = encoding

    def __len__(self) -> int:
        return len(self.dataset.locations)

    def _done(self, location: str, counts: Sequence[int]) -> bool:
        """Whether a previous run (same settings) already wrote this location."""
        for product, count in zip(self.dataset.products, counts, strict=True):
            path = os.path.join(self.output, product, f'{location}.npy')
            if not os.path.isfile(path):
                return False
            try:
                array = np.load(path, mmap_mode='r')
            except (ValueError, OSError, EOFError):  # damaged: write it again
                return False
            bands = len(self.dataset.bands[product])
            dtype = DTYPES[self.encoding][product_kind(product)]
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
            if self._done(location, counts):
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
    atomically. A rerun with the same settings resumes, keeping the locations
    already written; other settings are refused unless ``overwrite``. The
    manifest is written last, so a cache without one is incomplete.

    Args:
        root: Directory with ``s1`` and ``s2c``/``s2a`` GeoTIFF folders.
        output: Cache directory (created).
        encoding: ``'raw'``, ``'float32'`` or ``'uint8'`` (see the format docs).
        s2_product: ``'s2c'`` (L1C) or ``'s2a'`` (L2A).
        size: Grid every band is resampled to, in pixels.
        on_invalid: ``'error'`` or ``'skip'`` for unpaired/malformed locations.
        num_workers: Processes writing locations in parallel (0: this one).
        overwrite: Delete the arrays of a cache already in ``output`` (whatever
            its settings) and write every location anew.
        progress: Show a tqdm progress bar.

    Returns:
        The manifest that was written.

    Raises:
        ValueError: For an unknown encoding, an invalid location when
            ``on_invalid='error'``, or (without ``overwrite``) an ``output``
            holding a cache of other settings or unidentifiable cache files.
        NotADirectoryError: If ``output`` is a file.
    """
    if encoding not in DTYPES:
        raise ValueError(f'encoding must be one of {sorted(DTYPES)}, got {encoding!r}')
    products = ('s1', s2_product)
    settings: dict[str, Any] = {
        'format': FORMAT,
        'version': VERSION,
        'source': os.path.realpath(root),
        'encoding': encoding,
        'products': list(products),
        'bands': {p: list(SSL4EOS12Pairs.bands[p]) for p in products},
        'size': size,
    }
    dataset = SSL4EOS12Pairs(
        root, s2_product=s2_product, size=size, on_invalid=on_invalid
    )
    FOLDER.start(output, settings, overwrite)
    for product in dataset.products:
        os.makedirs(os.path.join(output, product), exist_ok=True)
    job = _WriteJob(dataset, output, encoding)
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
        **settings,
        'locations': dict(sorted(locations.items())),
        'skipped': dict(sorted(skipped.items())),
    }
    FOLDER.finish(output, manifest)
    return manifest


def _directory_mib(path: str) -> float:
    """Total size of the files under ``path`` in MiB."""
    total = 0
    for directory, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(directory, f)) for f in files)
    return total / 2**20


def run(args: argparse.Namespace) -> int:
    """Write the cache described by the parsed arguments.

    Args:
        args: Parsed ``cache-ssl4eo-s12`` arguments.

    Returns:
        Exit status 0 (failures raise; :func:`~torchgeo_decur.cli.main` reports
        them).
    """
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
    print(
        f'wrote {len(manifest["locations"])} locations '
        f'({len(manifest["skipped"])} skipped, {_directory_mib(args.output):.1f} MiB, '
        f'encoding {manifest["encoding"]}) to {args.output}'
    )
    return 0


__all__ = ('run', 'write_cache')
