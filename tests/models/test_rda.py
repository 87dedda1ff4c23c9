"""Deformable attention block: layout, shapes, gradients and the math itself."""

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from torchgeo_decur.models import LAYER3_SETTINGS, LAYER4_SETTINGS, DeformableAttention

# Every parameter of the released blocks, in order, with its shape.
L3_SHAPES = {
    'rpe_table': (8, 27, 27),
    'conv_offset.0.weight': (256, 1, 5, 5),
    'conv_offset.0.bias': (256,),
    'conv_offset.1.norm.weight': (256,),
    'conv_offset.1.norm.bias': (256,),
    'conv_offset.3.weight': (2, 256, 1, 1),
    'proj_q.weight': (1024, 1024, 1, 1),
    'proj_q.bias': (1024,),
    'proj_k.weight': (1024, 1024, 1, 1),
    'proj_k.bias': (1024,),
    'proj_v.weight': (1024, 1024, 1, 1),
    'proj_v.bias': (1024,),
    'proj_out.weight': (1024, 1024, 1, 1),
    'proj_out.bias': (1024,),
}
L4_SHAPES = {
    'rpe_table': (16, 13, 13),
    'conv_offset.0.weight': (256, 1, 3, 3),
    'conv_offset.0.bias': (256,),
    'conv_offset.1.norm.weight': (256,),
    'conv_offset.1.norm.bias': (256,),
    'conv_offset.3.weight': (2, 256, 1, 1),
    'proj_q.weight': (2048, 2048, 1, 1),
    'proj_q.bias': (2048,),
    'proj_k.weight': (2048, 2048, 1, 1),
    'proj_k.bias': (2048,),
    'proj_v.weight': (2048, 2048, 1, 1),
    'proj_v.bias': (2048,),
    'proj_out.weight': (2048, 2048, 1, 1),
    'proj_out.bias': (2048,),
}

# Small blocks for the exact comparison: strided (like layer3) and not (layer4).
TINY_STRIDED: dict[str, Any] = {
    'channels': 16,
    'num_heads': 4,
    'num_groups': 2,
    'kernel_size': 3,
    'stride': 2,
    'q_size': (4, 5),
}
TINY_FLAT: dict[str, Any] = {
    'channels': 12,
    'num_heads': 6,
    'num_groups': 3,
    'kernel_size': 3,
    'stride': 1,
    'q_size': (3, 3),
}


@pytest.fixture(scope='module')
def l3() -> DeformableAttention:
    torch.manual_seed(0)
    return DeformableAttention(**LAYER3_SETTINGS)


@pytest.fixture(scope='module')
def l4() -> DeformableAttention:
    torch.manual_seed(0)
    return DeformableAttention(**LAYER4_SETTINGS)


@pytest.mark.parametrize(
    ('name', 'shapes', 'count'),
    [('l3', L3_SHAPES, 4_211_912), ('l4', L4_SHAPES, 16_791_696)],
)
def test_released_parameter_layout(
    name: str,
    shapes: dict[str, tuple[int, ...]],
    count: int,
    request: pytest.FixtureRequest,
) -> None:
    block: DeformableAttention = request.getfixturevalue(name)
    state = block.state_dict()
    assert list(state) == list(shapes)
    assert {k: tuple(v.shape) for k, v in state.items()} == shapes
    assert list(block.buffers()) == []
    assert sum(p.numel() for p in block.parameters()) == count
    # Initialisation as in the reference.
    assert torch.equal(state['conv_offset.1.norm.weight'], torch.ones(256))
    assert torch.equal(state['conv_offset.1.norm.bias'], torch.zeros(256))
    assert block.conv_offset[1].norm.eps == 1e-5
    assert 0.009 < state['rpe_table'].std() < 0.011
    assert state['rpe_table'].abs().max() < 0.07


# Layer3 / layer4 feature maps of 224, 256, 160 px and a 224 x 320 input.
SIZES = [(14, 14), (16, 16), (10, 10), (14, 20)]


@pytest.mark.parametrize('name', ['l3', 'l4'])
@pytest.mark.parametrize('size', SIZES, ids=lambda s: f'{s[0]}x{s[1]}')
def test_any_input_size_shapes_and_gradients(
    name: str, size: tuple[int, int], request: pytest.FixtureRequest
) -> None:
    block: DeformableAttention = request.getfixturevalue(name)
    block.zero_grad()
    h, w = size if name == 'l3' else (size[0] // 2, size[1] // 2)
    x = torch.randn(1, block.channels, h, w, requires_grad=True)
    y, pos, ref = block.forward_with_positions(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    stride = 2 if name == 'l3' else 1
    hk, wk = math.ceil(h / stride), math.ceil(w / stride)
    assert pos.shape == ref.shape == (1, block.num_groups, hk, wk, 2)
    (x + y).square().mean().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    for k, p in block.named_parameters():
        assert p.grad is not None, k
        assert p.grad.abs().sum() > 0, k
        assert torch.isfinite(p.grad).all(), k


def test_reference_points_use_hk_minus_one() -> None:
    block = DeformableAttention(**TINY_FLAT)
    _, _, ref = block.forward_with_positions(torch.randn(1, 12, 7, 7))
    # Reference grid: for Hk = 7 the points run from -0.8333 to +1.1667.
    expected = torch.tensor([2 * (i + 0.5) / 6 - 1 for i in range(7)])
    torch.testing.assert_close(ref[0, 0, :, 0, 0], expected)
    torch.testing.assert_close(ref[0, 0, 0, :, 1], expected)


def test_zero_output_projection_is_exact_identity() -> None:
    torch.manual_seed(0)
    block = DeformableAttention(**TINY_STRIDED)
    torch.nn.init.zeros_(block.proj_out.weight)
    torch.nn.init.zeros_(block.proj_out.bias)
    x = torch.randn(2, 16, 6, 5)
    assert torch.equal(x + block(x), x)


def test_sampling_positions_stay_in_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    block = DeformableAttention(**TINY_STRIDED)
    with torch.no_grad():
        block.conv_offset[3].weight.mul_(50)  # offsets far outside the map
    grids: list[Tensor] = []
    original = F.grid_sample

    def spy(input: Tensor, grid: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        assert kwargs['align_corners'] is True
        assert kwargs['mode'] == 'bilinear'
        assert kwargs['padding_mode'] == 'zeros'
        grids.append(grid.detach().clone())
        return original(input, grid, *args, **kwargs)

    monkeypatch.setattr(F, 'grid_sample', spy)
    _, pos, _ = block.forward_with_positions(torch.randn(2, 16, 9, 8))
    assert len(grids) == 2  # keys, then the bias table
    for grid in grids:
        assert grid.min() >= -1
        assert grid.max() <= 1
    # The key grid is the (x, y) view of the returned (y, x) positions.
    torch.testing.assert_close(grids[0], pos.reshape(-1, 5, 4, 2).flip(-1))
    assert (pos.abs() == 1).any()  # the clamp was needed
    assert pos.min() >= -1
    assert pos.max() <= 1


def test_input_errors() -> None:
    block = DeformableAttention(**TINY_FLAT)
    with pytest.raises(ValueError, match='at least 2 x 2, got 1 x 5'):
        block(torch.randn(1, 12, 1, 5))
    with pytest.raises(ValueError, match=r'expects \(N, 12, H, W\)'):
        block(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match='num_groups'):
        DeformableAttention(12, 6, 4, 3, 1, (3, 3))
    with pytest.raises(ValueError, match='num_heads'):
        DeformableAttention(12, 5, 1, 3, 1, (3, 3))


# ---------------------------------------------------------------------------
# An independent transcription of the reference forward with explicit loops and dense
# bilinear interpolation (tent weights), used to check the module exactly.


def tent_sample(image: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """Bilinear sample of (..., H, W) at normalised y, x (align_corners=True).

    Zero outside the image: a pixel (i, j) contributes with weight
    max(0, 1 - |py - i|) * max(0, 1 - |px - j|), py = (y + 1) / 2 * (H - 1).
    y and x may be batched (P,); returns (..., P).
    """
    h, w = image.shape[-2:]
    py = (y + 1) / 2 * (h - 1)
    px = (x + 1) / 2 * (w - 1)
    rows = torch.arange(h, dtype=image.dtype)
    cols = torch.arange(w, dtype=image.dtype)
    wy = (1 - (py[:, None] - rows).abs()).clamp(min=0)  # (P, H)
    wx = (1 - (px[:, None] - cols).abs()).clamp(min=0)  # (P, W)
    return torch.einsum('...ij,pi,pj->...p', image, wy, wx)


def conv1x1(conv: torch.nn.Conv2d, x: Tensor) -> Tensor:
    """1x1 convolution of (C, P) columns."""
    return conv.weight[:, :, 0, 0] @ x + conv.bias[:, None]


def transcription(block: DeformableAttention, x: Tensor) -> tuple[Tensor, Tensor]:
    """The reference forward, written out. Returns the output and positions (B, G, Hk, Wk, 2)."""
    b_, c, h, w = x.shape
    g_, nh = block.num_groups, block.num_heads
    cg, d, hg = c // g_, c // nh, nh // g_
    k_size = block.conv_offset[0].kernel_size[0]
    stride = block.conv_offset[0].stride[0]
    outputs, positions = [], []
    for b in range(b_):
        q = conv1x1(block.proj_q, x[b].reshape(c, h * w)).reshape(c, h, w)
        pos_b, sampled = [], []
        for g in range(g_):
            t = F.conv2d(
                q[None, g * cg : (g + 1) * cg],
                block.conv_offset[0].weight,
                block.conv_offset[0].bias,
                stride=stride,
                padding=k_size // 2,
                groups=cg,
            )[0]
            ln = block.conv_offset[1].norm
            mu = t.mean(0, keepdim=True)
            var = t.var(0, unbiased=False, keepdim=True)
            t = (t - mu) / torch.sqrt(var + 1e-5) * ln.weight[:, None, None]
            t = t + ln.bias[:, None, None]
            t = 0.5 * t * (1 + torch.erf(t / math.sqrt(2)))  # exact GELU
            off = torch.einsum(
                'oc,chw->ohw', block.conv_offset[3].weight[:, :, 0, 0], t
            )
            hk, wk = off.shape[1:]
            pos = torch.empty(hk, wk, 2, dtype=x.dtype)
            for i in range(hk):
                for j in range(wk):
                    ry = 2 * (i + 0.5) / (hk - 1) - 1
                    rx = 2 * (j + 0.5) / (wk - 1) - 1
                    pos[i, j, 0] = (off[0, i, j] + ry).clamp(-1, 1)
                    pos[i, j, 1] = (off[1, i, j] + rx).clamp(-1, 1)
            pos_b.append(pos)
            flat = pos.reshape(-1, 2)
            sampled.append(
                tent_sample(x[b, g * cg : (g + 1) * cg], flat[:, 0], flat[:, 1])
            )
        keys_in = torch.cat(sampled)  # (C, Ns), group-major channels
        k = conv1x1(block.proj_k, keys_in)
        v = conv1x1(block.proj_v, keys_in)
        qf = q.reshape(c, h * w)
        heads = []
        for head in range(nh):
            g = head // hg
            flat = pos_b[g].reshape(-1, 2)
            sl = slice(head * d, (head + 1) * d)
            logits = qf[sl].T @ k[sl] / math.sqrt(d)  # (HW, Ns)
            bias = torch.empty_like(logits)
            for m in range(h * w):
                qy = 2 * (m // w) / (h - 1) - 1
                qx = 2 * (m % w) / (w - 1) - 1
                bias[m] = tent_sample(
                    block.rpe_table[head],
                    0.5 * (qy - flat[:, 0]),
                    0.5 * (qx - flat[:, 1]),
                )
            attn = torch.softmax(logits + bias, dim=-1)
            heads.append(v[sl] @ attn.T)  # (d, HW)
        out = conv1x1(block.proj_out, torch.cat(heads))
        outputs.append(out.reshape(c, h, w))
        positions.append(torch.stack(pos_b))
    return torch.stack(outputs), torch.stack(positions)


@pytest.mark.parametrize(
    ('settings', 'size'),
    [(TINY_STRIDED, (5, 6)), (TINY_STRIDED, (8, 7)), (TINY_FLAT, (4, 3))],
)
def test_matches_transcription(settings: dict[str, Any], size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    block = DeformableAttention(**settings).double()
    with torch.no_grad():
        block.rpe_table.normal_()  # a bias that matters
        block.conv_offset[3].weight.mul_(8)  # some positions clamp, some do not
    x = torch.randn(2, settings['channels'], *size, dtype=torch.float64)
    x.requires_grad_(True)
    cotangent = torch.randn(2, settings['channels'], *size, dtype=torch.float64)

    y, pos, _ = block.forward_with_positions(x)
    clamped = pos.abs() == 1
    assert clamped.any()
    assert not clamped.all()
    (y * cotangent).sum().backward()
    grads = {k: p.grad.clone() for k, p in block.named_parameters()}
    grad_x = x.grad.clone()
    block.zero_grad()
    x.grad = None

    y_ref, pos_ref = transcription(block, x)
    (y_ref * cotangent).sum().backward()
    torch.testing.assert_close(pos, pos_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(y, y_ref, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(grad_x, x.grad, rtol=1e-8, atol=1e-10)
    for k, p in block.named_parameters():
        torch.testing.assert_close(grads[k], p.grad, rtol=1e-8, atol=1e-10, msg=k)


@pytest.mark.parametrize(
    ('dtype', 'tol'), [(torch.bfloat16, 0.02), (torch.float16, 0.005)]
)
def test_mixed_precision_close_to_float32(dtype: torch.dtype, tol: float) -> None:
    # float16 is what the GPU configs' precision: 16-mixed uses (the bias mask is
    # cast to the query dtype); CPU autocast runs the same ops in float16 here.
    torch.manual_seed(0)
    block = DeformableAttention(**TINY_STRIDED)
    x = torch.randn(2, 16, 6, 7)
    expected = block(x)
    with torch.autocast('cpu', dtype=dtype):
        got = block(x.to(dtype))
    assert got.dtype == dtype
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.float(), expected, rtol=2.5 * tol, atol=tol)
    with torch.autocast('cpu', dtype=dtype):
        block(x.to(dtype)).float().square().sum().backward()
    assert all(
        torch.isfinite(p.grad).all() for p in block.parameters() if p.grad is not None
    )
