"""Sentinel-2 harmonization: remove the radiometric offset of processing baseline 04.00+.

Since processing baseline 04.00 (operational on 2022-01-25) Sentinel-2 L1C and L2A
products store digital numbers with an offset: reflectance = (DN + ADD_OFFSET) /
10000 with ``RADIO_ADD_OFFSET`` (L1C) / ``BOA_ADD_OFFSET`` (L2A) = -1000, and DN 0
still means no data. ESA's reprocessed archive (Collection-1) carries the offset for
older acquisitions too; "harmonized" sources (Earth Engine's ``S2_HARMONIZED``
collections, Sentinel Hub by default) have already removed it. SSL4EO-S12, the
released DeCUR weights and their input scaling are pre-offset, so offset products
must be shifted down by 1000 DN before they are scaled.

Every reader of Sentinel-2 in this package takes ``s2_harmonize``:

* ``'auto'`` (default): remove the offset when the product's processing baseline is
  04.00 or later (from ``_N0400_``-style baselines in the product name or a
  ``PROCESSING_BASELINE`` tag, or from an ``*_ADD_OFFSET`` tag in the file's
  metadata); else when the acquisition date is on or after 2022-01-25; when neither
  is known, leave the values as they are and warn once per source;
* ``'always'``: remove it from every product (e.g. Collection-1 reprocessing);
* ``'never'``: leave the values as stored (harmonized or pre-2022 sources).

Removing the offset maps DN 0 (no data) to 0 and every other DN to
``max(DN - 1000, 1)``: valid pixels stay valid (never 0, never below zero, so
unsigned types never wrap) and the type is kept.
"""

import re
import warnings
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Literal, get_args

import torch
from torch import Tensor

from ..options import option

#: Values of the ``s2_harmonize`` option of every Sentinel-2 reader.
S2Harmonize = Literal['auto', 'always', 'never']
S2_HARMONIZE: tuple[str, ...] = get_args(S2Harmonize)

#: DN offset of processing baseline 04.00+ (``RADIO_ADD_OFFSET`` /
#: ``BOA_ADD_OFFSET`` = -1000).
S2_OFFSET = 1000
#: First processing baseline that stores the offset.
OFFSET_BASELINE = (4, 0)
#: Date processing baseline 04.00 became operational.
OFFSET_DATE = date(2022, 1, 25)

# ``_N0509_`` in a product name (S2B_MSIL2A_20230615T103629_N0509_R008_...).
_BASELINE = re.compile(r'_N(\d{2})(\d{2})(?=[_.]|$)')
# YYYYMMDD (optionally THHMMSS) or YYYY-MM-DD, not inside a longer number.
_DATE = re.compile(r'(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?:T\d{6})?(?!\d)')


def check_s2_harmonize(value: str) -> str:
    """Check an ``s2_harmonize`` value.

    Args:
        value: The option as passed.

    Returns:
        ``value``.

    Raises:
        ValueError: If it is not ``'auto'``, ``'always'`` or ``'never'``.
    """
    if value not in S2_HARMONIZE:
        raise ValueError(
            f's2_harmonize must be one of {list(S2_HARMONIZE)}, got {value!r}'
        )
    return value


def baseline_from_name(name: str) -> tuple[int, int] | None:
    """The processing baseline in a Sentinel-2 product or file name.

    Args:
        name: Product name, file name or path (e.g. containing ``_N0509_``).

    Returns:
        ``(major, minor)``, e.g. ``(5, 9)``, or None when the name has none.
    """
    found = _BASELINE.findall(name)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def date_from_name(name: str) -> date | None:
    """The first valid date (``YYYYMMDD[THHMMSS]`` or ``YYYY-MM-DD``) in a name.

    For a Sentinel-2 product name this is the sensing start.

    Args:
        name: File name, chip key or product name.

    Returns:
        The date, or None when the name holds none.
    """
    for match in _DATE.finditer(name):
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            continue
    return None


def date_from_ns(ns: int) -> date | None:
    """The UTC date of a time in nanoseconds since the epoch (0: unknown).

    Args:
        ns: Nanoseconds since 1970-01-01 UTC; 0 or negative means no time.

    Returns:
        The date, or None.
    """
    if ns <= 0:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).date()


def offset_from_tags(tags: Mapping[str, str]) -> bool | None:
    """Whether a file's metadata says its DN carry the offset.

    Reads ``*ADD_OFFSET*`` items (``RADIO_ADD_OFFSET``, ``BOA_ADD_OFFSET``, per
    band or not) and ``PROCESSING_BASELINE`` (e.g. ``'05.09'``), as GDAL's
    Sentinel-2 driver and many exporters write them.

    Args:
        tags: Metadata items of a raster (dataset or band level).

    Returns:
        True (offset), False (no offset) or None (the tags do not say).
    """
    for key, value in tags.items():
        if 'ADD_OFFSET' in key.upper():
            try:
                return float(value) != 0
            except ValueError:
                continue
    for key, value in tags.items():
        if key.upper() == 'PROCESSING_BASELINE':
            match = re.fullmatch(r'\s*(\d+)\.(\d+)\s*', str(value))
            if match:
                return (int(match[1]), int(match[2])) >= OFFSET_BASELINE
    return None


def carries_offset(
    *,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    when: date | None = None,
) -> bool | None:
    """Whether a Sentinel-2 product's DN carry the offset, from what is known.

    The processing baseline decides when known (name, then tags), else the
    acquisition date.

    Args:
        name: Product or file name (for ``_N0400_``-style baselines).
        tags: The file's metadata items.
        when: Acquisition date.

    Returns:
        True, False, or None when nothing tells.
    """
    baseline = baseline_from_name(name) if name else None
    if baseline is not None:
        return baseline >= OFFSET_BASELINE
    tagged = offset_from_tags(tags) if tags else None
    if tagged is not None:
        return tagged
    if when is not None:
        return when >= OFFSET_DATE
    return None


def remove_offset(x: Tensor) -> Tensor:
    """Shift offset DN down by 1000: 0 stays 0 (no data), others ``max(DN - 1000, 1)``.

    Args:
        x: Sentinel-2 DN of any shape and real type (unsigned types never wrap).

    Returns:
        A new tensor of the same shape and type.
    """
    if x.dtype == torch.uint8:
        raise ValueError(
            'Sentinel-2 DN stored as uint8 cannot carry the 1000 DN offset; '
            f'use {option("s2_harmonize", "never")} for 8-bit products'
        )
    wide = x.to(torch.float64) if x.is_floating_point() else x.to(torch.int64)
    shifted = torch.clamp(wide - S2_OFFSET, min=1)
    return torch.where(wide == 0, wide, shifted).to(x.dtype)


class S2Harmonizer:
    """Decide and apply the offset removal of one reader, warning once per source.

    A reader makes one instance from its ``s2_harmonize`` option and calls it on
    every Sentinel-2 image with what it knows of the product. Under ``'auto'``
    a product it cannot place is left as stored, with one warning per source.
    """

    def __init__(self, mode: str = 'auto') -> None:
        """Initialize a new S2Harmonizer instance.

        Args:
            mode: ``'auto'``, ``'always'`` or ``'never'``.
        """
        self.mode = check_s2_harmonize(mode)
        self.warned: set[str] = set()

    def decide(
        self,
        source: str,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        when: date | None = None,
    ) -> bool:
        """Whether to remove the offset from one product.

        Args:
            source: Names the product's source (folder, dataset) in the warning.
            name: Product or file name.
            tags: The file's metadata items.
            when: Acquisition date.

        Returns:
            True to remove the offset.
        """
        if self.mode != 'auto':
            return self.mode == 'always'
        offset = carries_offset(name=name, tags=tags, when=when)
        if offset is None:
            if source not in self.warned:
                self.warned.add(source)
                warnings.warn(
                    f'{source}: cannot tell whether these Sentinel-2 DN carry the '
                    'processing baseline 04.00 offset (no _N0400_-style baseline '
                    'in the name, no offset tag, no acquisition date); left as '
                    f'stored. Set {option("s2_harmonize", "always")} (offset '
                    'products, e.g. 2022-01-25 or later, or Collection-1) or '
                    f'{option("s2_harmonize", "never")} (pre-offset or harmonized '
                    'products) to say so.',
                    UserWarning,
                    stacklevel=3,
                )
            return False
        return offset

    def __call__(
        self,
        x: Tensor,
        source: str,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        when: date | None = None,
    ) -> Tensor:
        """Remove the offset from ``x`` when :meth:`decide` says so.

        Args:
            x: Sentinel-2 DN.
            source: Names the product's source in the warning.
            name: Product or file name.
            tags: The file's metadata items.
            when: Acquisition date.

        Returns:
            ``x`` itself or the shifted copy.
        """
        if self.decide(source, name=name, tags=tags, when=when):
            return remove_offset(x)
        return x


__all__ = (
    'OFFSET_BASELINE',
    'OFFSET_DATE',
    'S2_HARMONIZE',
    'S2_OFFSET',
    'S2Harmonize',
    'S2Harmonizer',
    'baseline_from_name',
    'carries_offset',
    'check_s2_harmonize',
    'date_from_name',
    'date_from_ns',
    'offset_from_tags',
    'remove_offset',
)
