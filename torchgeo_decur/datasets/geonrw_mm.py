"""GeoNRW-MM: aerial RGB + elevation (DEM) + land-cover mask, optionally tiled.

A thin layer over torchgeo's :class:`~torchgeo.datasets.GeoNRW` that keeps its
layout (``<city>/<E>_<N>_{rgb.jp2, dem.tif, seg.tif}``), readers, city splits and
download, and returns the DEM as an image (``image_dem``) next to ``image_rgb``, so
that batch augmentations treat it like the RGB (torchgeo's own key ``dem`` is
skipped by kornia's dictionary augmentation). The DeCUR code cut every 1000 × 1000
image into 16 tiles of 250 × 250 px; ``tile_size`` does the same on
the fly.
"""

import os
from collections.abc import Callable, Sequence
from typing import Literal, cast

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor
from torchgeo.datasets import DatasetNotFoundError, GeoNRW
from torchgeo.datasets.utils import Path, Sample
from torchvision.transforms.functional import pil_to_tensor

from .rasters import check_values, naming_file
from .utils import distinct_subset

GeoNRWModality = Literal['rgb', 'dem']


def check_geonrw_modalities(modalities: Sequence[str]) -> tuple[GeoNRWModality, ...]:
    """Validate a GeoNRW modality list (non-empty, distinct, rgb/dem only)."""
    mods = distinct_subset(modalities, ('rgb', 'dem'))
    return cast(tuple[GeoNRWModality, ...], mods)


class GeoNRWMM(GeoNRW):
    """GeoNRW with one tensor per modality and optional tiling.

    Samples: ``image_rgb`` (3, T, T) in [0, 1], **R, G, B** order (torchgeo's
    reader; the DeCUR checkpoints want B, G, R, which the data module provides),
    ``image_dem`` (1, T, T) heights in metres, ``mask`` (T, T) class indices 0-10
    (0 = background), where T is ``tile_size`` (or the full image size).

    Any subset of the split's cities may be present on disk.
    """

    def __init__(
        self,
        root: Path = 'data',
        split: Literal['train', 'test'] = 'train',
        modalities: Sequence[GeoNRWModality] = ('rgb', 'dem'),
        tile_size: int | None = 250,
        transforms: Callable[[Sample], Sample] | None = None,
        download: bool = False,
        checksum: bool = False,
    ) -> None:
        """Initialize a new GeoNRWMM instance.

        Args:
            root: Directory holding the city folders.
            split: ``'train'`` or ``'test'`` (torchgeo's city lists).
            modalities: Which of ``'rgb'`` and ``'dem'`` to load (the mask is
                always loaded).
            tile_size: Cut every image into non-overlapping tiles of this size in
                pixels (250 in the reference); None keeps whole images.
            transforms: Transform applied to every sample dictionary.
            download: Download and extract the dataset if absent.
            checksum: Verify the download.

        Raises:
            ValueError: For invalid modalities or a tile size that does not divide
                the images.
            DatasetNotFoundError: If no image of the split is found.
        """
        self.image_modalities = check_geonrw_modalities(modalities)
        if tile_size is not None and tile_size < 1:
            raise ValueError(f'tile_size must be positive or None, got {tile_size}')
        super().__init__(root, split, transforms, download, checksum)
        if not self.file_list:
            raise DatasetNotFoundError(self)
        with Image.open(self.file_list[0]) as first:
            width, height = first.size
        self.image_shape = (height, width)
        if tile_size is None:
            self.grid = (1, 1)
            self.tile_shape = (height, width)
        else:
            if height % tile_size or width % tile_size:
                raise ValueError(
                    f'tile_size {tile_size} does not divide the {height} x {width} '
                    f'images (first: {self.file_list[0]!r})'
                )
            self.grid = (height // tile_size, width // tile_size)
            self.tile_shape = (tile_size, tile_size)

    def _verify(self) -> None:
        """Accept any present city folder; otherwise extract or download."""
        if any(os.path.isdir(os.path.join(self.root, c)) for c in self.city_names):
            return
        super()._verify()

    @property
    def tiles_per_image(self) -> int:
        """Number of samples cut from every image."""
        return self.grid[0] * self.grid[1]

    def __len__(self) -> int:
        """Number of samples (tiles)."""
        return len(self.file_list) * self.tiles_per_image

    def city(self, index: int) -> str:
        """City folder of a sample (for city-grouped splits).

        Args:
            index: Sample index.

        Returns:
            The city directory.
        """
        return os.path.dirname(self.file_list[index // self.tiles_per_image])

    def _read(self, rgb_path: str, modality: str) -> Tensor:
        """Read the file of one modality next to ``rgb_path`` (C, H, W)."""
        coords = os.path.basename(rgb_path).split('_')[:2]
        path = os.path.join(
            os.path.dirname(rgb_path), self.modality_filenames[modality](coords)
        )
        if not os.path.isfile(path):
            raise ValueError(f'{rgb_path!r} has no {modality} file {path!r}')
        with naming_file(path, f'GeoNRW {modality}'):
            image = self.readers[modality](path)
            if modality == 'rgb':
                rgb: Tensor = pil_to_tensor(image).float() / 255.0
                check_values(rgb.numpy(), f'{path!r} (GeoNRW {modality})')
                return rgb
            array = np.array(image)
        if array.ndim != 2:
            raise ValueError(f'{path!r}: expected one band, got shape {array.shape}')
        if modality == 'dem':
            check_values(array[None], f'{path!r} (GeoNRW {modality})')
        return torch.from_numpy(
            array.astype(np.float32 if modality == 'dem' else np.int64)
        )[None]

    def __getitem__(self, index: int) -> Sample:
        """Load one tile.

        Args:
            index: Sample index.

        Returns:
            ``image_<modality>`` tensors and the ``mask``.

        Raises:
            ValueError: If a partner file is missing or the grids disagree.
        """
        if not 0 <= index < len(self):
            raise IndexError(f'index {index} out of range for {len(self)} samples')
        image_index, tile = divmod(index, self.tiles_per_image)
        rgb_path = self.file_list[image_index]
        arrays = {m: self._read(rgb_path, m) for m in (*self.image_modalities, 'seg')}
        for m, a in arrays.items():
            if tuple(a.shape[-2:]) != self.image_shape:
                raise ValueError(
                    f'{rgb_path!r}: {m} is {tuple(a.shape[-2:])} px, expected '
                    f'{self.image_shape} like the other images'
                )
        row, col = divmod(tile, self.grid[1])
        th, tw = self.tile_shape
        window = (slice(row * th, (row + 1) * th), slice(col * tw, (col + 1) * tw))
        sample: Sample = {
            f'image_{m}': arrays[m][(slice(None), *window)].contiguous()
            for m in self.image_modalities
        }
        sample['mask'] = arrays['seg'][0][window].contiguous()
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def plot(
        self,
        sample: Sample,
        show_titles: bool = True,
        suptitle: str | None = None,
    ) -> Figure:
        """Plot the images, the mask and (if present) the prediction of a sample.

        Args:
            sample: A sample or an unbound batch element (raw or normalised).
            show_titles: Show panel titles.
            suptitle: Optional figure title.

        Returns:
            The figure.
        """
        panels: list[tuple[str, Tensor]] = [
            (k, v) for k, v in sample.items() if k.startswith('image')
        ]
        panels += [(k, sample[k]) for k in ('mask', 'prediction') if k in sample]
        fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4))
        axes = np.atleast_1d(axes)
        for ax, (key, value) in zip(axes, panels, strict=True):
            v = value.detach().float().cpu()
            if key in ('mask', 'prediction'):
                ax.imshow(
                    v.squeeze().numpy(),
                    cmap=self.colormap,
                    vmin=0,
                    vmax=10,
                    interpolation='none',
                )
            elif v.shape[0] == 3 and key != 'image_dem':
                lo, hi = v.min(), v.max()
                ax.imshow(((v - lo) / (hi - lo + 1e-6)).permute(1, 2, 0).numpy())
            else:
                ax.imshow(v[0].numpy(), cmap='gray')
            ax.axis('off')
            if show_titles:
                ax.set_title(key)
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig
