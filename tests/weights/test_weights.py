import copy
from pathlib import Path

import pytest
import torch
import torchgeo.models
import torchvision.transforms.v2 as T
from torchgeo.models import get_model, get_model_weights, get_weight, list_models
from torchgeo.models.api import _model_weights

import torchgeo_decur
from torchgeo_decur.models import share_deformable_attention
from torchgeo_decur.weights import BUILDERS, HF_URL, WEIGHTS, DeCURWeightsEnum

from ..models.released import (
    README_FILES,
    SIZE,
    SIZES,
    SMALL_INPUT_KWARGS,
    assert_features_match,
    reference_encoder,
    reference_pair,
    write_backbone,
    write_group,
    write_joint,
)

MEMBERS: list[DeCURWeightsEnum] = [m for enum in WEIGHTS for m in enum]
JOINT = [m for m in MEMBERS if m.is_joint]


def member_id(member: object) -> str:
    return str(member).replace('_Weights.', '.')


def test_24_members_one_per_released_file() -> None:
    assert len(MEMBERS) == 24
    assert sorted(m.meta['file'] for m in MEMBERS) == sorted(README_FILES)
    assert len(JOINT) == 8


def test_names_do_not_clash_with_torchgeo() -> None:
    ours = {enum.__name__ for enum in WEIGHTS}
    assert not ours & set(dir(torchgeo.models))
    torchgeo_members = {
        member.name
        for key, enum in _model_weights.items()
        if isinstance(key, str) and enum not in WEIGHTS
        for member in enum
    }
    for member in MEMBERS:
        assert member.name.endswith('_DECUR')
        assert member.name not in torchgeo_members


@pytest.mark.parametrize('member', MEMBERS, ids=member_id)
def test_member_meta_and_registration(member: DeCURWeightsEnum) -> None:
    assert get_weight(str(member)) is member
    assert member.url == HF_URL + member.meta['file']
    assert member.url.startswith('https://huggingface.co/wangyi111/DeCUR/resolve/main/')
    meta = member.meta
    assert meta['ssl_method'] == 'decur'
    assert meta['publication'] == 'https://arxiv.org/abs/2309.05300'
    assert meta['model'] in list_models()
    assert len(meta['bands']) == meta['in_chans']
    for i, modality in enumerate(member.modalities, start=1):
        assert member.in_chans_for(modality) == len(member.bands_for(i))
    if member.is_joint:
        assert isinstance(meta['modality'], tuple)
        assert len(meta['modality']) == 2
        assert meta['bands'] == member.bands_for(1)
        assert set(meta['in_chans_per_modality']) == set(meta['modality'])
    else:
        assert isinstance(meta['modality'], str)


def test_builders_registered() -> None:
    for name, (builder, enum) in BUILDERS.items():
        assert get_model_weights(name) is enum
        assert get_model_weights(builder) is enum
        assert name in list_models()
    # Importing twice does not register twice or replace torchgeo's own builders.
    torchgeo_decur.weights.registry.register_with_torchgeo()
    assert get_model_weights('resnet50') is torchgeo.models.ResNet50_Weights


#: Dummy raw input per modality: (channels, value range in physical units).
RAW = {
    's1': (2, (-35.0, 5.0)),
    's2': (13, (0.0, 12000.0)),
    'rgb': (3, (0.0, 255.0)),
    'dem': (1, (30.0, 400.0)),
    'hha': (3, (0.0, 255.0)),
}


@pytest.mark.parametrize('member', MEMBERS, ids=member_id)
def test_transforms_give_checkpoint_inputs(member: DeCURWeightsEnum) -> None:
    g = torch.Generator().manual_seed(0)
    for i, modality in enumerate(member.modalities, start=1):
        channels, (low, high) = RAW[modality]
        x = low + (high - low) * torch.rand(2, channels, 40, 48, generator=g)
        y = member.transforms_for(modality)(x)
        assert y.dtype == torch.float32
        assert y.shape[:2] == (2, member.in_chans_for(i))
        if member.meta['dataset'] == 'SSL4EO-S12':
            # Reference evaluation geometry: short side 256, centre crop 224.
            assert y.shape[-2:] == (224, 224)
        else:
            assert y.shape[-2:] == (40, 48)
        if modality == 'dem':
            assert torch.equal(y[:, 0], y[:, 2])
        if member.meta['dataset'] == 'SUN RGB-D':
            # x/255 then ImageNet mean/std by channel index.
            assert y.min() >= (0 - 0.485) / 0.229 - 1e-5
            assert y.max() <= (1 - 0.406) / 0.225 + 1e-5
            assert y.min() < -1.5
            assert y.max() > 1.5
        else:
            assert y.min() >= 0
            assert y.max() <= 1
            assert y.max() - y.min() > 0.5
    if not member.is_joint:
        assert member.transforms is member.transforms_for(None)


def test_ssl4eo_scaling_constants() -> None:
    # Main pipeline: mean ± 2 std of the SSL4EO-S12 statistics map to 0 and 1.
    member = torchgeo_decur.DeCURViTSmall16_Weights.SENTINEL1_GRD_SSL4EO_DECUR
    vv_vh = torch.tensor([-23.0624, -32.0154]).view(2, 1, 1).expand(2, 256, 256)
    assert torch.allclose(member.transforms(vv_vh), torch.zeros(2, 224, 224), atol=1e-4)
    # Old S2 pipeline (plain RN50): DN / 10000.
    member = torchgeo_decur.DeCURResNet50_Weights.SENTINEL2_L1C_SSL4EO_DECUR
    dn = torch.full((13, 256, 256), 2500.0)
    assert torch.allclose(member.transforms(dn), torch.full((13, 224, 224), 0.25))


def test_dem_transform_needs_one_channel() -> None:
    member = torchgeo_decur.DeCURResNet50_Weights.DEM_GEONRW_DECUR
    # meta['bands'] are the encoder's three channels; the transform makes them
    # from the raw DEM and says so when given three.
    assert member.meta['bands'] == ('DEM', 'DEM', 'DEM')
    assert member.transforms(torch.rand(2, 1, 8, 8) * 100).shape == (2, 3, 8, 8)
    with pytest.raises(
        ValueError,
        match=r'expected one channel, got shape \(3, 8, 8\); pass the single raw '
        r'DEM channel in metres',
    ):
        member.transforms(torch.rand(3, 8, 8))


#: Members grouped by file set: the joint member, then its backbone-only members.
GROUPS = [
    [joint]
    + [
        m
        for m in type(joint)  # type: ignore[attr-defined]
        if not m.is_joint and m.meta['dataset'] == joint.meta['dataset']
    ]
    for joint in JOINT
]


def test_groups_cover_every_member() -> None:
    assert sorted(m.meta['file'] for g in GROUPS for m in g) == sorted(README_FILES)
    assert all(len(g) == 3 for g in GROUPS)


#: Key totals of the released files (the reference model's key counts): joint files, and
#: backbone-only files (RDA: 318 ResNet keys + 2 x 14 attention-block keys).
JOINT_TOTALS = {
    'resnet50': 665,
    'resnet50_rda': 721,
    'vit_small_patch16_224': 329,
    'mit_b2': 697,
    'mit_b5': 2137,
}
BACKBONE_TOTALS = {
    'resnet50': 318,
    'resnet50_rda': 346,
    'vit_small_patch16_224': 150,
    'mit_b2': 332,
    'mit_b5': 1052,
}


@pytest.mark.usefixtures('fast_init')
@pytest.mark.parametrize('group', GROUPS, ids=lambda g: member_id(g[0]))
def test_get_model_gives_reference_features(
    group: list[DeCURWeightsEnum], hub: Path
) -> None:
    model = group[0].meta['model']
    kwargs = SMALL_INPUT_KWARGS.get(model, {})
    size = SIZES.get(model, SIZE)
    cases = write_group(group, hub)
    # The stand-in files have the documented layouts' key totals.
    for member in group:
        raw = member.get_raw_state_dict()
        totals = JOINT_TOTALS if member.is_joint else BACKBONE_TOTALS
        assert len(raw) == totals[model], member
    for member, position, reference in cases:
        if model == 'mit_b5' and not member.is_joint:
            # Same code path as MiT-B2's backbone files; spare two big builds and
            # compare the loaded weights exactly instead.
            state = member.get_state_dict()
            expected_state = reference.state_dict()
            assert set(state) == {
                k for k in expected_state if not k.startswith('head.')
            }
            assert all(torch.equal(v, expected_state[k]) for k, v in state.items())
            continue
        x = torch.rand(1, member.in_chans_for(position), size, size)
        with torch.no_grad():
            if model.startswith('mit_'):
                expected = reference.forward_stages(x)[-1].mean(dim=(2, 3))
            else:
                expected = reference(x)
        if position == 1:
            # torchgeo's own API, with the member.
            encoder = get_model(model, weights=member, num_classes=0, **kwargs)
        else:
            # Modality 2 of a joint file, by the member's name.
            encoder = get_model(
                f'decur_{model}',
                weights=str(member),
                modality=position,
                num_classes=0,
                **kwargs,
            )
        with torch.no_grad():
            assert_features_match(encoder.eval()(x), expected)
        if model == 'mit_b2' and member.is_joint:
            # DeCUR's 2048-d MiT head loads when asked for (B5: same code path).
            with_head = get_model(
                model, weights=member, modality=position, num_classes=2048
            )
            with torch.no_grad():
                assert_features_match(with_head.eval()(x), reference(x))


def test_rda_pretraining_semantics(hub: Path) -> None:
    member = torchgeo_decur.DeCURResNet50RDA_Weights.SENTINEL1_SENTINEL2_SSL4EO_DECUR
    first, second = reference_pair(member)
    write_joint(member, hub, [first, second])
    # The pretraining forward ran modality 2 through modality 1's blocks.
    expected_model = copy.deepcopy(second)
    share_deformable_attention(first, expected_model)
    encoder = get_model(
        'resnet50_rda',
        weights=member,
        modality=2,
        rda_semantics='pretraining',
        num_classes=0,
    )
    x = torch.rand(1, member.in_chans_for(2), 48, 48)
    with torch.no_grad():
        expected = expected_model(x)
        assert_features_match(encoder.eval()(x), expected)
        transfer = get_model('resnet50_rda', weights=member, modality=2, num_classes=0)
        assert (transfer.eval()(x) - expected).abs().max() > 1e-3


@pytest.mark.usefixtures('fast_init')
def test_joint_member_parts(hub: Path) -> None:
    member = torchgeo_decur.DeCURViTSmall16_Weights.RGB_DEM_GEONRW_DECUR
    write_joint(member, hub, reference_pair(member))
    backbones, projectors = member.get_joint_state_dicts()
    assert list(backbones) == ['rgb', 'dem']
    assert len(backbones['dem']) == 150
    assert projectors['dem']['0.weight'].shape == (8192, 384)
    raw = member.get_raw_state_dict()
    assert 'module.bn.running_mean' in raw
    assert torch.equal(
        member.get_state_dict(modality='dem')['patch_embed.proj.weight'],
        raw['module.backbone_2.patch_embed.proj.weight'],
    )
    with pytest.raises(ValueError, match="modality='s2' is none of them"):
        member.get_state_dict(modality='s2')
    with pytest.raises(ValueError, match='weights_only=True'):
        member.get_state_dict(weights_only=False)


def test_member_file_with_wrong_layout_is_an_error(hub: Path) -> None:
    member = torchgeo_decur.DeCURResNet50_Weights.RGB_DEM_GEONRW_DECUR
    torch.save({'conv1.weight': torch.zeros(64, 3, 7, 7)}, hub / member.meta['file'])
    with pytest.raises(ValueError, match='should hold both encoders'):
        member.get_raw_state_dict()


def test_wrong_architecture_or_channels_are_errors(hub: Path) -> None:
    member = torchgeo_decur.DeCURResNet50_Weights.SENTINEL1_GRD_SSL4EO_DECUR
    write_backbone(member, hub, reference_encoder('resnet50', 2, seed=1), 1)
    with pytest.raises(ValueError, match="'resnet50' weights, not 'mit_b2'"):
        get_model('mit_b2', weights=member)
    with pytest.raises(ValueError, match='in_chans=3 does not match the 2 input'):
        get_model('decur_resnet50', weights=member, in_chans=3)


def test_new_classifier_head_is_allowed(hub: Path) -> None:
    member = torchgeo_decur.DeCURResNet50_Weights.RGB_GEONRW_DECUR
    reference = reference_encoder('resnet50', 3, seed=2)
    write_backbone(member, hub, reference, 1)
    model = get_model('decur_resnet50', weights=member, num_classes=7).eval()
    assert model.fc.out_features == 7
    assert torch.equal(model.conv1.weight, reference.conv1.weight)


@pytest.mark.usefixtures('fast_init')
def test_local_files_load_without_the_hub(tmp_path: Path) -> None:
    encoder = reference_encoder('vit_small_patch16_224', 13, seed=3)
    path = tmp_path / 'ms.pth'
    state = {f'module.{k}': v for k, v in encoder.state_dict().items()}
    torch.save({'model': state}, path)
    loaded = get_model(
        'decur_vit_small_patch16_224',
        weights=str(path),
        num_classes=0,
        dynamic_img_size=True,
    )
    assert loaded.patch_embed.proj.in_channels == 13
    x = torch.rand(1, 13, SIZE, SIZE)
    with torch.no_grad():
        assert_features_match(loaded.eval()(x), encoder(x))


def test_docs_table_documents_every_member() -> None:
    page = Path(__file__).parents[2] / 'docs' / 'user_guide' / 'weights.md'
    section = page.read_text().split('## Input scaling per checkpoint')[1]
    section = section.split('\n## ')[0]
    rows = [line for line in section.splitlines() if line.startswith('| `DeCUR')]
    assert len(rows) == 24
    for member in MEMBERS:
        (row,) = [r for r in rows if r.startswith(f'| `{member}`')]
        assert member.meta['file'] in row
        assert member.url in row


@pytest.mark.usefixtures('fast_init')
@pytest.mark.parametrize(
    ('member', 'drop', 'extra', 'stem'),
    [
        (
            torchgeo_decur.DeCURResNet50_Weights.SENTINEL1_GRD_SSL4EO_DECUR,
            'layer4.2.bn3.weight',
            'layer5.0.conv1.weight',
            'conv1.weight',
        ),
        (
            torchgeo_decur.DeCURViTSmall16_Weights.RGB_GEONRW_DECUR,
            'blocks.11.mlp.fc2.bias',
            'blocks.12.norm1.weight',
            'patch_embed.proj.weight',
        ),
    ],
    ids=['resnet50', 'vit_small_patch16_224'],
)
def test_malformed_member_file_is_a_clear_error_in_torchgeo_builders(
    member: DeCURWeightsEnum, drop: str, extra: str, stem: str, hub: Path
) -> None:
    model = member.meta['model']
    state = reference_encoder(model, member.meta['in_chans'], seed=4).state_dict()
    path = hub / member.meta['file']
    torch.save(state, path)
    # The well-formed file passes the check (and a new classifier head is fine).
    assert get_model(model, weights=member, num_classes=5) is not None
    # torchgeo's own builder (get_model(meta['model'])) only asserts, with no
    # message, on missing or unexpected keys; the member names the problem.
    broken = {k: v for k, v in state.items() if k != drop}
    broken[extra] = torch.zeros(4)
    torch.save(broken, path)
    with pytest.raises(ValueError, match='missing keys') as error:
        get_model(model, weights=member, num_classes=0)
    message = str(error.value)
    assert f'{model} with {member.meta["in_chans"]} input channels' in message
    assert member.meta['file'] in message
    assert f'missing keys: {drop}; unexpected keys: {extra}' in message
    # A stem for another channel count.
    broken[stem] = torch.zeros(*state[stem].shape[:1], 5, *state[stem].shape[2:])
    torch.save(broken, path)
    with pytest.raises(ValueError, match=f'shape mismatches: {stem}: checkpoint '):
        get_model(model, weights=member, num_classes=0)
    assert set(member.expected_shapes()) == set(state)


@pytest.mark.usefixtures('fast_init')
def test_geonrw_vit_members_and_250_px_tiles(hub: Path) -> None:
    # What the ViT-S/16 enum docstring and the README say about native tiles.
    member = torchgeo_decur.DeCURViTSmall16_Weights.RGB_GEONRW_DECUR
    write_backbone(member, hub, reference_encoder(member.meta['model'], 3, 5), 1)
    tile = member.transforms(torch.rand(1, 3, 250, 250) * 255)
    assert tile.shape == (1, 3, 250, 250)  # the transform keeps the size
    encoder = get_model(member.meta['model'], weights=member, num_classes=0).eval()
    with torch.no_grad():
        with pytest.raises(
            AssertionError, match=r"\(250\) doesn't match model \(224\)"
        ):
            encoder(tile)
        assert encoder(T.CenterCrop(224)(tile)).shape == (1, 384)
        dynamic = get_model(
            member.meta['model'],
            weights=member,
            num_classes=0,
            dynamic_img_size=True,
            dynamic_img_pad=True,
        ).eval()
        assert dynamic(tile).shape == (1, 384)
        padless = get_model(
            member.meta['model'], weights=member, num_classes=0, dynamic_img_size=True
        ).eval()
        with pytest.raises(AssertionError, match='divisible by patch size'):
            padless(tile)
