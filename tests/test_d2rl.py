"""D2RL: the UNIT translators' shapes and shared latent, the 4-channel first convolution,
which losses reach which sub-network, and a few iterations plus the cross-modality
evaluation end to end through tools/train_net.py (then tools/generate.py translate)."""

from __future__ import annotations

import pytest
import torch
from conftest import MOBILENET_WEIGHTS, REPO, VI_REID, vi_proxy_opts

import dgnet_plugin  # noqa: F401 (registers the methods)
from dgnet_plugin.config import load_cfg_file
from dgnet_plugin.losses import id_loss, triplet_loss
from dgnet_plugin.methods.d2rl.engine import d2rl_phase, reid_lr_scheduler
from dgnet_plugin.methods.d2rl.meta_arch import D2RLReID, reid_losses, unit_translation_losses
from dgnet_plugin.modeling import build_model
from dgnet_plugin.modeling.generators import UNITTranslator
from dgnet_plugin.utils.events import read_json_lines

TINY = [
    "MODEL.GEN.DIM",
    "4",
    "MODEL.GEN.N_RES",
    "2",
    "MODEL.DIS.DIM",
    "4",
    "MODEL.DIS.NUM_SCALES",
    "1",
    "MODEL.D2RL.FC_DIM",
    "32",
    "MODEL.D2RL.EMBEDDING_DIM",
    "8",
    "INPUT.SIZE_TRAIN",
    "(32, 16)",
    "INPUT.SIZE_TEST",
    "(32, 16)",
    "MODEL.BACKBONE.PRETRAIN_PATH",
    str(MOBILENET_WEIGHTS),
]


@pytest.fixture(scope="module")
def model():
    cfg = load_cfg_file(str(REPO / "configs" / "d2rl_cpu_demo.yml"), TINY)
    torch.manual_seed(0)
    return cfg, build_model(cfg, 5)


def test_unit_translator_shapes_ranges_and_shared_latent():
    g = UNITTranslator(3, 1, dim=4, n_downsample=2, n_res=2, n_shared=1)
    x, y = torch.randn(2, 3, 32, 16), torch.randn(2, 1, 32, 16)
    assert g(x, "a", "b").shape == (2, 1, 32, 16) and g(y, "b", "a").shape == (2, 3, 32, 16)
    assert g(x, "a", "b").abs().max() <= 1  # tanh: [-1, 1]
    assert g.encode(x, "a").shape == (2, 16, 8, 16 // 4)
    # the shared blocks: a loss on domain a's reconstruction reaches the shared encoder and
    # decoder blocks, and neither of domain b's private halves
    g.zero_grad()
    g(x, "a", "a").abs().mean().backward()
    grads = {n: p.grad is not None and p.grad.abs().sum() > 0 for n, p in g.named_parameters()}
    assert all(
        v for n, v in grads.items() if n.startswith(("enc_a", "enc_shared", "dec_shared", "dec_a"))
    )
    assert not any(v for n, v in grads.items() if n.startswith(("enc_b", "dec_b")))
    with pytest.raises(ValueError, match="N_SHARED"):
        UNITTranslator(n_res=1, n_shared=2)


def test_the_fourth_input_channel_starts_as_the_mean_of_the_rgb_filters(model):
    _, m = model
    conv = m.reid_net.backbone.features[0][0]
    assert conv.in_channels == 4
    w = conv.weight.detach()
    assert torch.allclose(w[:, 3], w[:, :3].mean(1))
    # and the RGB filters are the ImageNet ones (not re-initialised)
    state = torch.load(MOBILENET_WEIGHTS, map_location="cpu", weights_only=True)
    first = next(iter(state.values()))
    assert torch.equal(w[:, :3], first)


def _grads(module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_which_losses_reach_which_subnetwork(model):
    cfg, m = model
    m.train()
    x, y = torch.randn(4, 3, 32, 16), torch.randn(4, 1, 32, 16)
    pids = torch.tensor([0, 0, 1, 1])
    # image level: the translators only (the discriminators' grads are zeroed before their step)
    m.zero_grad()
    terms, img = unit_translation_losses(m.gen, m.dis_v, m.dis_i, m.to_gan(x), m.to_gan(y))
    sum(terms.values()).backward()
    assert set(terms) == {"kl", "recon_x", "gan", "cyc_x", "cyc_kl"}
    assert _grads(m.gen) and not _grads(m.reid_net)
    # feature level on the unified images: T_F and, through the generated channels, both
    # translation directions (visible -> IR: enc_a, dec_b; IR -> visible: enc_b, dec_a)
    m.zero_grad()
    _, img = unit_translation_losses(m.gen, m.dis_v, m.dis_i, m.to_gan(x), m.to_gan(y))
    u = torch.cat(
        [m.unified(x, m.from_gan(img["y_fake"])), m.unified(y, m.from_gan(img["x_fake"]))]
    )
    assert u.shape == (8, 4, 32, 16)
    assert torch.equal(u[:4, :3], x) and torch.equal(u[4:, 3:], y)  # real halves kept
    sum(reid_losses(m.reid_net, u, torch.cat([pids, pids]), 0.3).values()).backward()
    assert _grads(m.reid_net)
    # (MODEL.GEN.N_SHARED 0, UNIT's code: no shared blocks; the shared case is tested above)
    assert cfg.MODEL.GEN.N_SHARED == 0 and not list(m.gen.enc_shared.parameters())
    for part in (m.gen.enc_a, m.gen.dec_b, m.gen.enc_b, m.gen.dec_a):
        assert _grads(part)
    assert not _grads(m.dis_v) and not _grads(m.dis_i)
    # detached (MODEL.D2RL.REID_GRAD_TO_GEN False): the re-ID losses stop at T_F
    m.zero_grad()
    u = torch.cat(
        [
            m.unified(x, m.from_gan(img["y_fake"]).detach()),
            m.unified(y, m.from_gan(img["x_fake"]).detach()),
        ]
    )
    sum(reid_losses(m.reid_net, u, torch.cat([pids, pids]), 0.3).values()).backward()
    assert _grads(m.reid_net) and not _grads(m.gen)


def test_eval_forward_unifies_by_channel_count(model):
    _, m = model
    m.eval()
    with torch.no_grad():
        fv = m(torch.randn(2, 3, 32, 16))
        fi = m(torch.randn(2, 1, 32, 16))
        f4 = m(torch.randn(2, 4, 32, 16))
    assert fv.shape == fi.shape == f4.shape == (2, 8)  # the demo tests on FC-128 (EMBEDDING_DIM 8)
    with pytest.raises(ValueError, match="3-channel visible or 1-channel infrared"):
        m(torch.randn(2, 2, 32, 16))


class _TinyBackbone(torch.nn.Module):
    out_channels = 6

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 6, 3, padding=1)

    def forward(self, u):
        return self.conv(u)


def _neck_grads(net, loss) -> dict:
    net.zero_grad()
    loss.backward()
    names = ("backbone", "fc", "embed", "bottleneck", "classifier")
    return {n: _grads(getattr(net, n)) for n in names if hasattr(net, n)}


@pytest.mark.parametrize("neck", ["paper", "bnneck"])
def test_t_f_necks_shapes_and_which_layers_each_loss_reaches(neck):
    torch.manual_seed(0)
    net = D2RLReID(_TinyBackbone(), num_classes=5, fc_dim=16, embed_dim=8, neck=neck).train()
    u, pids = torch.randn(6, 4, 32, 16), torch.tensor([0, 0, 1, 1, 2, 2])
    out = net(u)
    assert out["fc"].shape == (6, 16) and out["embed"].shape == (6, 8)
    assert out["logits"].shape == (6, 5)
    ce = _neck_grads(net, id_loss(net(u)["logits"], pids))
    tri = _neck_grads(net, triplet_loss(net(u)["embed"], pids, 10.0))  # margin: never 0
    if neck == "paper":  # D2RL 3.3: FC-N_p and FC-128 both on the FC-1024 output
        assert "bn" not in out and not hasattr(net, "bottleneck")
        assert net.classifier.in_features == 16 and net.classifier.bias is not None
        assert ce == {"backbone": True, "fc": True, "embed": False, "classifier": True}
        assert tri == {"backbone": True, "fc": True, "embed": True, "classifier": False}
    else:  # BNNeck: CE through the BN of the FC-128 embedding, the triplet before it
        assert out["bn"].shape == (6, 8) and net.classifier.bias is None
        assert not net.bottleneck.bias.requires_grad
        # the classified feature is the normalised embedding itself (no ReLU: negatives kept)
        assert torch.allclose(out["bn"].mean(0), torch.zeros(8), atol=1e-5)
        assert (out["bn"] < 0).any()
        assert all(ce.values())
        assert tri == {
            "backbone": True,
            "fc": True,
            "embed": True,
            "bottleneck": False,
            "classifier": False,
        }
    with pytest.raises(ValueError, match="MODEL.D2RL.NECK"):
        D2RLReID(_TinyBackbone(), 5, neck="bn")


def test_the_default_neck_is_the_papers_and_bn_needs_the_bnneck():
    from dgnet_plugin.config import ConfigError, get_cfg
    from dgnet_plugin.config.validate import validate_config
    from dgnet_plugin.methods.d2rl import METHOD

    cfg = get_cfg("d2rl")
    assert (cfg.MODEL.D2RL.NECK, cfg.MODEL.D2RL.TEST_FEATURE) == ("paper", "fc")
    full = load_cfg_file(str(REPO / "configs" / "d2rl_r50_sysu.yml"))
    assert full.MODEL.D2RL.NECK == "paper"  # the full recipe keeps the paper's head
    demo = load_cfg_file(str(REPO / "configs" / "d2rl_cpu_demo.yml"), TINY, freeze=False)
    for neck, feature, ok in (("paper", "bn", False), ("bnneck", "bn", True), ("x", "fc", False)):
        demo.MODEL.D2RL.NECK, demo.MODEL.D2RL.TEST_FEATURE = neck, feature
        if ok:
            validate_config(demo, METHOD.config_rules)
        else:
            with pytest.raises(ConfigError, match="MODEL.D2RL"):
                validate_config(demo, METHOD.config_rules)
    demo.MODEL.D2RL.NECK, demo.MODEL.D2RL.TEST_FEATURE = "bnneck", "bn"
    m = build_model(demo, 5).eval()
    assert m.feature_parts == (8,)  # EMBEDDING_DIM 8 in TINY
    with torch.no_grad():
        assert m(torch.randn(2, 1, 32, 16)).shape == (2, 8)


def test_phases():
    assert [d2rl_phase(i, 2, 1) for i in range(4)] == ["gen", "gen", "reid", "joint"]
    assert d2rl_phase(0, 0, 0) == "joint"


def test_reid_lr_warms_up_from_the_first_reid_iteration():
    """T_F starts at WARMUP_GEN_ITER (here 4): its LR ramps linearly over WARMUP_ITERS (2)
    from there (a ramp counted from iteration 0 would be over before T_F trains), then
    x REID_GAMMA at SOLVER.STEPS (8)."""
    cfg = load_cfg_file(
        str(REPO / "configs" / "d2rl_cpu_demo.yml"),
        [
            *TINY,
            "MODEL.D2RL.WARMUP_GEN_ITER",
            "4",
            "SOLVER.WARMUP_ITERS",
            "2",
            "SOLVER.STEPS",
            "(8,)",
            "SOLVER.REID_GAMMA",
            "0.1",
        ],
    )
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = reid_lr_scheduler(opt, cfg)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[4:] == pytest.approx([0.5, 1.0, 1.0, 1.0, 0.1, 0.1])


def test_heads_key_names_t_f_layers_only():
    from dgnet_plugin.config import ConfigError
    from dgnet_plugin.config.validate import validate_config
    from dgnet_plugin.methods.d2rl import METHOD

    cfg = load_cfg_file(str(REPO / "configs" / "d2rl_cpu_demo.yml"), TINY)
    validate_config(cfg, METHOD.config_rules)
    cfg.defrost()
    cfg.MODEL.D2RL.HEADS = ("classifier", "backbone")
    with pytest.raises(ConfigError, match="MODEL.D2RL.HEADS"):
        validate_config(cfg, METHOD.config_rules)


@pytest.mark.e2e
def test_d2rl_trains_and_evaluates_through_the_tools(tmp_path):
    import generate
    import train_net

    vi = tmp_path / "vi"
    out = tmp_path / "run"
    opts = [
        *TINY,
        "OUTPUT_DIR",
        str(out),
        "SOLVER.MAX_ITER",
        "3",
        "LOG_PERIOD",
        "1",
        "MODEL.D2RL.WARMUP_GEN_ITER",
        "1",
        "MODEL.D2RL.WARMUP_REID_ITER",
        "1",
        *vi_proxy_opts(vi, f"('sysu_mm01@{vi}/SYSU-MM01-samples', 'regdb@{vi}/RegDB-samples')"),
        "TEST.IMS_PER_BATCH",
        "64",
        "VIS.PERIOD",
        "2",
    ]
    cfg = str(REPO / "configs" / "d2rl_cpu_demo.yml")
    assert train_net.cli(["--config-file", cfg, *opts]) == 0
    recs = read_json_lines(str(out / "metrics.json"))
    losses = {r["iteration"]: r for r in recs if "time" in r}
    assert "recon_x" in losses[1] and "id" not in losses[1]  # T_I warm-up
    assert "id" in losses[2] and "recon_x" not in losses[2]  # T_F warm-up
    assert {"id", "triplet", "recon_x", "gan", "dis_adv"} <= set(losses[3])  # joint
    final = [r for r in recs if "iteration" in r and any("Rank-1" in k for k in r)][-1]
    for key in (
        "sysu_mm01@SYSU-MM01-samples all-search single-shot/Rank-1",
        "sysu_mm01@SYSU-MM01-samples indoor-search multi-shot/mAP_std",
        "regdb@RegDB-samples visible->thermal/mINP",
        "regdb@RegDB-samples thermal->visible/Rank-1",
    ):
        assert 0 <= final[key] <= 100, key
    assert (out / "images" / "translate_00000002.jpg").is_file()
    assert (out / "images" / "translate_00000003.jpg").is_file()
    assert "(reported)" in (out / "log.txt").read_text()
    # translation of a folder of real infrared crops with the checkpoint
    folder = tmp_path / "ir"
    folder.mkdir()
    for f in ("0001_c3_0.png", "0002_c6_1.png"):
        (folder / f).symlink_to(VI_REID / "sysu_mm01_example" / f)
    res = generate.main(
        generate.build_parser().parse_args(
            [
                "translate",
                "--config-file",
                str(out / "config.yaml"),
                "--weights",
                str(out / "model_final.pth"),
                "--device",
                "cpu",
                "--images",
                str(folder),
                "--direction",
                "i2v",
                "--output-dir",
                str(tmp_path / "tr"),
            ]
        )
    )
    assert len(res["written"]) == 2 and (tmp_path / "tr" / "grid_i2v.jpg").is_file()
    from PIL import Image

    assert Image.open(res["written"][0]).mode == "RGB"  # infrared -> visible: 3 channels
