"""EuroSAT scaled like a DeCUR Sentinel-2 checkpoint, for torchgeo's own tasks."""

from collections.abc import Sequence

from torchgeo.datamodules import EuroSATDataModule

from ..transforms.normalize import ApplyToKeys
from ..weights.loading import as_decur_member


def eurosat_band_name(band: str) -> str:
    """EuroSAT's name of a Sentinel-2 band (``'B1'`` → ``'B01'``, ``'B8A'`` kept).

    Args:
        band: Band name as in the DeCUR members' ``meta['bands']``.

    Returns:
        The name torchgeo's ``EuroSAT`` uses.
    """
    number = band[1:]
    return f'B{int(number):02d}' if number.isdigit() else band


class EuroSATDeCURDataModule(EuroSATDataModule):
    """torchgeo's EuroSAT (Sentinel-2 L1C, 13 bands) as a DeCUR encoder expects it.

    Two changes to :class:`torchgeo.datamodules.EuroSATDataModule`, so that
    torchgeo's own :class:`~torchgeo.tasks.Classification` with
    ``weights: <DeCUR member>`` fine-tunes on the inputs the checkpoint was trained
    with: the bands come in the checkpoint's order (``B8A`` after ``B08``, like
    SSL4EO-S12; EuroSAT's files keep it last), and the on-device ``aug`` is the
    member's Sentinel-2 transform (per-band scaling to [0, 1], resize 256, centre
    crop 224) instead of EuroSAT z-scores. Importing this module (e.g. through a
    YAML ``class_path``) also registers the DeCUR weights with torchgeo.
    """

    def __init__(
        self,
        weights: str = 'DeCURViTSmall16_Weights.SENTINEL2_L1C_SSL4EO_DECUR',
        root: str = 'data',
        bands: Sequence[str] | None = None,
        download: bool = False,
        checksum: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
    ) -> None:
        """Initialize a new EuroSATDeCURDataModule instance.

        Args:
            weights: Name of the DeCUR Weights member whose Sentinel-2 input scaling
                to apply (a backbone-only S2 member or a joint S1/S2 member).
            root: EuroSAT directory (see :class:`torchgeo.datasets.EuroSAT`).
            bands: EuroSAT band names; default (and only accepted value): the
                member's bands in its order.
            download: Download EuroSAT if it is not in ``root``.
            checksum: Verify the downloaded files' checksums.
            batch_size: Size of each mini-batch.
            num_workers: Number of workers for parallel data loading.

        Raises:
            ValueError: If ``weights`` is not a DeCUR member with a Sentinel-2
                encoder, or ``bands`` differ from the member's.
        """
        member = as_decur_member(weights)
        if member is None or 's2' not in member.modalities:
            raise ValueError(
                f'weights={weights!r} is not a DeCUR Weights member with a '
                'Sentinel-2 (s2) encoder'
            )
        expected = [eurosat_band_name(b) for b in member.bands_for('s2')]
        if bands is not None and list(bands) != expected:
            raise ValueError(
                f'{member} expects the bands {expected} in this order, got '
                f'bands={list(bands)}'
            )
        super().__init__(
            batch_size,
            num_workers,
            root=root,
            bands=expected,
            download=download,
            checksum=checksum,
        )
        self.weights = str(member)
        self.aug = ApplyToKeys({'image': member.transforms_for('s2')})
