"""One base for the multi-encoder tasks: modalities, weights, encoder architecture.

:class:`MultiEncoderTask` is the root of the pretraining tasks
(:class:`~torchgeo_decur.tasks.base.MultimodalSSLTask`) and the downstream tasks
(:class:`~torchgeo_decur.tasks.transfer.MultimodalDownstreamTask`). It holds what
both do with their encoders:

* the encoder options the user passed, validated and parsed once into an
  :class:`EncoderOptions` (modality names, the residual deformable-attention
  options split out of ``backbone_kwargs``);
* the weights, resolved once by
  :func:`~torchgeo_decur.weights.loading.resolve_weights` into an
  :class:`EncoderSpec`: the architecture, channels and backbone options the
  encoders are built with, whether the user named them or the weights did;
* the ``image_<modality>`` entries of a batch (:func:`modality_image`);
* the checkpoint record of the :class:`EncoderSpec`
  (:data:`~torchgeo_decur.checkpoints.architecture.ARCHITECTURE_KEY`), from
  which a checkpoint rebuilds its encoders without the weights it started from.

``self.hparams`` holds exactly what the user passed and is never rewritten.
"""

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor
from torchgeo.tasks import BaseTask

from ..checkpoints.architecture import ARCHITECTURE_KEY
from ..checkpoints.layouts import RDASemantics
from ..models.backbones import split_rda_options
from ..weights.loading import (
    DEFAULT_MODEL,
    MappingHint,
    ResolvedWeights,
    WeightSpec,
    resolve_weights,
)

#: Default channel counts of well-known modality names.
DEFAULT_IN_CHANNELS = {'s1': 2, 's2': 13, 'rgb': 3, 'dem': 3, 'hha': 3}


def resolve_in_channels(
    modalities: Sequence[str], given: Mapping[str, int] | None
) -> dict[str, int]:
    """Channel count of every modality: given values, else the defaults.

    Args:
        modalities: Modality names.
        given: Explicit channel counts (may be None or partial).

    Returns:
        ``{modality: channels}`` in modality order.

    Raises:
        ValueError: If a modality has neither a given nor a default count, or
            ``given`` names a modality that is not used.
    """
    given = dict(given or {})
    out = {}
    for m in modalities:
        if m in given:
            out[m] = int(given[m])
        elif m in DEFAULT_IN_CHANNELS:
            out[m] = DEFAULT_IN_CHANNELS[m]
        else:
            raise ValueError(
                f'in_channels has no entry for modality {m!r} and there is no '
                f'default for it; pass in_channels={{{m!r}: <C>}}'
            )
    unknown = sorted(set(given) - set(modalities))
    if unknown:
        raise ValueError(
            f'in_channels names unknown modalities {unknown}; '
            f'modalities are {list(modalities)}'
        )
    return out


_WORDS = {2: 'two', 3: 'three'}


def check_modalities(
    modalities: Sequence[str],
    task: str,
    minimum: int = 1,
    maximum: int | None = None,
    hint: str = '',
) -> tuple[str, ...]:
    """Validate a task's modality names.

    Args:
        modalities: The names, modality 1 first.
        task: The task's class name, for the message.
        minimum: Fewest modalities the task takes.
        maximum: Most modalities the task takes (None: any number).
        hint: Words added to the message of too many modalities.

    Returns:
        The names as a tuple.

    Raises:
        ValueError: If a name repeats, or there are too few or too many.
    """
    mods = tuple(modalities)
    if len(mods) < minimum or len(set(mods)) != len(mods):
        count = (
            'one or more'
            if minimum <= 1
            else f'at least {_WORDS.get(minimum, minimum)}'
        )
        raise ValueError(f'{task} needs {count} distinct modalities, got {list(mods)}')
    if maximum is not None and len(mods) > maximum:
        raise ValueError(
            f'{task} is defined for {maximum} modalities, got {len(mods)}: '
            f'{list(mods)}{hint}'
        )
    return mods


def modality_image(
    batch: Mapping[str, Tensor], modality: str, alias: str | None = None
) -> tuple[str, Tensor]:
    """The image of one modality in a batch.

    Args:
        batch: Batch with ``image_<modality>`` entries.
        modality: The modality.
        alias: Another key accepted when ``image_<modality>`` is absent.

    Returns:
        ``(key, image)``.

    Raises:
        ValueError: If the batch has neither key.
    """
    key = f'image_{modality}'
    if key not in batch and alias is not None and alias in batch:
        key = alias
    if key not in batch:
        raise ValueError(
            f'batch has no {f"image_{modality}"!r} for modality {modality!r}; '
            f'keys: {sorted(batch)}'
        )
    return key, batch[key]


@dataclass(frozen=True)
class EncoderOptions:
    """The encoder options a user passed, validated and parsed once.

    Attributes:
        modalities: Modality names, modality 1 first.
        model: Architecture the user named (None: the weights', else the default).
        in_channels: Channels the user set, per modality (may be partial).
        backbone_kwargs: ``backbone_kwargs`` as given.
        timm_kwargs: ``backbone_kwargs`` without the RDA options.
        rda_semantics: Which deformable-attention blocks modality 2 of an RDA
            joint file gets.
        shared_rda: Modality 2 runs through modality 1's deformable attention.
        joint_modalities: Names of a joint file's encoders, modality 1 first
            (None: the member's or the task's).
    """

    modalities: tuple[str, ...]
    model: str | None
    in_channels: dict[str, int]
    backbone_kwargs: dict[str, Any]
    timm_kwargs: dict[str, Any]
    rda_semantics: RDASemantics
    shared_rda: bool
    joint_modalities: tuple[str, ...] | None = None

    @classmethod
    def parse(
        cls,
        modalities: tuple[str, ...],
        model: str | None,
        in_channels: Mapping[str, int] | None,
        backbone_kwargs: Mapping[str, Any] | None,
        joint_modalities: Sequence[str] | None = None,
    ) -> 'EncoderOptions':
        """Parse the arguments (the modalities are already checked).

        Raises:
            ValueError: For invalid RDA options.
        """
        timm_kwargs, semantics, shared = split_rda_options(backbone_kwargs)
        return cls(
            modalities,
            model,
            {str(m): int(c) for m, c in dict(in_channels or {}).items()},
            dict(backbone_kwargs or {}),
            timm_kwargs,
            semantics,
            shared,
            None if joint_modalities is None else tuple(joint_modalities),
        )


@dataclass(frozen=True)
class EncoderSpec:
    """The encoders a task builds: its options completed by its weights.

    Attributes:
        modalities: Modality names, modality 1 first.
        model: timm name of the architecture (all encoders).
        in_channels: Input channels per modality.
        backbone_kwargs: The weights' backbone options updated by the given
            ``backbone_kwargs`` (what a checkpoint records).
        timm_kwargs: ``backbone_kwargs`` without the RDA options: what the
            encoder builder gets.
        rda_semantics: See :class:`EncoderOptions`.
        shared_rda: See :class:`EncoderOptions`.
        sources: Where each pretrained encoder's weights came from.
    """

    modalities: tuple[str, ...]
    model: str
    in_channels: dict[str, int]
    backbone_kwargs: dict[str, Any]
    timm_kwargs: dict[str, Any]
    rda_semantics: RDASemantics
    shared_rda: bool
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def resolve(
        cls,
        options: EncoderOptions,
        weights: ResolvedWeights,
        keep_encoder_head: bool,
    ) -> 'EncoderSpec':
        """Complete the options with what the weights say.

        Args:
            options: The parsed options.
            weights: The resolved weights.
            keep_encoder_head: Keep a head the weights' encoders carry (DeCUR's
                MiT ``num_classes``), as pretraining does.

        Returns:
            The spec.

        Raises:
            ValueError: For missing or unknown channel counts.
        """
        extra = {
            k: v
            for k, v in weights.backbone_kwargs.items()
            if keep_encoder_head or k != 'num_classes'
        }
        sources = {m: enc.source for m, enc in weights.encoders.items()}
        sources |= {m: 'timm ImageNet' for m in weights.imagenet}
        return cls(
            options.modalities,
            weights.model or options.model or DEFAULT_MODEL,
            resolve_in_channels(
                options.modalities, {**weights.in_chans, **options.in_channels}
            ),
            {**extra, **options.backbone_kwargs},
            {**extra, **options.timm_kwargs},
            options.rda_semantics,
            options.shared_rda,
            sources,
        )

    @classmethod
    def from_record(
        cls, options: EncoderOptions, record: Mapping[str, Any]
    ) -> 'EncoderSpec':
        """The spec a checkpoint recorded (its encoders' weights follow).

        Args:
            options: The parsed options of the task loading the checkpoint.
            record: The checkpoint's :data:`ARCHITECTURE_KEY` entry.

        Returns:
            The spec.

        Raises:
            ValueError: If the record is incomplete or invalid.
        """
        missing = [k for k in ('model', 'in_channels') if k not in record]
        if missing:
            raise ValueError(
                f'checkpoint entry {ARCHITECTURE_KEY!r} lacks {missing}: {record}'
            )
        timm_kwargs, semantics, shared = split_rda_options(
            record.get('backbone_kwargs')
        )
        return cls(
            options.modalities,
            str(record['model']),
            resolve_in_channels(options.modalities, record['in_channels']),
            dict(record.get('backbone_kwargs') or {}),
            timm_kwargs,
            semantics,
            shared,
        )

    def record(self) -> dict[str, Any]:
        """What a checkpoint records (see :data:`ARCHITECTURE_KEY`)."""
        return {
            'modalities': list(self.modalities),
            'model': self.model,
            'in_channels': dict(self.in_channels),
            'backbone_kwargs': dict(self.backbone_kwargs),
        }


class MultiEncoderTask(BaseTask):
    """Root of the multi-encoder tasks: one encoder per modality, from any weights.

    A subclass calls :meth:`parse_encoder_options` in its ``__init__`` before
    ``super().__init__()`` and builds its modules in :meth:`build_encoders`;
    :meth:`configure_models` resolves the weights once into
    :attr:`encoder_spec` first. Checkpoints record :attr:`encoder_spec`, and
    loading one rebuilds the encoders it describes.
    """

    ignore = 'weights'

    #: Fewest and most modalities the task takes (None: any number).
    min_modalities = 1
    max_modalities: int | None = None

    #: Words added to the error about too many modalities.
    modality_hint = ''

    #: Take the architecture of DeCUR members when ``model`` is not given.
    follow_member_model = False

    #: Keep an encoder head the weights carry (see :meth:`EncoderSpec.resolve`).
    keep_encoder_head = False

    encoder_options: EncoderOptions
    encoder_spec: EncoderSpec

    def parse_encoder_options(
        self,
        weights: WeightSpec | Mapping[str, WeightSpec],
        modalities: Sequence[str],
        model: str | None,
        in_channels: Mapping[str, int] | None,
        backbone_kwargs: Mapping[str, Any] | None,
        joint_modalities: Sequence[str] | None = None,
    ) -> None:
        """Validate and keep the encoder arguments (call before ``__init__``).

        Args:
            weights: The weights spec (resolved in :meth:`configure_models`).
            modalities: Modality names, modality 1 first.
            model: Architecture, or None.
            in_channels: Channels per modality, or None.
            backbone_kwargs: Backbone options, or None.
            joint_modalities: Names of a joint file's encoders, or None.

        Raises:
            ValueError: For invalid modalities or RDA options.
        """
        self.weights = weights
        mods = check_modalities(
            modalities,
            type(self).__name__,
            self.min_modalities,
            self.max_modalities,
            self.modality_hint,
        )
        self.encoder_options = EncoderOptions.parse(
            mods, model, in_channels, backbone_kwargs, joint_modalities
        )

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modality names, modality 1 first."""
        return self.encoder_options.modalities

    @property
    def in_channels(self) -> dict[str, int]:
        """Input channels per modality."""
        return self.encoder_spec.in_channels

    def weights_rda_semantics(self) -> RDASemantics:
        """Which deformable-attention blocks modality 2 of a joint file gets."""
        return self.encoder_options.rda_semantics

    def weights_hint(self) -> MappingHint:
        """Words for the warning about weights of other modality names."""
        return ''

    def configure_models(self) -> None:
        """Resolve the weights once into :attr:`encoder_spec`, then build."""
        options = self.encoder_options
        resolved = resolve_weights(
            self.weights,
            options.modalities,
            model=options.model,
            in_channels=options.in_channels or None,
            joint_modalities=options.joint_modalities,
            rda_semantics=self.weights_rda_semantics(),
            follow_member_model=self.follow_member_model,
            hint=self.weights_hint(),
        )
        self.encoder_spec = EncoderSpec.resolve(
            options, resolved, self.keep_encoder_head
        )
        self.build_encoders(resolved)

    @abstractmethod
    def build_encoders(self, weights: ResolvedWeights) -> None:
        """Build the modules of :attr:`encoder_spec` and load ``weights``.

        Args:
            weights: The resolved weights (empty when a checkpoint's state
                follows).
        """

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record :attr:`encoder_spec` beside the hyper-parameters.

        Args:
            checkpoint: The dictionary about to be saved.
        """
        checkpoint[ARCHITECTURE_KEY] = self.encoder_spec.record()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Rebuild the encoders the checkpoint recorded, if they differ.

        The hyper-parameters hold what the user passed (the weights spec is not
        among them), so a task built from them alone may lack what its weights
        said; the checkpoint's state dict is loaded after this hook.

        Args:
            checkpoint: The loaded checkpoint.

        Raises:
            ValueError: If the record is incomplete or invalid.
        """
        record = checkpoint.get(ARCHITECTURE_KEY)
        if not isinstance(record, Mapping):
            return
        spec = EncoderSpec.from_record(self.encoder_options, record)
        if spec.record() != self.encoder_spec.record():
            self.encoder_spec = spec
            self.build_encoders(ResolvedWeights())


__all__ = (
    'DEFAULT_IN_CHANNELS',
    'EncoderOptions',
    'EncoderSpec',
    'MultiEncoderTask',
    'check_modalities',
    'modality_image',
    'resolve_in_channels',
)
