"""Paired Sentinel-1 / Sentinel-2 samples from the SSL4EO-S12 on-disk layout."""

import os
import random
import re
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor
from torchgeo.datasets import DatasetNotFoundError, NonGeoDataset
from tqdm import tqdm

from ..transforms.normalize import (
    SSL4EO_S12_S1_BANDS,
    SSL4EO_S12_S2_BANDS,
    SSL4EO_S12_S2A_BANDS,
)
from .rasters import RasterReadError, read_band
from .ssl4eo_s12_cache import SSL4EOS12Cache
from .utils import batch_buffer

SeasonMode = Literal['random', 'same', 'paired', 'fixed']
#: The first ``YYYYMMDDTHHMMSS`` in a product folder name: the sensing start.
_ACQUISITION = re.compile(r'(?<!\d)(\d{8}T\d{6})(?!\d)')


def acquisition_order(names: Sequence[str], directory: str = '') -> list[str]:
    """Sort timestamp folder names by the acquisition time they contain.

    SSL4EO-S12 names each timestamp folder after its product: Sentinel-1 GRD as
    ``S1A_IW_GRDH_1SDV_20200321T053214_...`` (the satellite first), Sentinel-2 as
    ``20200321T101031_20200321T101559_T32UPU``. Sorting the names would put every
    ``S1A`` product before every ``S1B`` one, so the first
    ``YYYYMMDDTHHMMSS`` in the name (the sensing start) is the sort key instead;
    equal times fall back to the name, so the order is total and reproducible.

    Args:
        names: Folder names of one location and product.
        directory: Their parent folder, for error messages.

    Returns:
        The names, earliest acquisition first.

    Raises:
        ValueError: If a name holds no acquisition time.
    """
    keyed = []
    for name in names:
        match = _ACQUISITION.search(name)
        if match is None:
            raise ValueError(
                f'timestamp folder {os.path.join(directory, name)!r} has no '
                'acquisition time (YYYYMMDDTHHMMSS) in its name, so its season '
                'cannot be ordered; SSL4EO-S12 product folders are named like '
                "'S1A_IW_GRDH_1SDV_20200321T053214_...' or '20200321T101031_..._T32UPU'"
            )
        keyed.append((match.group(1), name))
    return [name for _, name in sorted(keyed)]


class SSL4EOS12Pairs(NonGeoDataset):
    """SSL4EO-S12 Sentinel-1 GRD + Sentinel-2 pairs for multimodal pretraining.

    Reads torchgeo's SSL4EO-S12 layout, one GeoTIFF per band::

        root/s1/<location>/<S1 product id>/{VV,VH}.tif
        root/s2c/<location>/<S2 product id>/{B1,...,B12}.tif   (or s2a/ for L2A)

    Locations are discovered on disk (any subset of the 251,079 works) and paired by
    folder name. Every sample holds ``views`` views per modality; each view of each
    modality draws its own timestamp ("season") in the default ``'random'`` mode, as
    in the DeCUR reference. Views are stacked on the channel axis:

    * ``image_s1``: (views x 2, size, size) float32 backscatter in dB (VV, VH)
    * ``image_s2``: (views x 13, size, size) uint16 digital numbers (L1C), or
      views x 12 for L2A

    Values are raw and in their storage type: S2 digital numbers stay uint16
    (SSL4EO-S12's own GeoTIFF type; bilinear resampling of uint16 bands gives
    whole numbers, so nothing is lost), which halves what DataLoader workers
    move through shared memory compared to float32. The data module converts
    to float32 and normalises on the device; ``tensor.float()`` gives exactly
    the values a float32 read would. S2 band files of another type are read as
    float32 (then ``image_s2`` is float32). torch implements few CPU operations
    for uint16 (no comparisons or reductions): call ``.float()`` to inspect a
    sample. S1 can hold -inf/NaN where
    backscatter is zero; :class:`~torchgeo_decur.transforms.ClipNormalize`
    maps those to the bottom of its window.

    With ``cache`` (written by ``torchgeo-decur cache-ssl4eo-s12``, see
    :mod:`~torchgeo_decur.datasets.ssl4eo_s12_cache`) samples come from one
    ``.npy`` array per location and product instead of 30 GeoTIFFs, in the
    cache's storage type: identical raw samples for the lossless encodings
    (``raw``: float32 S1 and uint16 S2 as above; ``float32``: float32 S2); for
    the ``uint8`` encoding both tensors hold the uint8 codes of the DeCUR scaling
    instead of raw values (the data module turns them into the same [0, 1] input
    as ``normalization='decur_uint8'``).

    Timestamps ("seasons") are ordered by the acquisition date in their folder
    names (``S1A_IW_GRDH_1SDV_20200321T...``, ``20200321T..._T32UPU``), not by the
    names themselves: S1 names start with the satellite (``S1A``/``S1B``), so name
    order is not time order. Season index k therefore means the k-th acquisition
    of every product.
    """

    bands: ClassVar[dict[str, tuple[str, ...]]] = {
        's1': SSL4EO_S12_S1_BANDS,
        's2c': SSL4EO_S12_S2_BANDS,
        's2a': SSL4EO_S12_S2A_BANDS,
    }

    def __init__(
        self,
        root: str = 'data',
        s2_product: Literal['s2c', 's2a'] = 's2c',
        views: Literal[1, 2] = 2,
        season_mode: SeasonMode = 'random',
        season: int = 0,
        size: int | None = 264,
        on_invalid: Literal['error', 'skip'] = 'error',
        check_files: bool = False,
        transforms: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
        cache: str | None = None,
    ) -> None:
        """Initialize a new SSL4EOS12Pairs instance.

        Args:
            root: Directory holding the ``s1`` and ``s2c``/``s2a`` folders.
            s2_product: ``'s2c'`` (L1C, 13 bands, what DeCUR used) or ``'s2a'``
                (L2A, 12 bands).
            views: Number of views per modality in each sample.
            season_mode: ``'random'``: every view of every modality draws its own
                timestamp (reference behaviour); ``'same'``: each modality draws one
                timestamp for both its views (S1 and S2 independently, like
                SSL4EO-S12's own one-season mode); ``'paired'``: one timestamp
                index per sample, shared by all views and both modalities;
                ``'fixed'``: always the timestamp at index ``season``.
            season: Timestamp index used by ``'fixed'`` (timestamps in acquisition
                order).
            size: Height/width every band is resampled to (bilinear), or None to
                keep the native size (then all bands must already agree).
            on_invalid: ``'error'`` raises on an unpaired or malformed location;
                ``'skip'`` drops it with a warning (and implies ``check_files``,
                so that no malformed location is left to fail mid-epoch).
            check_files: Also read every band of every timestamp at construction
                (with a progress bar), as training will, to find missing, corrupt,
                truncated, multi-band or non-GeoTIFF files and bands on different
                grids up front. This reads the whole dataset once. Without it (and
                with ``on_invalid='error'``), those are raised when the sample is
                read, naming the file and the location. With ``cache``: check
                every cache file's shape instead.
            transforms: Function applied to each sample dictionary.
            cache: Directory of a cache written for the same ``s2_product`` and
                ``size``; locations and samples then come from it and ``root`` is
                not read.

        Raises:
            DatasetNotFoundError: If ``root`` has no ``s1`` or S2 folder.
            ValueError: If a location is unpaired or malformed and ``on_invalid``
                is ``'error'``, if an argument is out of range, or if ``cache`` is
                not a cache of this product and size.
        """
        if s2_product not in ('s2c', 's2a'):
            raise ValueError(f"s2_product must be 's2c' or 's2a', got {s2_product!r}")
        if views not in (1, 2):
            raise ValueError(f'views must be 1 or 2, got {views}')
        if season_mode not in ('random', 'same', 'paired', 'fixed'):
            raise ValueError(
                "season_mode must be 'random', 'same', 'paired' or 'fixed', got "
                f'{season_mode!r}'
            )
        if size is not None and (isinstance(size, bool) or size < 1):
            raise ValueError(
                f'size must be a positive number of pixels or None, got {size!r}'
            )
        if on_invalid not in ('error', 'skip'):
            raise ValueError(
                f"on_invalid must be 'error' or 'skip', got {on_invalid!r}"
            )
        self.root = root
        self.products = ('s1', s2_product)
        self.views = views
        self.season_mode = season_mode
        self.season = season
        self.size = size
        self.on_invalid = on_invalid
        self.transforms = transforms
        #: Locations left out with ``on_invalid='skip'``, with the reason.
        self.skipped: dict[str, str] = {}
        self.cache = None if cache is None else SSL4EOS12Cache(cache)
        if self.cache is None:
            self.locations = self._pair_locations()
        else:
            self.cache.check_compatible(self.products, size)
            self.locations = sorted(self.cache.counts)
        if check_files or on_invalid == 'skip':
            self.locations = [
                loc
                for loc in tqdm(self.locations, desc='Checking SSL4EO-S12 files')
                if self._check_location(loc)
            ]
        if not self.locations:
            if cache is not None:
                raise ValueError(
                    f'SSL4EO-S12 cache {cache!r} has no usable locations (its manifest '
                    'lists none, or every one failed the file check)'
                )
            raise ValueError(f'no paired SSL4EO-S12 locations found under {root!r}')

    def _invalid(self, message: str, location: str) -> None:
        """Raise or warn about an invalid location depending on ``on_invalid``."""
        if self.on_invalid == 'error':
            raise ValueError(message + " (pass on_invalid='skip' to skip it)")
        warnings.warn(message + '; skipping it', UserWarning, stacklevel=3)
        self.skipped[location] = message

    def _pair_locations(self) -> list[str]:
        """Find the locations present for both products."""
        found: list[set[str]] = []
        for product in self.products:
            directory = os.path.join(self.root, product)
            if not os.path.isdir(directory):
                err = DatasetNotFoundError(self)
                err.args = (f'{err.args[0]} Missing folder: {directory!r}.',)
                raise err
            with os.scandir(directory) as entries:
                found.append({e.name for e in entries if e.is_dir()})
        s1, s2 = found
        for only, have, lack in (
            (s1 - s2, *self.products),
            (s2 - s1, *self.products[::-1]),
        ):
            for loc in sorted(only):
                self._invalid(
                    f'unpaired SSL4EO-S12 location {loc!r}: '
                    f'{os.path.join(self.root, have, loc)!r} exists but '
                    f'{os.path.join(self.root, lack, loc)!r} does not',
                    loc,
                )
        return sorted(s1 & s2)

    def _timestamps(self, product: str, location: str) -> list[str]:
        """Timestamp folders of one location and product, in acquisition order."""
        directory = os.path.join(self.root, product, location)
        names = [e.name for e in os.scandir(directory) if e.is_dir()]
        if not names:
            raise ValueError(
                f'SSL4EO-S12 location {directory!r} has no timestamp folders'
            )
        return acquisition_order(names, directory)

    def timestamp_counts(self, location: str) -> list[int]:
        """Number of timestamps of each product (S1, S2) at a location.

        Args:
            location: Location folder name.

        Returns:
            ``[T_s1, T_s2]``.

        Raises:
            ValueError: If a product has no timestamp folder there.
        """
        if self.cache is not None:
            return list(self.cache.counts[location])
        return [len(self._timestamps(p, location)) for p in self.products]

    def read_all_timestamps(self, location: str) -> dict[str, Tensor]:
        """Every timestamp of both products of one location, from the GeoTIFFs.

        Args:
            location: Location folder name.

        Returns:
            ``{product: (T x bands, H, W)}`` raw values (S1 float32 dB, S2 uint16
            DN, see the class docstring), timestamps in acquisition order (the
            order season indices refer to).

        Raises:
            ValueError: If a band file is missing, has several bands, or the
                bands do not share a grid.
        """
        return {
            product: torch.cat(
                [
                    self._read_timestamp(product, location, stamp)
                    for stamp in self._timestamps(product, location)
                ]
            )
            for product in self.products
        }

    def _check_location(self, location: str) -> bool:
        """Read every band (or cache) file of a location; False to skip it.

        Every band of every timestamp is decoded (and resampled to ``size``) like
        :meth:`__getitem__` does, so a location that passes cannot fail later on
        a corrupt, truncated or non-GeoTIFF file, a multi-band file or bands on
        different grids. The cache writer's ``on_invalid='skip'`` relies on the
        same reads.

        Args:
            location: Location folder name.

        Returns:
            True if the location is readable; False if it was skipped (with
            ``on_invalid='skip'``; with ``'error'`` a ValueError is raised).
        """
        try:
            if self.cache is not None:
                self.cache.verify(location)
                return True
            # Read every band exactly as training will (same resampling), so a
            # corrupt file or a grid mismatch is found now, not mid-epoch.
            for product in self.products:
                for stamp in self._timestamps(product, location):
                    self._read_timestamp(product, location, stamp)
        except (ValueError, OSError) as err:
            self._invalid(
                f'malformed SSL4EO-S12 location {location!r}: {err}', location
            )
            return False
        return True

    def _band_paths(self, product: str, location: str, stamp: str) -> list[str]:
        """Paths of the band files of one timestamp, in checkpoint band order."""
        directory = os.path.join(self.root, product, location, stamp)
        paths = [os.path.join(directory, f'{band}.tif') for band in self.bands[product]]
        missing = [os.path.basename(p) for p in paths if not os.path.isfile(p)]
        if missing:
            raise ValueError(
                f'{directory!r} lacks band file(s) {missing}: {product} needs '
                f'{len(self.bands[product])} bands {list(self.bands[product])}'
            )
        return paths

    def _read_timestamp(self, product: str, location: str, stamp: str) -> Tensor:
        """Read all bands of one timestamp into a (bands, H, W) tensor.

        S1 as float32; S2 as uint16 when its band files are uint16, else float32
        (numpy's promotion of a mixed stack, exact for uint16).
        """
        where = f'SSL4EO-S12 location {location!r}, {product}'
        shape = None if self.size is None else (self.size, self.size)
        keep = () if product == 's1' else ('uint16',)
        paths = self._band_paths(product, location, stamp)
        arrays = [read_band(path, shape, where, keep_dtypes=keep) for path in paths]
        kinds = Counter(str(a.dtype) for a in arrays)
        if len(kinds) > 1:
            # A band file of another type is resampled without the rounding of
            # the others: refuse it rather than read slightly other values.
            common = kinds.most_common(1)[0][0]
            odd = [
                f'{p!r} is {a.dtype}'
                for p, a in zip(paths, arrays, strict=True)
                if str(a.dtype) != common
            ]
            raise RasterReadError(
                f'{where}: band files differ in data type: {", ".join(odd)} where '
                f'the others are {common}; convert it to {common}'
            )
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            directory = os.path.join(self.root, product, location, stamp)
            raise ValueError(
                f'bands in {directory!r} differ in size {sorted(shapes)}; pass size= '
                'to resample them to a common grid'
            )
        return torch.from_numpy(np.stack(arrays))

    def _choose_seasons(self, counts: Sequence[int]) -> list[list[int]]:
        """Timestamp index per modality and view, following ``season_mode``."""
        if self.season_mode == 'random':
            return [[random.randrange(n) for _ in range(self.views)] for n in counts]
        if self.season_mode == 'same':
            return [[random.randrange(n)] * self.views for n in counts]
        if self.season_mode == 'paired':
            index = random.randrange(min(counts))
        else:
            index = self.season
            if any(index >= n or index < -n for n in counts):
                raise ValueError(
                    f'season={index} is out of range for a location with '
                    f'{list(counts)} timestamps per modality'
                )
        return [[index] * self.views for _ in counts]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Load one paired sample.

        Args:
            index: Index of the location.

        Returns:
            ``{'image_s1': Tensor, 'image_s2': Tensor}`` (see the class docstring).

        Raises:
            ValueError: If a band file is missing or has more than one band.
        """
        location = self.locations[index]
        sample: dict[str, Tensor] = {}
        if self.cache is not None:
            choice = self._choose_seasons(self.cache.counts[location])
            for key, product, picks in zip(
                ('image_s1', 'image_s2'), self.products, choice, strict=True
            ):
                sample[key] = self.cache.read(product, location, picks)
        else:
            stamps = [self._timestamps(p, location) for p in self.products]
            choice = self._choose_seasons([len(s) for s in stamps])
            for key, product, names, picks in zip(
                ('image_s1', 'image_s2'), self.products, stamps, choice, strict=True
            ):
                sample[key] = torch.cat(
                    [self._read_timestamp(product, location, names[i]) for i in picks]
                )
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Tensor]]:
        """Load a batch of samples; from a cache, straight into one buffer per key.

        Reading a cache, the planes of all samples go into one batch buffer per
        modality (in shared memory in a DataLoader worker) and the samples
        returned are its rows, so
        :func:`~torchgeo_decur.datasets.utils.collate_batch_rows` (the data
        module's collate function) hands the buffer on without stacking it
        again: one copy per sample fewer than reading each sample on its own.
        The samples are the same as :meth:`__getitem__`'s, drawn in the same
        order. Without a cache, or with ``transforms``, it calls
        :meth:`__getitem__` per index.

        Args:
            indices: Location indices of the batch.

        Returns:
            One sample dictionary per index.
        """
        cache = self.cache
        if cache is None or self.transforms is not None or not indices:
            return [self[i] for i in indices]
        keys = ('image_s1', 'image_s2')
        batch = {}
        for key, product in zip(keys, self.products, strict=True):
            dtype = torch.from_numpy(np.empty(0, cache.dtype(product))).dtype
            channels = self.views * len(cache.bands[product])
            shape = (len(indices), channels, cache.size, cache.size)
            batch[key] = batch_buffer(shape, dtype)
        for row, index in enumerate(indices):
            location = self.locations[index]
            choice = self._choose_seasons(cache.counts[location])
            for key, product, picks in zip(keys, self.products, choice, strict=True):
                cache.read(product, location, picks, out=batch[key][row])
        return [{key: batch[key][row] for key in keys} for row in range(len(indices))]

    def __len__(self) -> int:
        """Number of paired locations."""
        return len(self.locations)

    def plot(self, sample: dict[str, Any], suptitle: str | None = None) -> Any:
        """Show the first view of both modalities (S1 VV and S2 true colour).

        Args:
            sample: A sample returned by :meth:`__getitem__`.
            suptitle: Optional figure title.

        Returns:
            A matplotlib Figure.
        """
        import matplotlib.pyplot as plt

        s1 = sample['image_s1'][0].nan_to_num(neginf=-40.0).numpy()
        s2 = sample['image_s2']
        rgb = s2[[3, 2, 1]].permute(1, 2, 0).numpy()
        rgb = np.clip(rgb.astype(np.float32) / 3000.0, 0, 1)
        fig, axs = plt.subplots(1, 2, figsize=(8, 4))
        axs[0].imshow(s1, cmap='gray')
        axs[0].set_title('S1 VV (dB)')
        axs[1].imshow(rgb)
        axs[1].set_title('S2 B4/B3/B2')
        for ax in axs:
            ax.axis('off')
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig
