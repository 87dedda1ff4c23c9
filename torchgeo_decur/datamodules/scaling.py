"""The input-scaling vocabulary of every data module, and the helpers of own data.

Every data module takes ``normalization`` with the values of
:data:`Normalization` and reads them through :func:`resolve_normalization`;
docs/user_guide/scaling.md tabulates what each value does for each sensor.

:class:`~torchgeo_decur.datamodules.MultimodalGeoDataModule` (own rasters) and
:class:`~torchgeo_decur.datamodules.PairedChipsDataModule` (own chip folders) both
estimate per-band statistics at ``setup`` unless given, keep them in their
hyperparameters and scale every band on the device with the DeCUR mean ± 2σ →
[0, 1] window. These helpers keep the two doing exactly the same.
"""

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
import torchvision.transforms.v2 as T

from ..transforms.normalize import ApplyToKeys, ClipNormalize
from ..transforms.statistics import BandStatistics, BandStats

#: The ``normalization`` values every data module takes. ``'decur'``: the input
#: scaling of the DeCUR checkpoints for the data's sensors; ``'decur_uint8'``: the
#: same, rounded down to the reference's uint8 steps (multiples of 1/255);
#: ``'decur_pretraining'``: the scaling of the DeCUR pretraining runs where it
#: differs from the evaluation one (the GeoNRW DEM), else ``'decur'``;
#: ``'none'``: raw values as float32.
Normalization = Literal['decur', 'decur_uint8', 'decur_pretraining', 'none']
NORMALIZATIONS: tuple[str, ...] = get_args(Normalization)


@dataclass(frozen=True)
class Scaling:
    """What a ``normalization`` value asks of a data module.

    Attributes:
        value: The ``normalization`` value.
        scale: Apply the DeCUR scaling (False: raw values as float32).
        quantize: Round the scaled values down to multiples of 1/255.
        pretraining: Use the pretraining variant where a sensor has one.
    """

    value: str
    scale: bool
    quantize: bool
    pretraining: bool


def resolve_normalization(
    value: str, owner: str, supported: Sequence[str] = NORMALIZATIONS
) -> Scaling:
    """Check a ``normalization`` value and say what it asks for.

    Args:
        value: The value passed to the data module.
        owner: The data module's class name, for the message.
        supported: The values this data module can apply.

    Returns:
        The scaling to build.

    Raises:
        ValueError: If ``value`` is not one of :data:`NORMALIZATIONS`, or not one
            this data module supports.
    """
    if value not in NORMALIZATIONS:
        raise ValueError(
            f'{owner}: normalization must be one of {list(NORMALIZATIONS)}, '
            f'got {value!r}'
        )
    if value not in supported:
        raise ValueError(
            f'{owner}: normalization={value!r} does not apply to its data; use '
            f'one of {list(supported)}'
        )
    return Scaling(
        value, value != 'none', value == 'decur_uint8', value == 'decur_pretraining'
    )


def given_statistics(statistics: Mapping[str, Any] | None) -> dict[str, BandStats]:
    """Statistics as plain float lists (e.g. from a YAML file or checkpoint).

    Args:
        statistics: ``{m: {'mean': [...], 'std': [...]}}`` or None.

    Returns:
        The same, with float lists.
    """
    return {
        m: {
            'mean': [float(v) for v in s['mean']],
            'std': [float(v) for v in s['std']],
        }
        for m, s in (statistics or {}).items()
    }


#: Relative standard deviation (std / max(|mean|, 1)) at or below which a band
#: counts as constant and :func:`finish_estimate` warns.
CONSTANT_STD = 1e-4


def finish_estimate(estimator: BandStatistics, where: str) -> BandStats:
    """Mean and std of an estimator, with a floor for constant bands.

    Args:
        estimator: Filled with the sampled patches or chips.
        where: Names the modality and its data, for the error message.

    Returns:
        ``{'mean': [...], 'std': [...]}`` in raw units.

    Raises:
        ValueError: If nothing was sampled or a band has no valid value.
    """
    try:
        mean, std = estimator.compute()
    except ValueError as err:
        raise ValueError(f'{where}: {err}') from None
    for band, (m, sd) in enumerate(zip(mean.tolist(), std.tolist(), strict=True)):
        if sd <= CONSTANT_STD * max(abs(m), 1.0):
            warnings.warn(
                f'{where}: band {band} is (nearly) constant (std {sd:.3g} around '
                f'mean {m:.6g}): it carries no information and scales to a '
                'constant input; check the data or leave the band out',
                UserWarning,
                stacklevel=2,
            )
    # A constant band has std 0; a tiny window keeps the scaling defined
    # (every value maps to 0 or 1) instead of dividing by zero.
    std = torch.maximum(std, 1e-6 * mean.abs().clamp(min=1.0))
    return {'mean': mean.tolist(), 'std': std.tolist()}


def check_statistics(
    stats: Mapping[str, BandStats],
    channels: Mapping[str, int],
    describe: Callable[[str], str],
) -> None:
    """Check that every modality's statistics have one entry per band.

    Args:
        stats: Statistics per modality.
        channels: Bands per modality of the data.
        describe: Names a modality's data for the error message.

    Raises:
        ValueError: If a modality's statistics have the wrong length.
    """
    for m, s in stats.items():
        c = channels[m]
        if len(s['mean']) != c or len(s['std']) != c:
            raise ValueError(
                f'statistics for modality {m!r} have {len(s["mean"])} means and '
                f'{len(s["std"])} stds, but {describe(m)} has {c} bands'
            )


def clip_normalization(
    stats: Mapping[str, BandStats], modalities: list[str], quantize: bool = False
) -> ApplyToKeys:
    """The mean ± 2σ → [0, 1] scaling of every ``image_<m>``.

    Args:
        stats: Statistics per modality, raw units.
        modalities: Modalities to scale.
        quantize: Round down to multiples of 1/255 (``'decur_uint8'``).

    Returns:
        A transform of batch dictionaries.
    """
    return ApplyToKeys(
        {
            f'image_{m}': ClipNormalize(
                stats[m]['mean'], stats[m]['std'], quantize=quantize
            )
            for m in modalities
        }
    )


def to_float32(modalities: list[str]) -> ApplyToKeys:
    """Convert every ``image_<m>`` to float32 (exact for 8- and 16-bit integers).

    The on-device step of data modules that pass raw values on unscaled, so
    that batches reach the task as float32 whatever type the workers used.

    Args:
        modalities: Modalities to convert.

    Returns:
        A transform of batch dictionaries.
    """
    return ApplyToKeys({f'image_{m}': T.ToDtype(torch.float32) for m in modalities})


def check_task_modalities(
    task: Any, modalities: list[str], describe: Callable[[str], str], noun: str
) -> None:
    """Compare the data's modality names with the task's ``modalities``.

    Args:
        task: The Lightning module being trained, or None.
        modalities: Modality names of the data module.
        describe: Names a modality's data for the error message.
        noun: What the user names after the modalities (e.g. ``'datasets'``).

    Raises:
        ValueError: If the names differ.
    """
    hparams = getattr(task, 'hparams', None) or {}
    if 'modalities' not in hparams:
        return
    wanted = list(hparams['modalities'])
    if sorted(wanted) != sorted(modalities):
        raise ValueError(
            f'the task has modalities {wanted}, the data module {noun} '
            f'{modalities} ('
            + ', '.join(f'{m!r}: {describe(m)}' for m in modalities)
            + f'); name the {noun} after the task modalities'
        )


def check_channels(
    channels: Mapping[str, int],
    expected: Mapping[str, Any],
    what: str,
    describe: Callable[[str], str],
) -> None:
    """Compare the data's band counts with those a task expects.

    Args:
        channels: Bands per modality of the data (modalities not yet known are
            not checked).
        expected: Channels per modality of the task.
        what: Where ``expected`` comes from, e.g. ``'the task has in_channels'``.
        describe: Names a modality's data for the error message.

    Raises:
        ValueError: If a modality's counts differ.
    """
    for m, c in expected.items():
        if m in channels and channels[m] != int(c):
            raise ValueError(
                f'modality {m!r}: {describe(m)} has {channels[m]} bands but {what} '
                f"{m!r}: {c}; set in_channels or select the dataset's bands to match"
            )


__all__ = (
    'NORMALIZATIONS',
    'BandStats',
    'Normalization',
    'Scaling',
    'check_channels',
    'check_statistics',
    'check_task_modalities',
    'clip_normalization',
    'finish_estimate',
    'given_statistics',
    'resolve_normalization',
)


class StatisticsState:
    """Data module mixin: checkpoint the band statistics the scaling uses.

    A resumed run then scales exactly as the interrupted one, even where the
    statistics were estimated at ``setup``. The data module keeps them in
    ``hparams['statistics']`` and rebuilds its scaling with ``_build_aug``.
    """

    hparams: Any

    def _build_aug(self) -> None:  # pragma: no cover - provided by the data module
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The band statistics in use (also in the hyperparameters).

        Returns:
            ``{'statistics': {m: {'mean': [...], 'std': [...]}}}`` or ``{}``.
        """
        stats = self.hparams.get('statistics')
        return {'statistics': stats} if stats else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the statistics of a checkpoint (resumed runs scale the same).

        Args:
            state_dict: Output of :meth:`state_dict`.
        """
        if state_dict.get('statistics') and self.hparams['normalization'] != 'none':
            self.hparams['statistics'] = state_dict['statistics']
            self._build_aug()


class TaskAgreement:
    """Data module mixin: check the data against the task, scale on the device.

    The data modules of own data name their modalities (after folders or
    datasets) and count their bands; a task built for other names or band counts
    would fail later with a shape error far from the cause. This mixin compares
    them with the task's ``modalities`` and ``in_channels`` hyperparameters (when
    the data module calls :meth:`_check_task_hparams` at ``setup``) and with the
    task's resolved ``in_channels`` on the first batch, then moves the on-device
    scaling (``self.aug``) to the batch's device and applies it. It must come
    before torchgeo's data module class among the bases, whose
    ``on_after_batch_transfer`` applies ``self.aug``.
    """

    #: What the user names after the modalities, for messages (e.g. 'folders').
    modality_noun: str
    channels: dict[str, int]
    aug: Any
    trainer: Any
    _checked_task: bool = False

    @property
    def modalities(self) -> list[str]:  # pragma: no cover - data module's own
        """Modality names, in the data module's order."""
        raise NotImplementedError

    def _describe(self, m: str) -> str:  # pragma: no cover - data module's own
        raise NotImplementedError

    def _task(self) -> Any:
        """The Lightning module being trained, or None outside a trainer."""
        trainer = getattr(self, 'trainer', None)
        return None if trainer is None else trainer.lightning_module

    def _check_task_hparams(self) -> None:
        """Compare modality names and given channel counts with the task's.

        Raises:
            ValueError: If the names or the band counts differ.
        """
        task = self._task()
        check_task_modalities(task, self.modalities, self._describe, self.modality_noun)
        given = (getattr(task, 'hparams', None) or {}).get('in_channels') or {}
        check_channels(self.channels, given, 'the task has in_channels', self._describe)

    def on_after_batch_transfer(
        self, batch: dict[str, Any], dataloader_idx: int
    ) -> dict[str, Any]:
        """Check the first batch against the task, then scale on the device.

        Args:
            batch: Batch dictionary on the device.
            dataloader_idx: Index of the loader.

        Returns:
            The batch with every ``image_<m>`` scaled (or converted to float32).

        Raises:
            ValueError: On the first batch, if the task's resolved
                ``in_channels`` differ from the data's band counts.
        """
        if not self._checked_task:
            channels = getattr(self._task(), 'in_channels', None)
            if isinstance(channels, Mapping):
                check_channels(
                    self.channels,
                    channels,
                    'the task expects in_channels',
                    self._describe,
                )
            self._checked_task = True
        key = f'image_{self.modalities[0]}'
        if key in batch and isinstance(self.aug, torch.nn.Module):
            self.aug.to(batch[key].device)
        transferred: dict[str, Any] = super().on_after_batch_transfer(  # type: ignore[misc]
            batch, dataloader_idx
        )
        return transferred
