"""Output shapes of every module, at 256x128 (official) and at the CPU-demo size."""

import pytest
import torch
from conftest import MOBILENET_WEIGHTS

from dgnet_plugin.config import get_cfg
from dgnet_plugin.modeling import build_model
from dgnet_plugin.modeling.backbones import BACKBONE_REGISTRY, build_backbone
from dgnet_plugin.modeling.backbones.build import PretrainedWeightsError
from dgnet_plugin.modeling.blocks import ASPP, adaptive_instance_norm
from dgnet_plugin.modeling.discriminators import DISCRIMINATOR_REGISTRY
from dgnet_plugin.modeling.generators import GENERATOR_REGISTRY
from dgnet_plugin.modeling.heads import HEAD_REGISTRY
from dgnet_plugin.modeling.meta_arch import META_ARCH_REGISTRY


def cfg_for(backbone="resnet50", size=(256, 128), **over):
    c = get_cfg("dgnet")
    c.MODEL.BACKBONE.NAME = backbone
    c.MODEL.BACKBONE.PRETRAIN = False
    c.INPUT.SIZE_TRAIN = size
    for k, v in over.items():
        node = c
        *path, last = k.split("__")
        for p in path:
            node = node[p]
        node[last] = v
    return c


def test_registries_hold_the_parts():
    assert {"resnet50", "mobilenetv2"} <= {k for k, _ in BACKBONE_REGISTRY}
    assert "AdaINGen" in GENERATOR_REGISTRY and "MultiScaleDiscriminator" in DISCRIMINATOR_REGISTRY
    assert "EmbeddingHead" in HEAD_REGISTRY
    assert {"DGNet", "IDEBaseline"} <= {k for k, _ in META_ARCH_REGISTRY}


@torch.no_grad()
def test_dgnet_shapes_at_256x128_resnet50():
    m = build_model(cfg_for(), 751).eval()
    x = torch.randn(2, 3, 256, 128)
    r = m.reid(x, return_all=True)
    assert r["code"].shape == (2, 8192)  # 2048 x 4 x 1 appearance code
    assert [t.shape for t in r["logits"]] == [(2, 751), (2, 751)]
    assert [t.shape for t in r["emb"]] == [(2, 512), (2, 512)]
    assert m.reid(x).shape == (2, 1024)
    s = m.gen.encode(x)
    assert s.shape == (2, 128, 64, 32)  # the paper's 128x64x32 structure code
    assert m.gen.decode(s, r["code"]).shape == (2, 3, 256, 128)
    assert [o.shape[-2:] for o in m.dis(x)] == [(64, 32), (32, 16), (16, 8)]
    params = m.gen.adain_params(r["code"])
    assert len(params) == 4 and all(p.shape == (2, 128) for blk in params for p in blk)


@torch.no_grad()
def test_dgnet_shapes_at_demo_size_mobilenetv2():
    c = cfg_for(
        "mobilenetv2",
        (64, 32),
        MODEL__GEN__DIM=8,
        MODEL__GEN__ASPP_DILATIONS=(1, 2, 3),
        MODEL__DIS__DIM=16,
    )
    m = build_model(c, 10).eval()
    x = torch.randn(3, 3, 64, 32)
    r = m.reid(x, return_all=True)
    assert r["code"].shape == (3, 1280 * 4)
    s = m.gen.encode(x)
    assert s.shape == (3, 64, 16, 8)
    assert m.gen.decode(s, r["code"]).shape == (3, 3, 64, 32)
    assert [o.shape[-2:] for o in m.dis(x)] == [(16, 8), (8, 4), (4, 2)]


@torch.no_grad()
def test_teacher_shapes_and_modes():
    c = cfg_for(
        MODEL__META_ARCHITECTURE="IDEBaseline",
        MODEL__BACKBONE__LAST_STRIDE=2,
        MODEL__HEADS__POOL="avg",
    )
    t = build_model(c, 751)
    x = torch.randn(2, 3, 256, 128)
    assert t.backbone(x).shape == (2, 2048, 8, 4)
    assert t.train()(x).shape == (2, 751)
    assert t.eval()(x).shape == (2, 512)
    assert t.reid is t


def test_adain_params_go_through_forward_not_module_state():
    """DDP-safety: decoding leaves no per-sample state on any module."""
    m = build_model(cfg_for("mobilenetv2", (64, 32), MODEL__GEN__ASPP_DILATIONS=(1, 2, 3)), 5)
    before = {k: v.clone() for k, v in m.gen.state_dict().items()}
    attrs_before = {n: set(vars(mod)) for n, mod in m.gen.named_modules()}
    s = m.gen.encode(torch.randn(2, 3, 64, 32))
    m.gen.decode(s, torch.randn(2, m.reid.code_dim))
    after = m.gen.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert attrs_before == {n: set(vars(mod)) for n, mod in m.gen.named_modules()}
    # and different appearance codes for the same structure give different images
    f = torch.randn(2, m.reid.code_dim)
    out = m.gen.decode(s[:1].expand(2, -1, -1, -1), f)
    assert not torch.allclose(out[0], out[1])


def test_adaptive_instance_norm_by_hand():
    x = torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]])  # N=1, C=2, 1x2
    g, b = torch.tensor([[2.0, 1.0]]), torch.tensor([[0.5, -1.0]])
    y = adaptive_instance_norm(x, g, b, eps=0.0)
    assert torch.allclose(y[0, 0, 0], torch.tensor([-1.5, 2.5]))
    assert torch.allclose(y[0, 1, 0], torch.tensor([-1.0, -1.0]))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        adaptive_instance_norm(x, g[:, :1], b)


def test_aspp_too_small_map_is_a_clear_error():
    with pytest.raises(ValueError, match="ASPP_DILATIONS"):
        ASPP(8, 4, 16, (3, 6, 9))(torch.randn(1, 8, 16, 8))


def test_mobilenetv2_loads_the_shared_imagenet_weights():
    c = cfg_for("mobilenetv2")
    c.MODEL.BACKBONE.PRETRAIN = True
    c.MODEL.BACKBONE.PRETRAIN_PATH = str(MOBILENET_WEIGHTS)
    bb = build_backbone(c)
    raw = list(torch.load(MOBILENET_WEIGHTS, map_location="cpu", weights_only=True).values())
    mine = list(bb.features.state_dict().values())
    assert len(raw) == len(mine) == 312
    assert all(torch.equal(a, b) for a, b in zip(raw, mine))


def test_missing_pretrain_path_and_offline_download_are_clear_errors(monkeypatch):
    c = cfg_for()
    c.MODEL.BACKBONE.PRETRAIN = True
    c.MODEL.BACKBONE.PRETRAIN_PATH = "/nonexistent/r50.pth"
    with pytest.raises(FileNotFoundError, match="PRETRAIN_PATH"):
        build_backbone(c)
    import torchvision

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(
        torchvision.models.ResNet50_Weights.IMAGENET1K_V1.__class__, "get_state_dict", offline
    )
    c.MODEL.BACKBONE.PRETRAIN_PATH = ""
    with pytest.raises(PretrainedWeightsError, match="PRETRAIN_PATH"):
        build_backbone(c)


def test_unknown_backbone_is_a_config_error():
    from dgnet_plugin.config import ConfigError

    with pytest.raises(ConfigError, match="MODEL.BACKBONE.NAME 'resnet51'.*mobilenetv2"):
        build_backbone(cfg_for("resnet51"))


@pytest.mark.parametrize("name", ["resnet50", "mobilenetv2"])
@pytest.mark.parametrize("channels", [1, 3, 4])
@torch.no_grad()
def test_backbones_take_1_3_4_channels(name, channels):
    c = cfg_for(name, MODEL__BACKBONE__IN_CHANNELS=channels)
    bb = build_backbone(c).eval()
    out = bb(torch.randn(1, channels, 64, 32))
    assert out.shape == (1, bb.out_channels, 4, 2)


def test_three_channels_keep_the_torchvision_modules_and_keys():
    torch.manual_seed(0)
    plain = build_backbone(cfg_for("resnet50"))
    torch.manual_seed(0)
    explicit = build_backbone(cfg_for("resnet50", MODEL__BACKBONE__IN_CHANNELS=3))
    a, b = plain.state_dict(), explicit.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    four = build_backbone(cfg_for("resnet50", MODEL__BACKBONE__IN_CHANNELS=4)).state_dict()
    assert list(four) == list(a) and four["conv1.weight"].shape == (64, 4, 7, 7)


def test_extra_channels_follow_the_mean_of_the_rgb_filters():
    """The shared ImageNet MobileNetV2: C=1 is the mean of the RGB filters; C=4 keeps R, G, B
    and the fourth channel is their mean (checked on one filter element by hand too)."""
    raw = next(iter(torch.load(MOBILENET_WEIGHTS, map_location="cpu", weights_only=True).values()))
    assert raw.shape == (32, 3, 3, 3)
    by_c = {}
    for channels in (1, 4):
        c = cfg_for("mobilenetv2", MODEL__BACKBONE__IN_CHANNELS=channels)
        c.MODEL.BACKBONE.PRETRAIN = True
        c.MODEL.BACKBONE.PRETRAIN_PATH = str(MOBILENET_WEIGHTS)
        by_c[channels] = build_backbone(c).features[0][0].weight.detach()
    one, four = by_c[1], by_c[4]
    assert one.shape == (32, 1, 3, 3) and four.shape == (32, 4, 3, 3)
    hand = (raw[5, 0, 1, 2] + raw[5, 1, 1, 2] + raw[5, 2, 1, 2]) / 3
    assert torch.isclose(one[5, 0, 1, 2], hand) and torch.isclose(four[5, 3, 1, 2], hand)
    assert torch.equal(four[:, :3], raw)
    assert torch.allclose(four[:, 3], raw.mean(1)) and torch.allclose(one[:, 0], raw.mean(1))


@pytest.mark.parametrize("channels", [1, 4])
@torch.no_grad()
def test_discriminator_takes_other_channel_counts(channels):
    from dgnet_plugin.modeling.discriminators import build_discriminator

    d = build_discriminator(
        cfg_for("mobilenetv2", MODEL__DIS__NAME="MultiScaleDiscriminator"), channels
    )
    outs = d(torch.randn(2, channels, 64, 32))
    assert [tuple(o.shape) for o in outs] == [(2, 1, 16, 8), (2, 1, 8, 4), (2, 1, 4, 2)]


def test_embedding_head_without_bottleneck_and_with_neck_relu():
    """``EMBEDDING_DIM 0``: pooled feature -> dropout -> classifier (LSRO's head); ``NECK_RELU``:
    the classifier sees ReLU(BN(fc(x))) while the embedding stays the BN output (CamStyle)."""
    from dgnet_plugin.modeling.heads.embedding import EmbeddingHead

    torch.manual_seed(0)
    x = torch.randn(6, 16)
    bare = EmbeddingHead(16, 5, embed_dim=0, dropout=0.0).eval()
    logits, emb = bare(x)
    assert torch.equal(emb, x) and logits.shape == (6, 5)
    torch.testing.assert_close(logits, x @ bare.classifier.weight.T + bare.classifier.bias)
    relu = EmbeddingHead(16, 5, embed_dim=8, dropout=0.0, neck_relu=True).eval()
    logits, emb = relu(x)
    assert (emb < 0).any()  # the embedding is taken before the ReLU
    want = emb.clamp(min=0) @ relu.classifier.weight.T + relu.classifier.bias
    torch.testing.assert_close(logits, want)


def test_ide_test_feature_pool_returns_the_pooled_backbone_feature():
    from dgnet_plugin.errors import ConfigError
    from dgnet_plugin.methods.ide.meta_arch import IDEBaseline
    from dgnet_plugin.modeling.heads import global_pool

    class Body(torch.nn.Module):
        out_channels = 12

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 12, 3)

        def forward(self, x):
            return self.conv(x)

    model = IDEBaseline(Body(), 5, embed_dim=4, pool="avg", test_feature="pool").eval()
    x = torch.randn(2, 3, 8, 6)
    torch.testing.assert_close(model(x), global_pool(model.backbone(x), "avg"))
    assert model.feature_parts == (12,)
    with pytest.raises(ConfigError, match="MODEL.HEADS.TEST_FEATURE"):
        IDEBaseline(Body(), 5, test_feature="pool5")
