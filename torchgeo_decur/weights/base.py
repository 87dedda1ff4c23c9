"""Base of the DeCUR Weights enums (torchvision ``WeightsEnum``, torchgeo style).

One enum per architecture (:mod:`.enums`), one member per released file
(:data:`~.released.RELEASED_FILES`). Members download through
``WeightsEnum.get_state_dict`` (torch.hub cache, ``weights_only=True``) and return
the weights of **one encoder** with timm's key names, whatever the file's layout,
so torchgeo's own builders and tasks (``torchgeo.models.get_model``,
``torchgeo.tasks.Classification``) load them unchanged. Joint members (both
encoders) also give the whole file through
:meth:`DeCURWeightsEnum.get_raw_state_dict`.
"""

from typing import Any, cast

from torch import Tensor, nn
from torchvision.models._api import WeightsEnum

from ..checkpoints.files import unwrap_state_dict
from ..checkpoints.layouts import (
    CLASSIFIER_PREFIXES,
    RDASemantics,
    check_state_dict,
    is_joint_state_dict,
    select_encoder_state_dict,
    split_joint_state_dict,
)
from ..models.shapes import encoder_shapes
from .inputs import INPUTS


class DeCURWeightsEnum(WeightsEnum):  # type: ignore[misc]
    """Base of the DeCUR Weights enums (it has no members itself).

    ``meta['modality']`` is a modality name for backbone-only files and a pair of
    names for joint files. ``meta['in_chans']``, ``meta['bands']`` and
    ``transforms`` describe modality 1 (the only one for backbone-only files); use
    :meth:`in_chans_for`, :meth:`bands_for` and :meth:`transforms_for` for others.
    ``bands`` / ``in_chans`` are the encoder's input, i.e. what the transform
    returns; the transform takes the same channels, except for the GeoNRW DEM
    members, whose transform takes the one raw DEM channel (metres) and repeats
    it into ``('DEM', 'DEM', 'DEM')``.
    """

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modality names of the encoders in the file, modality 1 first."""
        modality = self.meta['modality']
        return (modality,) if isinstance(modality, str) else tuple(modality)

    @property
    def is_joint(self) -> bool:
        """Whether the file holds both encoders (and projectors)."""
        return len(self.modalities) > 1

    def position(self, modality: str | int | None = None) -> int:
        """1-based position of a modality in the file.

        Args:
            modality: A modality name of :attr:`modalities`, a 1-based position or
                None (modality 1).

        Returns:
            The position.

        Raises:
            ValueError: If the member has no such modality.
        """
        if modality is None:
            return 1
        if isinstance(modality, int) and 1 <= modality <= len(self.modalities):
            return modality
        if isinstance(modality, str) and modality in self.modalities:
            return self.modalities.index(modality) + 1
        raise ValueError(
            f'{self} holds the modalities {list(self.modalities)}; '
            f'modality={modality!r} is none of them'
        )

    def in_chans_for(self, modality: str | int | None = None) -> int:
        """Input channels of one encoder (see :meth:`position`)."""
        return len(self.bands_for(modality))

    def bands_for(self, modality: str | int | None = None) -> tuple[str, ...]:
        """Band names, in checkpoint order, of one encoder."""
        name = self.modalities[self.position(modality) - 1]
        if not self.is_joint:
            return cast(tuple[str, ...], self.meta['bands'])
        return cast(tuple[str, ...], self.meta['bands_per_modality'][name])

    def transforms_for(self, modality: str | int | None = None) -> nn.Module:
        """Input scaling of one encoder (tensor in, tensor out).

        Modality 1 gives ``transforms`` itself; other modalities a new module.
        """
        position = self.position(modality)
        if position == 1:
            return cast(nn.Module, self.transforms)
        return INPUTS[self.meta['inputs'][position - 1]].transforms()

    def expected_shapes(
        self, modality: str | int | None = None
    ) -> dict[str, Any] | None:
        """Key names and shapes of one encoder of the member's architecture.

        The timm model ``meta['model']`` with the encoder's input channels and
        ``meta['backbone_kwargs']`` (``num_classes=0`` unless they set it), built
        on the meta device (see :func:`~torchgeo_decur.models.shapes.encoder_shapes`).

        Args:
            modality: Which encoder (see :meth:`position`).

        Returns:
            Key name → ``torch.Size``, or None where the architecture cannot be
            built on the meta device.
        """
        kwargs = {'num_classes': 0} | dict(self.meta['backbone_kwargs'])
        return encoder_shapes(self.meta['model'], self.in_chans_for(modality), **kwargs)

    def get_raw_state_dict(
        self, progress: bool = True, check_hash: bool = False
    ) -> dict[str, Tensor]:
        """Download (or read from the torch.hub cache) the file as released.

        Args:
            progress: Show a download progress bar.
            check_hash: Check the hash in the file name (the released names carry
                none, so this is a no-op for them).

        Returns:
            The file's state dict, unwrapped from a ``{'model': ...}`` wrapper.

        Raises:
            OSError: If the file is not in the torch.hub cache and cannot be
                downloaded (naming the file and where to put it).
            ValueError: If the file holds the wrong number of encoders.
        """
        from .loading import download_hint  # loading builds on this module

        with download_hint(self):  # no network: one line naming the file's place
            obj = WeightsEnum.get_state_dict(
                self, progress=progress, check_hash=check_hash, weights_only=True
            )
        state_dict = unwrap_state_dict(obj, source=str(self))
        if is_joint_state_dict(state_dict) != self.is_joint:
            expected = 'both encoders' if self.is_joint else 'a single encoder'
            raise ValueError(
                f'{self}: {self.meta["file"]} should hold {expected} but does not'
            )
        return state_dict

    def get_state_dict(
        self,
        *args: Any,
        modality: str | int | None = None,
        rda_semantics: RDASemantics = 'transfer',
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The weights of one encoder, with timm / smp key names.

        This is what torchgeo's builders and tasks call, so they load any released
        layout (joint or not, ``backbone.`` / ``module.backbone_N.`` prefixes,
        ``da1_*`` / ``da2_*``) without knowing about it. The result is checked
        against the keys and shapes of the member's architecture
        (:meth:`expected_shapes`), classifier heads (``fc.*``, ``head.*``) aside,
        so a malformed file fails here with the offending keys listed rather
        than in a builder (torchgeo's asserts carry no message).

        Args:
            *args: Positional arguments of
                :func:`torch.hub.load_state_dict_from_url` after the URL.
            modality: Which encoder of a joint file (name or 1-based position;
                default modality 1).
            rda_semantics: Which deformable-attention blocks modality 2 of an RDA
                joint file gets: ``'transfer'`` (``da2_*``, as the released MS/DEM
                backbone files and downstream code) or ``'pretraining'``
                (``da1_*``, what the pretraining forward used).
            **kwargs: Keyword arguments of
                :func:`torch.hub.load_state_dict_from_url`; ``weights_only`` is
                always True.

        Returns:
            The encoder's state dict.

        Raises:
            OSError: If the file is not in the torch.hub cache and cannot be
                downloaded (naming the file and where to put it).
            ValueError: If ``weights_only=False`` is requested, ``modality`` is
                not in the file, or the file's encoder has missing, unexpected or
                mis-shaped keys for ``meta['model']``.
        """
        if kwargs.get('weights_only') is False:
            raise ValueError('DeCUR weights are only read with weights_only=True')
        kwargs['weights_only'] = True
        kwargs.setdefault('progress', True)
        position = self.position(modality)
        from .loading import download_hint  # loading builds on this module

        with download_hint(self):  # no network: one line naming the file's place
            obj = WeightsEnum.get_state_dict(self, *args, **kwargs)
        state_dict = unwrap_state_dict(obj, source=str(self))
        state = select_encoder_state_dict(
            state_dict,
            str(self),
            modality=position if self.is_joint else None,
            rda_semantics=rda_semantics,
        )
        expected = self.expected_shapes(position)
        if expected is not None:
            check_state_dict(
                expected,
                state,
                what=(
                    f'{self.meta["model"]} with {self.in_chans_for(position)} input '
                    f'channels (encoder {position} of {self}, file '
                    f'{self.meta["file"]})'
                ),
                ignore_missing=CLASSIFIER_PREFIXES,
                ignore_unexpected=CLASSIFIER_PREFIXES,
            )
        return state

    def get_joint_state_dicts(
        self, progress: bool = True, rda_semantics: RDASemantics = 'transfer'
    ) -> tuple[dict[str, dict[str, Tensor]], dict[str, dict[str, Tensor]]]:
        """Both encoders and projectors of a joint file, keyed by modality.

        Args:
            progress: Show a download progress bar.
            rda_semantics: See :meth:`get_state_dict`.

        Returns:
            ``(backbones, projectors)`` keyed by :attr:`modalities`.

        Raises:
            ValueError: For a backbone-only member.
        """
        if not self.is_joint:
            raise ValueError(f'{self} is a backbone-only file; use get_state_dict')
        m1, m2 = self.modalities
        return split_joint_state_dict(
            self.get_raw_state_dict(progress), (m1, m2), str(self), rda_semantics
        )


__all__ = ('DeCURWeightsEnum',)
