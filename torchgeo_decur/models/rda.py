"""Residual deformable attention (RDA) and the ResNet-50-RDA encoder of DeCUR.

The ECCV version of DeCUR adds DAT-style deformable attention after ResNet-50's
layer3 and layer4, residually: ``x <- x + DA(x)``. Neither timm nor
torchvision ships this block, so :class:`DeformableAttention` implements it from the
behaviour of the reference's ``DAttentionBaseline``; its parameter names and shapes are those of the released
checkpoints, so released weights load with a plain prefix rename
(``backbone.`` -> ``''``, ``da1_l3.`` -> ``da_l3.``, ...).

:class:`ResNetRDA` is timm's ResNet with two blocks ``da_l3`` and ``da_l4``. It is
registered with timm as ``resnet50_rda``:

* ``timm.create_model('resnet50_rda', in_chans=C, num_classes=0)`` maps
  (N, C, H, W) images to pooled (N, 2048) features;
* ``timm.create_model('resnet50_rda', features_only=True, out_indices=(2, 3, 4))``
  returns ``[layer2, layer3 + DA, layer4 + DA]`` (512, 1024, 2048 channels at
  strides 8, 16, 32) through timm's ``forward_intermediates`` feature API; the
  wrapped encoder (same key names as the pooled model) is its ``.model``.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from timm.models import (
    build_model_with_cfg,
    checkpoint_seq,
    generate_default_cfgs,
    get_pretrained_cfg,
    register_model,
)
from timm.models._features import feature_take_indices
from timm.models.resnet import Bottleneck, ResNet
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

#: Block after ResNet-50 layer3 (1024 channels, 14 x 14 at 224 px), as in DeCUR.
LAYER3_SETTINGS: dict[str, Any] = {
    'channels': 1024,
    'num_heads': 8,
    'num_groups': 4,
    'kernel_size': 5,
    'stride': 2,
    'q_size': (14, 14),
}

#: Block after ResNet-50 layer4 (2048 channels, 7 x 7 at 224 px), as in DeCUR.
LAYER4_SETTINGS: dict[str, Any] = {
    'channels': 2048,
    'num_heads': 16,
    'num_groups': 8,
    'kernel_size': 3,
    'stride': 1,
    'q_size': (7, 7),
}


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of an (N, C, H, W) map, at every pixel.

    Written here (instead of timm's ``LayerNorm2d``) because the released
    checkpoints keep the LayerNorm one level down (``conv_offset.1.norm.weight``).
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        """Initialize a new ChannelLayerNorm instance.

        Args:
            channels: Number of channels C.
            eps: LayerNorm epsilon.
        """
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise (N, C, H, W) over C; returns the same shape."""
        out: Tensor = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return out


class DeformableAttention(nn.Module):
    """DAT-style deformable multi-head attention (DeCUR's ``DAttentionBaseline``).

    Every query pixel attends to ``Hk x Wk`` keys sampled from the input at learned
    positions: an offset network on the queries (per group of channels) moves a
    regular grid of reference points, the input is sampled there bilinearly, and a
    relative-position-bias table, sampled at the query-key displacement, is added to
    the attention logits. Offsets are unbounded and positions are clamped to the
    image (offset_range_factor = -1 in the reference), there is no dropout, no FFN
    and no norm. The bias table is sampled, so any input size of at least 2 x 2
    works; ``q_size`` only sets the table size.

    Hyperparameters are constructor arguments so tiny instances can be built; the
    DeCUR blocks are ``DeformableAttention(**LAYER3_SETTINGS)`` and
    ``DeformableAttention(**LAYER4_SETTINGS)``.
    """

    def __init__(
        self,
        channels: int,
        num_heads: int,
        num_groups: int,
        kernel_size: int,
        stride: int,
        q_size: tuple[int, int],
    ) -> None:
        """Initialize a new DeformableAttention instance.

        Args:
            channels: Input and output channels C (= heads x channels per head).
            num_heads: Number of attention heads; C / num_heads channels each.
            num_groups: Number of offset groups G; every group has its own sampling
                positions, C / G channels and num_heads / G heads.
            kernel_size: Kernel size k of the depth-wise offset convolution
                (padding k // 2).
            stride: Its stride s; the key grid is Hk = floor((H - 1) / s) + 1 rows
                (for odd k) and as many columns.
            q_size: (height, width) the relative-position-bias table is sized for;
                the table is (num_heads, 2 qh - 1, 2 qw - 1).

        Raises:
            ValueError: If the channels do not split into heads and groups evenly.
        """
        super().__init__()
        if num_heads <= 0 or num_groups <= 0 or channels % num_heads:
            raise ValueError(
                f'channels ({channels}) must split evenly into num_heads ({num_heads})'
            )
        if channels % num_groups or num_heads % num_groups:
            raise ValueError(
                f'channels ({channels}) and num_heads ({num_heads}) must split '
                f'evenly into num_groups ({num_groups})'
            )
        qh, qw = (int(s) for s in q_size)
        self.channels = channels
        self.num_heads = num_heads
        self.num_groups = num_groups
        self.head_channels = channels // num_heads
        self.group_channels = channels // num_groups
        self.group_heads = num_heads // num_groups
        self.q_size = (qh, qw)
        cg = self.group_channels
        self.rpe_table = nn.Parameter(torch.empty(num_heads, 2 * qh - 1, 2 * qw - 1))
        self.conv_offset = nn.Sequential(
            nn.Conv2d(cg, cg, kernel_size, stride, kernel_size // 2, groups=cg),
            ChannelLayerNorm(cg),
            nn.GELU(),
            nn.Conv2d(cg, 2, 1, bias=False),
        )
        self.proj_q = nn.Conv2d(channels, channels, 1)
        self.proj_k = nn.Conv2d(channels, channels, 1)
        self.proj_v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)
        # Convolutions keep PyTorch's default initialisation, as in the reference.
        nn.init.trunc_normal_(self.rpe_table, std=0.01)

    def forward(self, x: Tensor) -> Tensor:
        """Attend (the caller adds the residual).

        Args:
            x: Feature map (N, C, H, W), H and W at least 2.

        Returns:
            (N, C, H, W).
        """
        return self.forward_with_positions(x)[0]

    def forward_with_positions(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Attend and also return where the keys were sampled.

        Args:
            x: Feature map (N, C, H, W), H and W at least 2.

        Returns:
            ``(y, pos, ref)``: the output (N, C, H, W); the sampling positions
            (N, G, Hk, Wk, 2) in normalised (y, x) coordinates within [-1, 1]
            (-1 = first row/column centre, +1 = last); the reference points they
            were offset from, same shape.

        Raises:
            ValueError: For a wrong channel count or a map smaller than 2 x 2.
        """
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f'deformable attention expects (N, {self.channels}, H, W), got '
                f'{tuple(x.shape)}'
            )
        n, c, h, w = x.shape
        if h < 2 or w < 2:
            # The query grid of the bias divides by H - 1 and W - 1 (as the reference).
            raise ValueError(
                f'deformable attention needs feature maps of at least 2 x 2, got '
                f'{h} x {w}; use larger inputs'
            )
        g, cg, nh, d = (
            self.num_groups,
            self.group_channels,
            self.num_heads,
            self.head_channels,
        )

        q = self.proj_q(x)
        offset = self.conv_offset(q.reshape(n * g, cg, h, w))  # (NG, 2, Hk, Wk)
        hk, wk = offset.shape[-2:]
        ref = self._reference_points(hk, wk, offset)  # (Hk, Wk, 2)
        pos = (offset.permute(0, 2, 3, 1) + ref).clamp(-1.0, 1.0)  # (NG, Hk, Wk, 2)

        # Keys and values from the input sampled at the positions, per group.
        # Sampled in at least float32 (positions are float32 even under AMP).
        sampled = F.grid_sample(
            x.reshape(n * g, cg, h, w).to(pos.dtype),
            pos.flip(-1),  # grid_sample wants (x, y)
            mode='bilinear',
            padding_mode='zeros',
            align_corners=True,
        )  # (NG, Cg, Hk, Wk)
        ns = hk * wk
        sampled = sampled.reshape(n, c, 1, ns).to(x.dtype)
        k = self.proj_k(sampled).reshape(n, nh, d, ns)
        v = self.proj_v(sampled).reshape(n, nh, d, ns)

        bias = self._position_bias(h, w, pos)  # (N, nh, HW, Ns)
        out = F.scaled_dot_product_attention(
            q.reshape(n, nh, d, h * w).transpose(-1, -2),
            k.transpose(-1, -2),
            v.transpose(-1, -2),
            attn_mask=bias.to(q.dtype),
        )  # (N, nh, HW, d), softmax over Ns with scale d^-1/2
        y: Tensor = self.proj_out(out.transpose(-1, -2).reshape(n, c, h, w))
        return (
            y,
            pos.reshape(n, g, hk, wk, 2),
            ref.expand(n, g, hk, wk, 2),
        )

    @staticmethod
    def _reference_points(hk: int, wk: int, like: Tensor) -> Tensor:
        """Regular key grid (Hk, Wk, 2) in (y, x), before the offsets.

        As in the reference, (i + 0.5) is divided by Hk - 1 (not Hk), so the grid
        is shifted by half a cell towards +1; a single row or column gives +inf,
        which the clamp maps to the last row or column. Computed in the dtype of
        ``like`` (at least float32).
        """
        dtype = torch.promote_types(like.dtype, torch.float32)
        ys = (torch.arange(hk, device=like.device, dtype=dtype) + 0.5) / (hk - 1.0)
        xs = (torch.arange(wk, device=like.device, dtype=dtype) + 0.5) / (wk - 1.0)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing='ij'), dim=-1)
        return grid * 2.0 - 1.0

    def _position_bias(self, h: int, w: int, pos: Tensor) -> Tensor:
        """Relative-position bias of every query-key pair.

        Args:
            h: Query rows H.
            w: Query columns W.
            pos: Key positions (N G, Hk, Wk, 2) in (y, x).

        Returns:
            (N, num_heads, H W, Hk Wk): the bias table sampled at half the
            displacement (query - key), which lies in [-1, 1].
        """
        ng = pos.shape[0]
        n, g = ng // self.num_groups, self.num_groups
        ys = torch.arange(h, device=pos.device, dtype=pos.dtype) / (h - 1.0)
        xs = torch.arange(w, device=pos.device, dtype=pos.dtype) / (w - 1.0)
        qgrid = torch.stack(torch.meshgrid(ys, xs, indexing='ij'), dim=-1) * 2.0 - 1.0
        disp = 0.5 * (qgrid.reshape(1, h * w, 1, 2) - pos.reshape(ng, 1, -1, 2))
        table = self.rpe_table.unsqueeze(0).expand(n, -1, -1, -1)
        table = table.reshape(ng, self.group_heads, *self.rpe_table.shape[1:])
        bias = F.grid_sample(
            table,
            disp.flip(-1).to(table.dtype),
            mode='bilinear',
            padding_mode='zeros',
            align_corners=True,
        )  # (NG, heads per group, HW, Ns)
        return bias.reshape(n, g * self.group_heads, h * w, -1)


class ResNetRDA(ResNet):
    """timm ResNet with residual deformable attention after layer3 and layer4.

    ``forward`` runs stem, layer1-2, ``x = layer3(x); x = x + da_l3(x)``,
    ``x = layer4(x); x = x + da_l4(x)``, then timm's pooling head.
    The state dict is the ResNet's plus ``da_l3.*`` and ``da_l4.*``.
    """

    def __init__(
        self,
        *args: Any,
        da_l3_kwargs: Mapping[str, Any] | None = None,
        da_l4_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Initialize a new ResNetRDA instance.

        Args:
            *args: Arguments of :class:`timm.models.resnet.ResNet`.
            da_l3_kwargs: Arguments of the layer3 block (default
                :data:`LAYER3_SETTINGS`); ``channels`` must equal layer3's width.
            da_l4_kwargs: Same for layer4 (default :data:`LAYER4_SETTINGS`).
            **kwargs: Keyword arguments of :class:`timm.models.resnet.ResNet`.

        Raises:
            ValueError: If a block's channels differ from its layer's width.
        """
        super().__init__(*args, **kwargs)
        blocks: dict[str, DeformableAttention] = {}
        for index, name, given, default in (
            (3, 'da_l3', da_l3_kwargs, LAYER3_SETTINGS),
            (4, 'da_l4', da_l4_kwargs, LAYER4_SETTINGS),
        ):
            settings = dict(default if given is None else given)
            width = self.feature_info[index]['num_chs']
            if settings['channels'] != width:
                raise ValueError(
                    f'{name} has {settings["channels"]} channels but layer{index} '
                    f'outputs {width}'
                )
            blocks[name] = DeformableAttention(**settings)
        self.da_l3: DeformableAttention | None = blocks['da_l3']
        self.da_l4: DeformableAttention | None = blocks['da_l4']
        # torchgeo's Classification takes the last child module for the classifier
        # (torchgeo.tasks.utils.load_state_dict), so keep timm's head last.
        for name in ('global_pool', 'fc'):
            head = getattr(self, name)
            delattr(self, name)
            setattr(self, name, head)

    def _stage(self, index: int, x: Tensor) -> Tensor:
        """Run layer ``index`` (1-4) and, after layer3/4, add its attention."""
        layer = getattr(self, f'layer{index}')
        da = {3: self.da_l3, 4: self.da_l4}.get(index)
        ckpt = self.grad_checkpointing
        x = checkpoint_seq(layer, x) if ckpt else layer(x)
        if da is not None:
            x = x + (checkpoint(da, x, use_reentrant=False) if ckpt else da(x))
        return x

    def forward_features(self, x: Tensor) -> Tensor:
        """Unpooled layer4 + DA features.

        Args:
            x: Images (N, C, H, W).

        Returns:
            (N, 2048, H/32, W/32) for ResNet-50.
        """
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for index in range(1, 5):
            x = self._stage(index, x)
        return x

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = 'NCHW',
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """Features of several stages (timm's feature-extraction API).

        Stage indices as in timm's ResNet: 0 = stem (stride 2), 1-4 = layer1-4;
        3 and 4 include the deformable attention.

        Args:
            x: Images (N, C, H, W).
            indices: Stages to return: the last n if an int, all if None, else
                the given indices.
            norm: Unused (ResNet has no final norm); kept for timm's signature.
            stop_early: Stop after the last requested stage.
            output_fmt: Must be ``'NCHW'``.
            intermediates_only: Return only the list of features.

        Returns:
            The features (each (N, C_i, H/s_i, W/s_i)), or the final features and
            that list.

        Raises:
            ValueError: For an output format other than NCHW.
        """
        if output_fmt != 'NCHW':
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        take_indices, max_index = feature_take_indices(5, indices)
        intermediates = []
        x = self.act1(self.bn1(self.conv1(x)))
        if 0 in take_indices:
            intermediates.append(x)
        x = self.maxpool(x)
        for index in range(1, (max_index if stop_early else 4) + 1):
            x = self._stage(index, x)
            if index in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
        self,
        indices: int | list[int] = 1,
        prune_norm: bool = False,
        prune_head: bool = True,
    ) -> list[int]:
        """Drop the layers (and attention blocks) after the last needed stage.

        Args:
            indices: Stages that will be requested.
            prune_norm: Unused (no final norm).
            prune_head: Remove the classifier.

        Returns:
            The kept stage indices.
        """
        take_indices: list[int] = super().prune_intermediate_layers(
            indices, prune_norm=prune_norm, prune_head=prune_head
        )
        _, max_index = feature_take_indices(5, indices)
        if max_index < 4:
            self.da_l4 = None
        if max_index < 3:
            self.da_l3 = None
        return take_indices


def deformable_attention_blocks(
    model: nn.Module,
) -> tuple[DeformableAttention, DeformableAttention]:
    """The ``da_l3`` and ``da_l4`` blocks of a ResNet-RDA encoder.

    Args:
        model: An encoder such as ``timm.create_model('resnet50_rda')``.

    Returns:
        ``(da_l3, da_l4)``.

    Raises:
        ValueError: If the model has no such blocks.
    """
    blocks = tuple(getattr(model, name, None) for name in ('da_l3', 'da_l4'))
    l3, l4 = blocks
    if not isinstance(l3, DeformableAttention) or not isinstance(
        l4, DeformableAttention
    ):
        raise ValueError(
            f'{type(model).__name__} has no deformable-attention blocks da_l3/da_l4; '
            'use an RDA encoder such as model="resnet50_rda"'
        )
    return l3, l4


def share_deformable_attention(source: nn.Module, target: nn.Module) -> None:
    """Make ``target`` use ``source``'s deformable-attention blocks (same objects).

    Reproduces the reference pretraining forward, where modality 2's encoder ran
    through modality 1's blocks. ``target``'s own blocks are
    discarded; afterwards both encoders' state dicts hold the same tensors.

    Args:
        source: Encoder whose blocks are kept (modality 1).
        target: Encoder that takes them over (modality 2).

    Raises:
        ValueError: If either encoder has no deformable-attention blocks.
    """
    try:
        l3, l4 = deformable_attention_blocks(source)
        deformable_attention_blocks(target)
    except ValueError as error:
        raise ValueError(f'cannot share deformable attention: {error}') from None
    target.da_l3 = l3
    target.da_l4 = l4


def _keep_initial_attention(
    state_dict: dict[str, Tensor], model: nn.Module
) -> dict[str, Tensor]:
    """Timm filter for ImageNet ResNet-50 weights: keep the fresh DA blocks."""
    own = {
        k: v
        for k, v in model.state_dict().items()
        if k.startswith(('da_l3.', 'da_l4.'))
    }
    return {**state_dict, **own}


# The ResNet part can start from the torchvision ImageNet-1k weights the reference
# used (timm's copy 'resnet50.tv_in1k'); the attention blocks always start random.
_tv_in1k = get_pretrained_cfg('resnet50.tv_in1k')
assert _tv_in1k is not None, 'timm lacks resnet50.tv_in1k'
default_cfgs = generate_default_cfgs(
    {
        'resnet50_rda.tv_in1k': {
            **{
                k: v
                for k, v in dataclasses.asdict(_tv_in1k).items()
                if k not in ('architecture', 'tag')
            },
            'notes': (
                'ImageNet-1k weights for the ResNet-50 part only; the deformable '
                'attention blocks are randomly initialised',
            ),
        }
    }
)


@register_model
def resnet50_rda(pretrained: bool = False, **kwargs: Any) -> ResNetRDA:
    """ResNet-50 with residual deformable attention after layer3 and layer4.

    DeCUR's RDA encoder (ECCV 2024), 46 M parameters (25.6 M ResNet-50 + 4.2 M +
    16.8 M attention). ``pretrained=True`` loads torchvision's ImageNet-1k weights
    into the ResNet part (timm adapts the stem to ``in_chans``).

    Args:
        pretrained: Load ImageNet weights into the ResNet part.
        **kwargs: timm ResNet arguments (``in_chans``, ``num_classes``,
            ``features_only``, ``out_indices``, ...).

    Returns:
        The encoder (or timm's feature wrapper with ``features_only=True``).

    Raises:
        ValueError: If a feature class other than timm's ``'getter'`` is asked
            for (the others cannot see the residual attention).
    """
    feature_cls = kwargs.pop('feature_cls', 'getter')
    if feature_cls != 'getter':
        raise ValueError(
            f"resnet50_rda supports only feature_cls='getter', got {feature_cls!r}"
        )
    args: dict[str, Any] = {
        'block': Bottleneck,
        'layers': (3, 4, 6, 3),
        'da_l3_kwargs': LAYER3_SETTINGS,
        'da_l4_kwargs': LAYER4_SETTINGS,
    }
    model: ResNetRDA = build_model_with_cfg(
        ResNetRDA,
        'resnet50_rda',
        pretrained,
        feature_cfg={'feature_cls': 'getter'},
        pretrained_filter_fn=_keep_initial_attention,
        **(args | kwargs),
    )
    return model


__all__ = [
    'LAYER3_SETTINGS',
    'LAYER4_SETTINGS',
    'ChannelLayerNorm',
    'DeformableAttention',
    'ResNetRDA',
    'deformable_attention_blocks',
    'resnet50_rda',
    'share_deformable_attention',
]
