"""Paired chips from plain folders: one folder per modality, matched by file name.

The simplest way to bring your own multimodal data: cut the scenes into chips
(GeoTIFF or anything else rasterio reads), put each sensor's chips into its own
folder, and name the chips so that a key can be read from the file name::

    s1/S1_tile_0001.tif    s2/tile_0001_S2.tif
    s1/S1_tile_0002.tif    s2/tile_0002_S2.tif

:class:`PairedChips` pairs the files of all folders by that key and returns one
``image_<modality>`` per key in raw units. Sentinel-2 chips (modalities whose
name starts with ``s2``) are harmonized to the pre-2022 DN scale
(``s2_harmonize``, see :mod:`torchgeo_decur.transforms.harmonize`).
"""

import copy
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import rasterio
import torch
from rasterio.errors import RasterioError
from torch import Tensor
from torchgeo.datasets import DatasetNotFoundError, NonGeoDataset
from tqdm import tqdm

from ..options import option
from ..transforms.harmonize import S2Harmonize, S2Harmonizer, date_from_name
from .rasters import check_values

#: Band selection of one modality: 1-based band indexes or band descriptions.
BandSelection = Sequence[int | str]

#: How many file names an error or warning lists before saying how many more.
LISTED = 20


def listing(names: Sequence[str]) -> str:
    """List names for a message, at most :data:`LISTED`, saying how many are left.

    Args:
        names: Names to list.

    Returns:
        E.g. ``"['a.tif', 'b.tif']"`` or ``"['a.tif', ...] and 5 more"``.
    """
    shown = list(names[:LISTED])
    more = len(names) - len(shown)
    return f'{shown}' + (f' and {more} more' if more else '')


@dataclass(frozen=True)
class ChipLayout:
    """What every chip of one modality must share with its first chip.

    Attributes:
        path: The first chip (sorted by key), whose header defines the rest.
        count: Its number of bands.
        height: Its height in pixels.
        width: Its width in pixels.
        nodata: Its nodata value, or None.
    """

    path: str
    count: int
    height: int
    width: int
    nodata: float | None


class PairedChips(NonGeoDataset):
    """Multimodal chips matched by file name across one folder per modality.

    Every file in a modality's folder (not in sub-folders) whose name ends in one of
    ``extensions`` is a chip. Its **key** is its stem (the name without the last
    extension), or, with a ``pattern``, what the pattern extracts from the stem:
    the pattern must match the whole stem (:func:`re.fullmatch`) and the key is
    its group named ``key``, else its first group, else the whole stem. Chips of
    different modalities with the same key form a sample::

        {'image_<modality>': (C_m, H_m, W_m) float32}

    in raw units, the bands in the order of ``bands`` (default: all bands of the
    file, in file order). All chips of a modality must have the same size and band
    count as its first chip (sorted by key); modalities may differ in both.

    Invalid input follows ``on_invalid``, as the other datasets of this package:
    ``'error'`` raises a ``ValueError`` naming the files, ``'skip'`` warns and
    leaves those keys out (recorded in :attr:`skipped`). Invalid are: a key found
    in some folders but not all (the unmatched file names are listed), a stem the
    pattern does not match, two files of one modality with the same key, and, when
    the files are checked (``check_files``, implied by ``'skip'``), a chip that
    cannot be read or whose band count, size or nodata value differs from the
    modality's first chip. Without the check, such a chip raises when read, naming
    its full path.
    """

    def __init__(
        self,
        folders: Mapping[str, str],
        pattern: str | Mapping[str, str] | None = None,
        bands: Mapping[str, BandSelection] | None = None,
        extensions: Sequence[str] = ('.tif', '.tiff'),
        on_invalid: Literal['error', 'skip'] = 'error',
        check_files: bool = False,
        transforms: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
        s2_harmonize: S2Harmonize = 'auto',
        progress: bool = True,
    ) -> None:
        """Initialize a new PairedChips instance.

        Args:
            folders: Modality name -> folder of its chips, e.g.
                ``{'s1': 'data/s1', 's2': 'data/s2'}``; samples hold
                ``image_<modality>`` in this order.
            pattern: Regular expression extracting the key from a file's stem,
                one for all modalities or ``{modality: pattern}`` (modalities left
                out use the stem); e.g. ``{'s1': 'S1_(?P<key>.+)',
                's2': '(?P<key>.+)_S2'}``.
            bands: Per modality, the bands to read, in the order wanted: 1-based
                band indexes (as rasterio and GDAL count them) or band
                descriptions stored in the files (e.g. ``['B4', 'B3', 'B2']``),
                or a mix; modalities left out read all bands.
            extensions: File name endings of chips (case-insensitive); other
                files (e.g. ``.aux.xml`` side-cars) are ignored.
            on_invalid: ``'error'`` raises on invalid chips, ``'skip'`` leaves
                their keys out with a warning (and implies ``check_files``).
            check_files: Open every chip at construction (with a progress bar) to
                find unreadable or inconsistent ones up front.
            transforms: Function applied to each sample dictionary.
            s2_harmonize: Remove the 1000 DN offset of processing baseline
                04.00+ from the chips of modalities whose name starts with
                ``s2``: ``'auto'`` (by the ``_N0400_``-style baseline in the
                file name, an offset tag in the file, else the date in the key
                or file name, >= 2022-01-25; warns once per folder when none
                tells), ``'always'`` or ``'never'``.
            progress: Show a progress bar while checking the files.

        Raises:
            DatasetNotFoundError: If a folder does not exist.
            ValueError: For an empty ``folders``, a pattern or band selection of
                an unknown modality, an invalid pattern, an invalid chip under
                ``on_invalid='error'``, or no paired chip at all.
        """
        if not folders:
            raise ValueError('folders must name at least one modality')
        if on_invalid not in ('error', 'skip'):
            raise ValueError(
                f"on_invalid must be 'error' or 'skip', got {on_invalid!r}"
            )
        self.folders = {m: os.fspath(f) for m, f in folders.items()}
        patterns = (
            dict.fromkeys(self.folders, pattern)
            if pattern is None or isinstance(pattern, str)
            else dict(pattern)
        )
        for what, given in (('pattern', patterns), ('bands', bands or {})):
            unknown = sorted(set(given) - set(self.folders))
            if unknown:
                raise ValueError(
                    f'{what} names modalities {unknown} that are not in folders '
                    f'{list(self.folders)}'
                )
        self.patterns: dict[str, re.Pattern[str] | None] = {}
        for m in self.folders:
            text = patterns.get(m)
            try:
                self.patterns[m] = None if text is None else re.compile(text)
            except re.error as err:
                raise ValueError(
                    f'pattern for modality {m!r} is not a valid regular expression '
                    f'{text!r}: {err}'
                ) from None
        self.bands: dict[str, list[int | str] | None] = {
            m: None if (bands or {}).get(m) is None else list((bands or {})[m])
            for m in self.folders
        }
        for m, sel in self.bands.items():
            if sel is not None and not sel:
                raise ValueError(f'bands for modality {m!r} is empty')
        self.extensions = tuple(e.lower() for e in extensions)
        self.on_invalid = on_invalid
        self.transforms = transforms
        self.harmonizer = S2Harmonizer(s2_harmonize)
        #: Keys left out with ``on_invalid='skip'``, with the reason.
        self.skipped: dict[str, str] = {}
        #: ``{modality: {key: path}}`` of every paired chip.
        self.files: dict[str, dict[str, str]] = {}
        self.keys = self._pair()
        if not self.keys:
            raise ValueError(
                'no chip is present in every folder of '
                f'{self.folders} (extensions {list(self.extensions)})'
            )
        #: The header every chip of a modality must agree with.
        self.layouts = {m: self._layout(m) for m in self.folders}
        self.keys = [k for k in self.keys if k not in self.skipped]
        if check_files or on_invalid == 'skip':
            self.keys = [
                key
                for key in tqdm(self.keys, desc='Checking chips', disable=not progress)
                if self._check_key(key)
            ]
            if not self.keys:
                raise ValueError(
                    f'every paired chip of {self.folders} is invalid; see the warnings'
                )

    # --------------------------------------------------------------- pairing
    @property
    def modalities(self) -> list[str]:
        """Modality names, in the order of ``folders``."""
        return list(self.folders)

    @property
    def channels(self) -> dict[str, int]:
        """Bands per modality in every sample."""
        return {
            m: len(sel) if sel is not None else self.layouts[m].count
            for m, sel in self.bands.items()
        }

    @property
    def nodata(self) -> dict[str, float | None]:
        """Nodata value per modality (of its first chip)."""
        return {m: layout.nodata for m, layout in self.layouts.items()}

    def _invalid(self, message: str, keys: Sequence[str]) -> None:
        """Raise or warn about invalid keys depending on ``on_invalid``."""
        if self.on_invalid == 'error':
            raise ValueError(f'{message} (pass {option("on_invalid", "skip")} to skip)')
        warnings.warn(message + '; skipping', UserWarning, stacklevel=3)
        for key in keys:
            self.skipped[key] = message

    def _key(self, m: str, stem: str) -> str | None:
        """The key of a stem, or None when the modality's pattern rejects it."""
        pattern = self.patterns[m]
        if pattern is None:
            return stem
        match = pattern.fullmatch(stem)
        if match is None:
            return None
        if 'key' in match.groupdict():
            return match.group('key')
        return match.group(1) if match.re.groups else match.group(0)

    def _scan(self, m: str) -> dict[str, str]:
        """``{key: path}`` of one modality's folder (invalid files reported)."""
        folder = self.folders[m]
        if not os.path.isdir(folder):
            err = DatasetNotFoundError(self)
            err.args = (f'{err.args[0]} Missing folder of modality {m!r}: {folder!r}.',)
            raise err
        with os.scandir(folder) as entries:
            names = sorted(
                e.name
                for e in entries
                if e.is_file()
                and not e.name.startswith('.')
                and e.name.lower().endswith(self.extensions)
            )
        by_key: dict[str, list[str]] = {}
        rejected = []
        for name in names:
            key = self._key(m, os.path.splitext(name)[0])
            if key is None:
                rejected.append(name)
            else:
                by_key.setdefault(key, []).append(name)
        if rejected:
            pattern = self.patterns[m]
            self._invalid(
                f'{len(rejected)} file(s) of modality {m!r} in {folder!r} do not '
                f'match its pattern {pattern.pattern if pattern else None!r}: '
                f'{listing(rejected)}',
                [],
            )
        clashes = {k: v for k, v in by_key.items() if len(v) > 1}
        if clashes:
            self._invalid(
                f'modality {m!r} ({folder!r}) has several files for key(s) '
                + ', '.join(f'{k!r}: {v}' for k, v in list(clashes.items())[:LISTED])
                + (
                    f' and {len(clashes) - LISTED} more'
                    if len(clashes) > LISTED
                    else ''
                ),
                list(clashes),
            )
        return {
            k: os.path.join(folder, v[0]) for k, v in by_key.items() if k not in clashes
        }

    def _pair(self) -> list[str]:
        """Keys present in every folder, sorted; unmatched files are reported."""
        found = {m: self._scan(m) for m in self.folders}
        common = set.intersection(*(set(f) for f in found.values()))
        parts = []
        unmatched: list[str] = []
        for m, files in found.items():
            alone = sorted(set(files) - common)
            if not alone:
                continue
            lacking = [
                o for o in self.folders if o != m and not set(alone) <= set(found[o])
            ]
            parts.append(
                f'{len(alone)} chip(s) of modality {m!r} in {self.folders[m]!r} have '
                f'no match in modality {lacking} ('
                + ', '.join(repr(self.folders[o]) for o in lacking)
                + f'): {listing([os.path.basename(files[k]) for k in alone])}'
            )
            unmatched += alone
        if parts:
            message = '; '.join(parts)
            if not common and all(found.values()):
                examples = {m: next(iter(sorted(f))) for m, f in found.items()}
                message += (
                    f'. No key is shared at all (first keys: {examples}): pass a '
                    f'pattern ({option("pattern", "REGEX")}) that extracts the '
                    'common part of the file names'
                )
            self._invalid(message, sorted(set(unmatched)))
        self.files = {m: {k: found[m][k] for k in sorted(common)} for m in found}
        return sorted(common)

    # --------------------------------------------------------------- reading
    def _layout(self, m: str) -> ChipLayout:
        """Header of the modality's first readable chip, checked against ``bands``.

        A chip that cannot be opened follows ``on_invalid`` (under ``'skip'`` the
        next key's chip is tried); a band selection the chip lacks always raises,
        since it would fail for every chip.
        """
        for key in self.keys:
            if key in self.skipped:
                continue
            path = self.files[m][key]
            try:
                src = self._open(path)
            except ValueError as err:
                self._invalid(f'invalid chip of key {key!r}: {err}', [key])
                continue
            with src:
                self._indexes(m, src, path)
                return ChipLayout(
                    path,
                    src.count,
                    src.height,
                    src.width,
                    None if src.nodata is None else float(src.nodata),
                )
        raise ValueError(
            f'no chip of modality {m!r} in {self.folders[m]!r} could be opened; '
            'see the warnings'
        )

    def _open(self, path: str) -> Any:
        """Open a chip with rasterio, naming its path and modality on failure."""
        try:
            return rasterio.open(path)
        except (RasterioError, OSError) as err:
            raise ValueError(
                f'cannot read chip {path!r}{self._modality_of(path)}: {err}'
            ) from None

    def _modality_of(self, path: str) -> str:
        """`` of modality 'm'`` for a chip path, for messages."""
        for m, files in self.files.items():
            if path in files.values():
                return f' of modality {m!r}'
        return ''

    def _indexes(self, m: str, src: Any, path: str) -> list[int]:
        """1-based band indexes of ``bands[m]`` in an open file."""
        sel = self.bands[m]
        if sel is None:
            return list(range(1, src.count + 1))
        names = list(src.descriptions)
        out = []
        for band in sel:
            if isinstance(band, bool) or not isinstance(band, int | str):
                raise ValueError(
                    f'bands[{m!r}] entries must be 1-based indexes or band '
                    f'descriptions, got {band!r}'
                )
            if isinstance(band, int):
                if not 1 <= band <= src.count:
                    raise ValueError(
                        f'bands[{m!r}] asks for band {band}, but {path!r} has '
                        f'{src.count} bands (indexes are 1-based)'
                    )
                out.append(band)
            elif names.count(band) == 1:
                out.append(names.index(band) + 1)
            else:
                raise ValueError(
                    f'bands[{m!r}] asks for band {band!r}, but {path!r} has '
                    f'{names.count(band)} bands of that description; its band '
                    f'descriptions are {names} (use 1-based indexes for files '
                    'without descriptions)'
                )
        return out

    def _check_src(self, m: str, src: Any, path: str) -> None:
        """Compare an open chip with its modality's first chip."""
        ref = self.layouts[m]
        nodata = None if src.nodata is None else float(src.nodata)
        if (src.count, src.height, src.width) != (ref.count, ref.height, ref.width):
            raise ValueError(
                f'chip {path!r} of modality {m!r} has {src.count} bands of '
                f'{src.height} x {src.width} px, but the first chip {ref.path!r} has '
                f'{ref.count} bands of {ref.height} x {ref.width} px; all chips of a '
                'modality must agree'
            )
        if nodata != ref.nodata and not (
            nodata is not None
            and ref.nodata is not None
            and np.isnan([nodata, ref.nodata]).all()
        ):
            raise ValueError(
                f'chip {path!r} of modality {m!r} has nodata={nodata}, but the '
                f'first chip {ref.path!r} has nodata={ref.nodata}; the statistics '
                'need one nodata value per modality'
            )

    def read(self, m: str, key: str) -> Tensor:
        """Read the selected bands of one chip.

        Args:
            m: Modality name.
            key: Chip key.

        Returns:
            (C_m, H, W) float32 raw values.

        Raises:
            ValueError: If the chip cannot be read or differs from the modality's
                first chip, naming its full path.
        """
        path = self.files[m][key]
        with self._open(path) as src:
            self._check_src(m, src, path)
            indexes = self._indexes(m, src, path)
            try:
                data = src.read(indexes, out_dtype='float32')
            except (RasterioError, OSError) as err:
                raise ValueError(
                    f'cannot read chip {path!r} of modality {m!r}: {err}'
                ) from None
            tags = src.tags() | src.tags(1) if m.lower().startswith('s2') else {}
        image = torch.from_numpy(data)
        if m.lower().startswith('s2'):
            image = self.harmonizer(
                image,
                f'Sentinel-2 chips in {self.folders[m]!r}',
                name=os.path.basename(path),
                tags=tags,
                when=date_from_name(key) or date_from_name(os.path.basename(path)),
            )
        return image

    def _check_key(self, key: str) -> bool:
        """Open every chip of a key; False (after the policy) if one is bad."""
        for m in self.folders:
            path = self.files[m][key]
            try:
                with self._open(path) as src:
                    self._check_src(m, src, path)
                    self._indexes(m, src, path)
                    # Decoding every band finds truncated or corrupt data anywhere
                    # in the file (a corrupt block may sit in any band).
                    try:
                        values = src.read()
                    except (RasterioError, OSError) as err:
                        raise ValueError(
                            f'cannot decode chip {path!r} of modality {m!r}: {err}'
                        ) from None
                    check_values(values, f'chip {path!r} of modality {m!r}', src.nodata)
            except ValueError as err:
                self._invalid(f'invalid chip of key {key!r}: {err}', [key])
                return False
        return True

    # --------------------------------------------------------------- dataset
    def select(self, keys: Sequence[str]) -> 'PairedChips':
        """A copy of this dataset restricted to ``keys``, in that order.

        Args:
            keys: Keys of this dataset.

        Returns:
            A new dataset sharing the file lists.

        Raises:
            ValueError: If a key is not a (valid, paired) key of this dataset.
        """
        known = set(self.keys)
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise ValueError(
                f'keys {listing(unknown)} are not paired chips of {self.folders}'
            )
        out = copy.copy(self)
        out.keys = list(keys)
        return out

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Load the chips of one key.

        Args:
            index: Index of the key in :attr:`keys`.

        Returns:
            ``{'image_<m>': (C_m, H_m, W_m) float32}`` raw values.

        Raises:
            ValueError: If a chip cannot be read or is inconsistent.
        """
        key = self.keys[index]
        sample = {f'image_{m}': self.read(m, key) for m in self.folders}
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def __len__(self) -> int:
        """Number of paired keys."""
        return len(self.keys)


__all__ = ('ChipLayout', 'PairedChips')
