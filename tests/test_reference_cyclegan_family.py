"""Reference, update-order and recipe tests of CamStyle, SPGAN and PTGAN against their released
code (zhunzhong07/CamStyle with its CycleGAN-for-CamStyle/ folder; Simon4Yan/
Learning-via-Translation: SPGAN/ and the Caffe IDE stage) and, for PTGAN (no released code),
its paper. Each reference test writes the released formula out here, on small fixed tensors."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO
from torch import nn

import dgnet_plugin  # noqa: F401
from dgnet_plugin.config import load_cfg_file
from dgnet_plugin.engine.precision import PhaseUpdater


# ----------------------------------------------------------------------------- helpers
class TinyReID(nn.Module):
    """Flat input -> Linear -> BatchNorm1d -> ReLU -> Linear: logits in training mode."""

    def __init__(self, d_in=6, k=4):
        super().__init__()
        self.fc = nn.Linear(d_in, 8)
        self.bn = nn.BatchNorm1d(8)
        self.classifier = nn.Linear(8, k)
        self.forwards = 0

    def forward(self, x):
        self.forwards += 1
        return self.classifier(F.relu(self.bn(self.fc(x))))


def bare_engine(cls, cfg, model, optimizers):
    """An engine of class ``cls`` without its data: the attributes ``run_step`` reads."""
    eng = object.__new__(cls)
    eng.cfg, eng.model, eng.optimizers = cfg, model, optimizers
    eng.amp = PhaseUpdater("off", "cpu")
    eng.device = torch.device("cpu")
    eng.to_device = lambda batch: batch
    return eng


def cfg_of(config: str, *opts):
    return load_cfg_file(str(REPO / "configs" / config), list(opts), freeze=False)


K = 4
torch.manual_seed(0)
REAL_X, GEN_X = torch.randn(5, 6), torch.randn(3, 6)
REAL_Y, GEN_Y = torch.tensor([0, 1, 2, 3, 1]), torch.tensor([2, 0, 3])


def mixed_batch():
    # the generated images interleaved with the real ones, as a ratio sampler may draw them
    order = torch.tensor([0, 5, 1, 2, 6, 3, 7, 4])
    x = torch.cat([REAL_X, GEN_X])[order]
    y = torch.cat([REAL_Y, GEN_Y])[order]
    g = torch.tensor([False] * 5 + [True] * 3)[order]
    return {"img": x, "pid": y, "generated": g}


def camstyle_reference_loss(model):
    """zhunzhong07/CamStyle, reid/trainers.py, CamStyleTrainer._forward and _lsr_loss: the
    real batch and the CamStyle batch through two forward passes; loss =
    CrossEntropyLoss(outputs, targets) + mean_n(-sum_k onehot_lsr(n, k) log softmax(n, k)),
    onehot_lsr = 0.9 one-hot + 0.1 / K (scatter_(1, t, 0.9).add_(0.1 / num_class))."""
    outputs = model(REAL_X)
    camstyle_outputs = model(GEN_X)
    ce = F.cross_entropy(outputs, REAL_Y)
    t = torch.zeros(3, K).scatter_(1, GEN_Y[:, None], 0.9).add_(0.1 / K)
    lsr = (-(t * F.log_softmax(camstyle_outputs, 1)).sum(1)).mean(0)
    return ce + lsr


# ----------------------------------------------------------------------------- CamStyle
def test_camstyle_loss_is_ce_real_plus_lsr_transferred_each_over_its_stream():
    from dgnet_plugin.methods.camstyle import CamStyleEngine

    cfg = cfg_of("camstyle_r50.yml")
    assert cfg.GENERATED.SEPARATE_FORWARD
    torch.manual_seed(1)
    model = TinyReID(k=K).train()
    ref_model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    eng = bare_engine(CamStyleEngine, cfg, model, {"model": opt})
    eng.separate_forward, eng.data = True, iter([mixed_batch()])
    got = eng.run_step(0)["id"]
    want = camstyle_reference_loss(ref_model)
    torch.testing.assert_close(got, want.detach(), rtol=1e-5, atol=1e-7)
    # the gradients are those of the released loss
    want.backward()
    for (name, p), q in zip(model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7, msg=name)


def test_camstyle_runs_two_forwards_per_step_and_bn_statistics_per_stream():
    """Update order: two forward passes per step (real, then transferred), so the BN running
    statistics are those of two sequential updates on each stream; the single-forward mode
    (LSRO's) runs one forward on the mixed batch and gives other statistics."""
    from dgnet_plugin.methods.camstyle import CamStyleEngine

    cfg = cfg_of("camstyle_r50.yml")
    stats = {}
    for separate in (True, False):
        torch.manual_seed(1)
        model = TinyReID(k=K).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        eng = bare_engine(CamStyleEngine, cfg, model, {"model": opt})
        eng.separate_forward, eng.data = separate, iter([mixed_batch()] * 3)
        for it in range(3):
            eng.run_step(it)
        assert model.forwards == (6 if separate else 3)
        stats[separate] = (model.bn.running_mean.clone(), model.bn.num_batches_tracked.item())
    torch.manual_seed(1)
    ref = TinyReID(k=K).train()
    with torch.no_grad():
        for _ in range(3):
            ref(REAL_X)
            ref(GEN_X)
    torch.testing.assert_close(stats[True][0], ref.bn.running_mean, rtol=1e-5, atol=1e-7)
    assert stats[True][1] == 6 and stats[False][1] == 3
    assert not torch.allclose(stats[False][0], ref.bn.running_mean)


def test_single_forward_mode_keeps_one_mean_over_the_mixed_batch():
    """GENERATED.SEPARATE_FORWARD False (LSRO's released single pool): one forward, one mean
    over all samples (the behaviour before the CamStyle fix)."""
    from dgnet_plugin.methods.camstyle import CamStyleEngine

    cfg = cfg_of("camstyle_r50.yml")
    torch.manual_seed(1)
    model = TinyReID(k=K).train()
    ref = copy.deepcopy(model)
    eng = bare_engine(CamStyleEngine, cfg, model, {"model": torch.optim.SGD(model.parameters(), 0)})
    eng.separate_forward, eng.data = False, iter([mixed_batch()])
    got = eng.run_step(0)["id"]
    b = mixed_batch()
    logits = ref(b["img"])
    q = F.one_hot(b["pid"], K).float()
    q[b["generated"]] = q[b["generated"]] * 0.9 + 0.1 / K
    want = (-(q * F.log_softmax(logits, 1)).sum(1)).mean()
    torch.testing.assert_close(got, want.detach(), rtol=1e-5, atol=1e-7)


def test_lsro_demo_keeps_the_single_forward():
    cfg = cfg_of("lsro_cuhk03_cpu_demo.yml")
    assert not cfg.GENERATED.SEPARATE_FORWARD


# ----------------------------------------------------------------------------- CycleGAN
def tiny_cyclegan_cfg(config="camstyle_r50.yml", *opts):
    return cfg_of(
        config,
        "MODEL.GEN.DIM", "4", "MODEL.GEN.N_BLOCKS", "1", "MODEL.GEN.DROPOUT", "0.0",
        "MODEL.DIS.DIM", "4", "MODEL.DIS.N_LAYERS", "1", "GAN.POOL_SIZE", "0",
        "MODEL.BACKBONE.PRETRAIN", "False", *opts,
    )  # fmt: skip


def cyclegan_engine(cls, cfg, meta="CycleGAN"):
    from dgnet_plugin.losses import ImagePool, lsgan_dis_loss, lsgan_gen_loss
    from dgnet_plugin.modeling import build_model

    cfg.MODEL.META_ARCHITECTURE = meta
    torch.manual_seed(3)
    model = build_model(cfg, 0).train()
    opts = {
        "gen": torch.optim.Adam(model.generators().parameters(), lr=2e-4, betas=(0.5, 0.999)),
        "dis": torch.optim.Adam(model.discriminators().parameters(), lr=2e-4, betas=(0.5, 0.999)),
    }
    eng = bare_engine(cls, cfg, model, opts)
    eng.gan_gen_loss, eng.gan_dis_loss = lsgan_gen_loss, lsgan_dis_loss
    eng.pool_a, eng.pool_b = ImagePool(0), ImagePool(0)
    torch.manual_seed(4)
    a, b = torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16) * 2 - 1
    eng.data = itertools.repeat(({"img": a}, {"img": b}))
    return eng, a, b


def test_cyclegan_lsgan_cycle_identity_terms_match_the_camstyle_fork():
    """CycleGAN-for-CamStyle models/cycle_gan_model.py backward_G / backward_D_basic with
    networks.py GANLoss (use_lsgan: MSELoss to a target of 1 / 0): loss_G = MSE(D_A(G_A(A)), 1)
    + MSE(D_B(G_B(B)), 1) + 10 L1(G_B(G_A(A)), A) + 10 L1(G_A(G_B(B)), B) + 10 x 0.5
    L1(G_A(B), B) + 10 x 0.5 L1(G_B(A), A); loss_D = (MSE(D(real), 1) + MSE(D(fake), 0)) x
    0.5 (netD_A judges domain B: our dis_b)."""
    from dgnet_plugin.offline_augmentation.cyclegan import CycleGANTrainer

    cfg = tiny_cyclegan_cfg()
    eng, a, b = cyclegan_engine(CycleGANTrainer, cfg)
    ref = copy.deepcopy(eng.model)
    logs = eng.run_step(0)
    G_A, G_B, D_A, D_B = ref.gen_ab, ref.gen_ba, ref.dis_b, ref.dis_a
    with torch.no_grad():
        fake_B, fake_A = G_A(a), G_B(b)
        mse = F.mse_loss

        def real(p):
            return mse(p, torch.ones_like(p))

        def fake(p):
            return mse(p, torch.zeros_like(p))

        loss_G = (
            real(D_A(fake_B)[0])
            + real(D_B(fake_A)[0])
            + F.l1_loss(G_B(fake_B), a) * 10
            + F.l1_loss(G_A(fake_A), b) * 10
            + F.l1_loss(G_A(b), b) * 10 * 0.5
            + F.l1_loss(G_B(a), a) * 10 * 0.5
        )
        loss_D_A = (real(D_A(b)[0]) + fake(D_A(fake_B)[0])) * 0.5
        loss_D_B = (real(D_B(a)[0]) + fake(D_B(fake_A)[0])) * 0.5
    w = cfg.LOSS  # the logged terms are unweighted; the engine weights them (the loss rule)
    got_g = (
        logs["gan_ab"] + logs["gan_ba"] + w.CYCLE * logs["cycle"] + w.IDENTITY * logs["identity"]
    )
    torch.testing.assert_close(got_g, loss_G, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(logs["dis_b"], loss_D_A, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(logs["dis_a"], loss_D_B, rtol=1e-5, atol=1e-7)


def test_camstyle_generator_has_dropout_in_every_block_active_at_generation(tmp_path):
    """CycleGAN-for-CamStyle networks.py ResnetBlock.build_conv_block: conv, norm, ReLU,
    Dropout(0.5), conv, norm (use_dropout: --no_dropout False); test.py never calls eval()."""
    from dgnet_plugin.modeling import build_model
    from dgnet_plugin.offline_augmentation.cyclegan import load_translator

    cfg = cfg_of("camstyle_r50.yml", "MODEL.BACKBONE.PRETRAIN", "False")
    cfg.MODEL.META_ARCHITECTURE = "CycleGAN"
    m = build_model(cfg, 0)
    blocks = m.gen_ab.net[3].blocks
    assert len(blocks) == 9
    for blk in blocks:
        assert isinstance(blk.drop, nn.Dropout) and blk.drop.p == 0.5
        kinds = [
            type(x).__name__ for x in (blk.conv1.norm, blk.conv1.act, blk.drop, blk.conv2.norm)
        ]
        assert kinds == ["InstanceNorm2d", "ReLU", "Dropout", "InstanceNorm2d"]
    # a translator run whose config asks for dropout at generation keeps it active
    small = tiny_cyclegan_cfg("camstyle_r50.yml", "MODEL.GEN.DROPOUT", "0.5")
    small.MODEL.META_ARCHITECTURE = "CycleGAN"
    net = build_model(small, 0)
    (tmp_path / "config.yaml").write_text(small.dump())
    torch.save({"model": net.state_dict()}, tmp_path / "model_final.pth")
    model, _, _ = load_translator(str(tmp_path))
    drops = [x for x in model.modules() if isinstance(x, nn.Dropout)]
    assert drops and all(d.training for d in drops) and not model.gen_ab.training
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.equal(model.gen_ab(x), model.gen_ab(x))


# ----------------------------------------------------------------------------- SPGAN
def released_m_loss(a, a2b, b, b2a, margin=2.0):
    """Simon4Yan/Learning-via-Translation, SPGAN/train_spgan_demo.py: S_metric_POS =
    reduce_sum((a_metric - a2b_metric)^2, 1); T_metric_POS likewise for (b, b2a); neg =
    sqrt(reduce_sum((a_metric - b_metric)^2, 1) + 1e-6); NEG = max(C - neg, 0)^2; m_loss =
    (T_metric_POS + S_metric_POS + 2 NEG) / 3 (per sample; batch 1)."""
    a, a2b, b, b2a = (F.normalize(t, dim=1) for t in (a, a2b, b, b2a))  # tf.nn.l2_normalize
    s_pos = ((a - a2b) ** 2).sum(1)
    t_pos = ((b - b2a) ** 2).sum(1)
    neg = torch.sqrt(((a - b) ** 2).sum(1) + 1e-6)
    NEG = torch.clamp(margin - neg, min=0) ** 2
    return (t_pos + s_pos + 2 * NEG) / 3.0


EMB = {
    k: torch.randn(3, 8, generator=torch.Generator().manual_seed(i)) for i, k in enumerate("abcd")
}


def test_spgan_m_loss_is_the_released_formula():
    from dgnet_plugin.methods.spgan import spgan_metric_loss

    e = {k: F.normalize(v, dim=1) for k, v in EMB.items()}
    got = spgan_metric_loss(e["a"], e["b"], e["c"], e["d"], 2.0, "released")
    want = released_m_loss(EMB["a"], EMB["b"], EMB["c"], EMB["d"]).mean()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    # the negative is between the two real images: no gradient reaches the translations'
    # embeddings through it
    x = {k: v.clone().requires_grad_(True) for k, v in e.items()}
    spgan_metric_loss(x["a"], x["b"], x["c"], x["d"], 2.0, "released").backward()
    # d/d e(G(x_S)) of mean_n (||e_a - e_b||^2 + ...) / 3 over N = 3 samples: 2 (e_b - e_a) / 9
    torch.testing.assert_close(x["b"].grad, 2 * (x["b"] - x["a"]).detach() / 9)


def test_spgan_paper_negatives_option_is_the_halved_hadsell_form():
    from dgnet_plugin.methods.spgan import spgan_metric_loss

    e = {k: F.normalize(v, dim=1) for k, v in EMB.items()}

    def hadsell(x1, x2, y, m=2.0):
        d = (x1 - x2).norm(dim=1)
        return (0.5 * (y * d**2 + (1 - y) * torch.clamp(m - d, min=0) ** 2)).mean()

    want = (
        hadsell(e["a"], e["b"], 1) + hadsell(e["c"], e["d"], 1)
        + hadsell(e["b"], e["c"], 0) + hadsell(e["d"], e["a"], 0)
    ) / 4  # fmt: skip
    got = spgan_metric_loss(e["a"], e["b"], e["c"], e["d"], 2.0, "paper")
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="NEGATIVES"):
        spgan_metric_loss(e["a"], e["b"], e["c"], e["d"], 2.0, "other")


def test_sianet_layout_has_leaky_relu_after_every_conv_and_fc1():
    """SPGAN/models/models_spgan.py metric_net: h_i = lrelu(conv 4x4 s2) then max-pool 2, four
    times; fc1 = lrelu(FC(128)); dropout 0.5; fc2 = FC(64); then tf.nn.l2_normalize."""
    from dgnet_plugin.methods.spgan import SiameseNet

    net = SiameseNet(3, 64, 4, 0.5)
    kinds = [type(m).__name__ for m in net.features]
    assert kinds == ["Conv2d", "LeakyReLU", "MaxPool2d"] * 4
    assert [m.out_channels for m in net.features if isinstance(m, nn.Conv2d)] == [64, 128, 256, 512]
    assert all(
        m.kernel_size == (4, 4) and m.stride == (2, 2)
        for m in net.features
        if isinstance(m, nn.Conv2d)
    )
    fc = list(net.fc)
    assert [type(m).__name__ for m in fc] == ["Linear", "LeakyReLU", "Dropout", "Linear"]
    assert fc[0].out_features == 128 and fc[1].negative_slope == 0.2 and fc[2].p == 0.5
    assert fc[3].out_features == 64
    assert all(m.negative_slope == 0.2 for m in net.features if isinstance(m, nn.LeakyReLU))


def spgan_engine(*opts):
    from dgnet_plugin.methods.spgan import SPGANTranslatorEngine

    cfg = tiny_cyclegan_cfg(
        "spgan_r50.yml", "SPGAN.SIAMESE_BLOCKS", "2", "SPGAN.SIAMESE_DIM", "4", *opts
    )
    eng, a, b = cyclegan_engine(SPGANTranslatorEngine, cfg, meta="SPGAN")
    eng.optimizers["metric"] = torch.optim.Adam(
        eng.model.siamese.parameters(), lr=2e-4, betas=(0.5, 0.999)
    )
    return eng, a, b


def test_spgan_generator_loss_adds_two_m_loss_to_cyclegan_terms():
    """train_spgan_demo.py: g_loss = g_loss_a2b + g_loss_b2a + cyc_loss (x10) + idt_loss (x5)
    + lambda3 (2) x m_loss, with the embeddings of a_real, a2b, b_real, b2a (SiaNet dropout off
    here so that the reference can repeat the forward)."""
    eng, a, b = spgan_engine("SPGAN.DROPOUT", "0.0")
    ref = copy.deepcopy(eng.model)
    logs = eng.run_step(0)
    with torch.no_grad():
        a2b, b2a = ref.gen_ab(a), ref.gen_ba(b)

        def sia(x):
            return ref.siamese.fc(ref.siamese.features(x).mean((2, 3)))  # before l2_normalize

        m = released_m_loss(sia(a), sia(a2b), sia(b), sia(b2a)).mean()
        d_b, d_a = ref.dis_b(a2b)[0], ref.dis_a(b2a)[0]
        g_orig = F.mse_loss(d_b, torch.ones_like(d_b)) + F.mse_loss(d_a, torch.ones_like(d_a))
        cyc = F.l1_loss(ref.gen_ba(a2b), a) * 10 + F.l1_loss(ref.gen_ab(b2a), b) * 10
        idt = F.l1_loss(ref.gen_ab(b), b) * 5 + F.l1_loss(ref.gen_ba(a), a) * 5
        g_loss = g_orig + cyc + idt + 2.0 * m
    cfg = eng.cfg
    w = cfg.LOSS  # the logged terms are unweighted; the engine weights them (the loss rule)
    got = logs["gan_ab"] + logs["gan_ba"] + w.CYCLE * logs["cycle"]
    got = got + w.IDENTITY * logs["identity"] + cfg.SPGAN.CONTRASTIVE * logs["contrastive"]
    torch.testing.assert_close(got, g_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logs["metric"], m, rtol=1e-5, atol=1e-7)


def test_spgan_update_order_g_then_d_then_sianet_with_its_own_optimiser():
    """train_spgan_demo.py's loop: g_train_op, d_b_train_op, d_a_train_op, metric_train_op (own
    Adam on var_list metric_var): three iterations give [gen, dis, metric] x 3; SiaNet's weights
    move only in its own step, the generators' only in theirs."""
    eng, _, _ = spgan_engine()
    sia, gens = eng.model.siamese, eng.model.generators()
    assert not {id(p) for p in sia.parameters()} & {id(p) for p in gens.parameters()}
    calls = []

    def snapshot(mod):
        return torch.cat([p.detach().flatten() for p in mod.parameters()]).clone()

    for name, opt in eng.optimizers.items():
        step = opt.step

        def counted(*args, _name=name, _step=step, **kw):
            before = (snapshot(sia), snapshot(gens))
            out = _step(*args, **kw)
            moved = (
                not torch.equal(before[0], snapshot(sia)),
                not torch.equal(before[1], snapshot(gens)),
            )
            calls.append((_name, moved))
            return out

        opt.step = counted
    for it in range(3):
        eng.run_step(it)
    assert [c[0] for c in calls] == ["gen", "dis", "metric"] * 3
    for name, (sia_moved, gen_moved) in calls:
        assert sia_moved == (name == "metric") and gen_moved == (name == "gen"), name


def test_spgan_translator_recipe_builds_released_networks():
    from dgnet_plugin.modeling import build_model

    cfg = cfg_of("spgan_r50.yml", "MODEL.BACKBONE.PRETRAIN", "False")
    cfg.MODEL.META_ARCHITECTURE = "SPGAN"
    m = build_model(cfg, 0)
    norms = [x for x in m.gen_ab.modules() if isinstance(x, nn.InstanceNorm2d)]
    assert norms and all(x.affine for x in norms)  # SPGAN/Utils/ops.py instance_norm
    assert all(x.affine for x in m.dis_a.modules() if isinstance(x, nn.InstanceNorm2d))
    assert not any(isinstance(x, nn.Dropout) for x in m.gen_ab.modules())
    out = m.siamese.eval()(torch.zeros(1, 3, 256, 256))
    assert out.shape == (1, 64)


def test_spgan_tf_same_padding_map_sizes():
    """SPGAN/models/models_spgan.py: slim convs with padding SAME: the discriminator's h3 / h4
    (stride 1) keep 32x32 at 256 (comment 'h4 is (32 x 32 x 1)'); the generator's strided
    convs halve the size exactly and the output keeps the input's size."""
    from dgnet_plugin.modeling.discriminators.patchgan import PatchGANDiscriminator
    from dgnet_plugin.modeling.generators.resnet import ResnetGenerator

    d = PatchGANDiscriminator(3, 4, 3, padding="tf_same")
    assert d(torch.zeros(1, 3, 256, 256))[0].shape == (1, 1, 32, 32)
    assert PatchGANDiscriminator(3, 4, 3)(torch.zeros(1, 3, 256, 256))[0].shape[-1] == 30
    g = ResnetGenerator(3, 3, 4, 1, padding="tf_same")
    x = torch.zeros(1, 3, 32, 16)
    x[..., 0, 0] = 1.0
    assert g(x).shape == x.shape
    # TF SAME at stride 2, kernel 3, even size: no padding before, one row / column after
    conv = g.net[1][1].conv
    y = g.net[1][1](g.net[1][0](torch.ones(1, 4, 8, 8)))
    ref = F.conv2d(F.pad(torch.ones(1, 4, 8, 8), (0, 1, 0, 1)), conv.weight, conv.bias, 2)
    assert y.shape == (1, 8, 4, 4)
    torch.testing.assert_close(y, g.net[1][1].act(g.net[1][1].norm(ref)), rtol=1e-5, atol=1e-6)


def test_spgan_reseeded_pool_is_the_released_item_pool():
    """SPGAN/Utils/utils.py ItemPool with train_spgan_demo.py's np.random.seed(0) at the top of
    every iteration, a2b_pool queried before b2a_pool."""
    import numpy as np

    from dgnet_plugin.losses.image_pool import ImagePool
    from dgnet_plugin.offline_augmentation.cyclegan import CycleGANTrainer

    class ItemPool:  # the released class, written out
        def __init__(self, max_num=50):
            self.max_num, self.num, self.items = max_num, 0, []

        def __call__(self, in_items):
            out = []
            for item in in_items:
                if self.num < self.max_num:
                    self.items.append(item)
                    self.num += 1
                    out.append(item)
                elif np.random.rand() > 0.5:
                    idx = np.random.randint(0, self.max_num)
                    tmp = self.items[idx]
                    self.items[idx] = item
                    out.append(tmp)
                else:
                    out.append(item)
            return out

    size = 3
    a2b_pool, b2a_pool = ItemPool(size), ItemPool(size)
    eng = object.__new__(CycleGANTrainer)
    eng.pool_a, eng.pool_b, eng.pool_reseed = ImagePool(size), ImagePool(size), True
    for it in range(8):
        fa, fb = torch.full((1, 1), 100.0 + it), torch.full((1, 1), 200.0 + it)
        np.random.seed(0)
        want_b = a2b_pool([fb[0]])
        want_a = b2a_pool([fa[0]])
        got_a, got_b = eng.pooled_fakes(fa, fb)
        assert got_b[0].item() == want_b[0].item() and got_a[0].item() == want_a[0].item()


# ----------------------------------------------------------------------------- PTGAN
def test_ptgan_masked_identity_term_is_the_paper_formula():
    """Wei et al. 2018, Eq. 4: L_ID = E_a ||(G(a) - a) * M(a)||_2 + E_b ||(F(b) - b) * M(b)||_2
    (the raw per-image L2 norm: PTGAN.ID_NORM paper), weighted by lambda_1."""
    from dgnet_plugin.methods.ptgan import PTGANTranslatorEngine

    g = torch.Generator().manual_seed(5)
    a, fb, b, fa = (torch.rand(2, 3, 8, 4, generator=g) * 2 - 1 for _ in range(4))
    ma, mb = (torch.rand(2, 1, 8, 4, generator=g) > 0.5 for _ in range(2))

    def paper(x, y, m):
        return torch.stack(
            [((xi - yi) * mi).flatten().norm(p=2) for xi, yi, mi in zip(x, y, m)]
        ).mean()

    out = {"a": a, "b": b, "fake_b": fb, "fake_a": fa}
    for norm, scale in (("paper", 1.0), ("rms", 1 / math.sqrt(3 * 8 * 4))):
        cfg = cfg_of("ptgan_r50.yml", "PTGAN.ID_NORM", norm, "PTGAN.ID_WEIGHT", "3.0")
        eng = bare_engine(PTGANTranslatorEngine, cfg, None, {})
        got, w = eng.extra_generator_losses({"mask": ma.float()}, {"mask": mb.float()}, out)
        want = 3.0 * scale * (paper(fb, a, ma.float()) + paper(fa, b, mb.float()))
        torch.testing.assert_close(w["masked_id"] * got["masked_id"], want, rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- schedules
def test_translator_length_in_epochs_from_the_domain_sizes():
    """CamStyle's fork: 30 + 20 epochs of max(|A|, |B|) iterations at batch 1 (train_options.py
    --niter 30 --niter_decay 20; data/reid_dataset.py __len__); SPGAN: 6 x min(|a|, |b|) //
    batch_size iterations at a constant LR (train_spgan_demo.py max_it)."""
    from dgnet_plugin.offline_augmentation.config import gan_schedule, gan_stage_config

    cs = cfg_of("camstyle_r50.yml")
    assert gan_schedule(cs, (2017, 1709)) == (50 * 2017, 30 * 2017)  # Market c1 <-> c2
    merges = gan_stage_config(cs, (920, 3245))
    assert merges["SOLVER.MAX_ITER"] == 50 * 3245
    assert merges["GAN.DECAY_START"] == 30 * 3245
    assert merges["INPUT.LOAD_SIZE"] == (286, 286)
    sp = cfg_of("spgan_r50.yml")
    assert gan_schedule(sp, (12936, 16522)) == (6 * 12936, 6 * 12936)


def test_translator_resize_and_crop_and_camstyle_rect_crop():
    from PIL import Image

    from dgnet_plugin.data.transforms import RandomSizedRectCrop, build_transforms

    cfg = cfg_of("camstyle_r50.yml")
    from dgnet_plugin.engine.stages import derive_config
    from dgnet_plugin.offline_augmentation.config import gan_stage_config

    cfg = derive_config(cfg, gan_stage_config(cfg, (10, 20)))  # the translator stage's config
    tf = build_transforms(cfg, True)
    names = [type(t).__name__ for t in tf.transforms][:3]
    assert names == ["Resize", "RandomCrop", "RandomHorizontalFlip"]
    assert tf.transforms[0].size == [286, 286] or tuple(tf.transforms[0].size) == (286, 286)
    cfg = cfg_of("camstyle_r50.yml")
    tf = build_transforms(cfg, True)
    assert isinstance(tf.transforms[0], RandomSizedRectCrop)
    img = Image.new("RGB", (64, 128))
    torch.manual_seed(0)
    assert tf.transforms[0](img).size == (128, 256)  # (W, H) = SIZE_TRAIN (256, 128)
    # a square CamStyle image (256 x 256) never fits aspect 2-3 at 64 % of its area: plain resize
    assert RandomSizedRectCrop((256, 128))(Image.new("RGB", (256, 256))).size == (128, 256)


def test_spgan_reid_resizes_bilinear_in_training_and_bicubic_at_test():
    """Learning-via-Translation IDE: Caffe's ImageData layer resizes the training images with
    OpenCV's cv::resize (bilinear, new_height / new_width 224); duke_evaluation/utils/
    prepare_img.m resizes the test images with MATLAB's imresize (bicubic)."""
    from torchvision.transforms import InterpolationMode

    from dgnet_plugin.data.transforms import build_transforms

    cfg = cfg_of("spgan_r50.yml")
    train = [t for t in build_transforms(cfg, True).transforms if type(t).__name__ == "Resize"]
    test = [t for t in build_transforms(cfg, False).transforms if type(t).__name__ == "Resize"]
    assert [t.interpolation for t in train] == [InterpolationMode.BILINEAR]
    assert [t.interpolation for t in test] == [InterpolationMode.BICUBIC]
    for other in ("camstyle_r50.yml", "ptgan_r50.yml"):  # the others keep bicubic
        tf = build_transforms(cfg_of(other), True).transforms
        assert all(t.interpolation == InterpolationMode.BICUBIC
                   for t in tf if type(t).__name__ == "Resize")  # fmt: skip


# ----------------------------------------------------------------------------- SPGAN re-ID
def test_spgan_reid_stage_freezes_conv1_res2_and_bn_and_uses_caffe_multipliers():
    """models/duke/ResNet_50_domain/ResNet_50_train.prototxt: conv1 and res2 at lr_mult 0,
    every BatchNorm use_global_stats and Scale lr_mult 0; fc8_ weight lr_mult 2 / decay_mult 2,
    bias lr_mult 4 / decay_mult 0; ResNet_50_solver.prototxt: base_lr 0.001, momentum 0.9,
    weight_decay 5e-4 (plain SGD)."""
    from dgnet_plugin.modeling import build_model
    from dgnet_plugin.modeling.norm import convert_norm
    from dgnet_plugin.offline_augmentation.engine import (
        build_caffe_style_optimizer,
        freeze_reid_parameters,
    )

    cfg = cfg_of("spgan_r50.yml", "MODEL.BACKBONE.PRETRAIN", "False")
    model = build_model(cfg, 751)
    convert_norm(model.reid, cfg.MODEL.NORM, "cpu", 1)
    frozen = set(freeze_reid_parameters(cfg, model))
    assert "backbone.conv1.weight" in frozen and "backbone.layer1.2.conv3.weight" in frozen
    assert "backbone.layer2.0.conv1.weight" not in frozen
    assert "backbone.layer4.2.bn3.weight" in frozen  # every Scale layer
    opt = build_caffe_style_optimizer(cfg, model, ("classifier",))
    groups = {len(g["params"]): (g["lr"], g["weight_decay"]) for g in opt.param_groups}
    assert groups[1] in ((0.002, 0.001), (0.004, 0.0))
    lrs = sorted((g["lr"], g["weight_decay"]) for g in opt.param_groups)
    assert lrs == [(0.001, 0.0005), (0.002, 0.001), (0.004, 0.0)]
    assert not opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
    assert all(p.requires_grad for g in opt.param_groups for p in g["params"])
    model.train()
    assert not model.backbone.layer3[0].bn1.training  # use_global_stats


# ----------------------------------------------------------------------------- recipes
# (key, value, source) of the released code (CamStyle, SPGAN) or the paper / "[ours]" (PTGAN)
CS, CG = "zhunzhong07/CamStyle", "CamStyle CycleGAN-for-CamStyle"
SP, IDE = "Learning-via-Translation SPGAN/", "Learning-via-Translation Caffe IDE"
RECIPES = {
    "camstyle_r50.yml": [
        ("MODEL.BACKBONE.LAST_STRIDE", 2, f"{CS} torchvision resnet50"),
        ("MODEL.HEADS.EMBEDDING_DIM", 1024, f"{CS} main.py --features"),
        ("MODEL.HEADS.NECK_RELU", True, f"{CS} reid/models/resnet.py forward"),
        ("MODEL.HEADS.BN_INIT", "ones", f"{CS} resnet.py feat_bn init"),
        ("MODEL.HEADS.DROPOUT", 0.5, f"{CS} main.py --dropout"),
        ("MODEL.HEADS.TEST_FEATURE", "pool", f"{CS} main.py --output_feature pool5"),
        ("MODEL.HEADS.POOL", "avg", f"{CS} resnet.py avg_pool2d"),
        ("MODEL.NORM", "BN", f"{CS} trained BatchNorm"),
        ("INPUT.REA.PROB", 0.0, f"{CS} main.py --re 0"),
        ("INPUT.RANDOM_SIZED_RECT_CROP", True, f"{CS} main.py train_transformer"),
        ("INPUT.SIZE_TRAIN", (256, 128), f"{CS} --height/--width"),
        ("INPUT.SIZE_TEST", (256, 128), f"{CS} test_transformer"),
        ("TEST.FLIP", False, f"{CS} reid/evaluators.py"),
        ("TEST.METRIC", "cosine", f"{CS} evaluators.py Euclidean on L2 features"),
        ("TEST.RERANK", False, f"{CS} --rerank off"),
        ("SOLVER.IMS_PER_BATCH", 128, f"{CS} --batch-size"),
        ("GENERATED.PER_BATCH", 46, f"{CS} README --camstyle 46"),
        ("GENERATED.MIXING", "fixed", f"{CS} reid/trainers.py: 128 real + 46 fake per step"),
        ("GENERATED.SEPARATE_FORWARD", True, f"{CS} reid/trainers.py _forward"),
        ("LOSS.LABEL.REAL", "hard", f"{CS} trainers.py CrossEntropyLoss"),
        ("LOSS.LABEL.GENERATED", "lsr", f"{CS} trainers.py _lsr_loss"),
        ("LOSS.LABEL.EPSILON", 0.1, f"{CS} _class_to_one_hot 0.9 + 0.1/K"),
        ("SOLVER.REID.OPTIM", "sgd", f"{CS} main.py"),
        ("SOLVER.REID.BASE_LR", 0.01, f"{CS} --lr 0.1 x 0.1"),
        ("SOLVER.REID.HEADS_LR_FACTOR", 10.0, f"{CS} new params lr_mult 1"),
        ("SOLVER.REID.MOMENTUM", 0.9, f"{CS} --momentum"),
        ("SOLVER.REID.NESTEROV", True, f"{CS} nesterov=True"),
        ("SOLVER.REID.WEIGHT_DECAY", 5e-4, f"{CS} --weight-decay"),
        ("SOLVER.REID_GAMMA", 0.1, f"{CS} adjust_lr"),
        ("SOLVER.MAX_ITER", 5050, f"{CS} 50 epochs x 101"),
        ("SOLVER.STEPS", (4040,), f"{CS} step_size 40"),
        ("SOLVER.AMP", "off", f"{CS} float32"),
        ("MODEL.GEN.DIM", 64, f"{CG} --ngf"),
        ("MODEL.GEN.N_BLOCKS", 9, f"{CG} resnet_9blocks"),
        ("MODEL.GEN.UPSAMPLE", "transpose", f"{CG} ConvTranspose2d"),
        ("MODEL.GEN.DROPOUT", 0.5, f"{CG} --no_dropout False"),
        ("MODEL.GEN.NORM_AFFINE", False, f"{CG} InstanceNorm2d affine False"),
        ("MODEL.GEN.INIT", "normal", f"{CG} --init_type normal"),
        ("MODEL.DIS.DIM", 64, f"{CG} --ndf"),
        ("MODEL.DIS.N_LAYERS", 3, f"{CG} basic PatchGAN"),
        ("MODEL.DIS.NORM_AFFINE", False, f"{CG} instance norm"),
        ("LOSS.GAN_MODE", "lsgan", f"{CG} --no_lsgan False"),
        ("LOSS.CYCLE", 10.0, f"{CG} lambda_A/B"),
        ("LOSS.IDENTITY", 5.0, f"{CG} lambda_identity 0.5 x 10"),
        ("GAN.IMS_PER_BATCH", 1, f"{CG} --batchSize"),
        ("GAN.SIZE", (256, 256), f"{CG} --fineSize"),
        ("GAN.LOAD_SIZE", (286, 286), f"{CG} --loadSize"),
        ("GAN.LOAD_INTERPOLATION", "bicubic", f"{CG} base_dataset.py BICUBIC"),
        ("GAN.EPOCHS", 50, f"{CG} --niter 30 + --niter_decay 20"),
        ("GAN.DECAY_EPOCHS", 20, f"{CG} --niter_decay"),
        ("GAN.EPOCH_SIZE", "max", f"{CG} reid_dataset.py __len__"),
        ("GAN.POOL_SIZE", 50, f"{CG} --pool_size"),
        ("GAN.POOL_RESEED", False, f"{CG} util/image_pool.py"),
        ("MODEL.GEN.PADDING", "torch", f"{CG} Conv2d padding 1"),
        ("MODEL.DIS.PADDING", "torch", f"{CG} padw 1"),
        ("GAN.DROPOUT_AT_GENERATION", True, f"{CG} test.py (no eval())"),
        ("SOLVER.GEN.LR", 2e-4, f"{CG} --lr"),
        ("SOLVER.GEN.BETAS", (0.5, 0.999), f"{CG} --beta1"),
        ("SOLVER.GEN.WEIGHT_DECAY", 0.0, f"{CG} Adam"),
        ("SOLVER.DIS.LR", 2e-4, f"{CG} --lr"),
        ("SOLVER.DIS.BETAS", (0.5, 0.999), f"{CG} --beta1"),
    ],
    "spgan_r50.yml": [
        ("MODEL.GEN.DIM", 64, f"{SP} models_spgan.py gf_dim"),
        ("MODEL.GEN.N_BLOCKS", 9, f"{SP} r1-r9"),
        ("MODEL.GEN.DROPOUT", 0.0, f"{SP} generator"),
        ("MODEL.GEN.NORM_AFFINE", True, f"{SP} Utils/ops.py instance_norm"),
        ("MODEL.GEN.INIT", "xavier", f"{SP} slim defaults"),
        ("MODEL.DIS.NORM_AFFINE", True, f"{SP} discriminator instance_norm"),
        ("MODEL.DIS.INIT", "xavier", f"{SP} slim defaults"),
        ("LOSS.GAN_MODE", "lsgan", f"{SP} ops.l2_loss"),
        ("LOSS.CYCLE", 10.0, f"{SP} lambda1"),
        ("LOSS.IDENTITY", 5.0, f"{SP} lambda2"),
        ("SPGAN.CONTRASTIVE", 2.0, f"{SP} lambda3"),
        ("SPGAN.MARGIN", 2.0, f"{SP} margin"),
        ("SPGAN.NEGATIVES", "released", f"{SP} m_loss NEG on (a_real, b_real)"),
        ("MODEL.GEN.PADDING", "tf_same", f"{SP} slim SAME"),
        ("MODEL.DIS.PADDING", "tf_same", f"{SP} slim SAME"),
        ("GAN.POOL_RESEED", True, f"{SP} np.random.seed(0) per iteration"),
        ("SPGAN.SIAMESE_BLOCKS", 4, f"{SP} metric_net"),
        ("SPGAN.SIAMESE_DIM", 64, f"{SP} metric_net df_dim"),
        ("SPGAN.DROPOUT", 0.5, f"{SP} slim.dropout 0.5"),
        ("SPGAN.SIAMESE_LR", 2e-4, f"{SP} metric_train_op"),
        ("SPGAN.SIAMESE_BETAS", (0.5, 0.999), f"{SP} beta1 0.5"),
        ("GAN.IMS_PER_BATCH", 1, f"{SP} --batch_size"),
        ("GAN.SIZE", (256, 256), f"{SP} --crop_size"),
        ("GAN.LOAD_SIZE", (286, 286), f"{SP} --load_size"),
        ("GAN.LOAD_INTERPOLATION", "bilinear", f"{SP} tf.image.resize_images"),
        ("GAN.EPOCHS", 6, f"{SP} --epoch"),
        ("GAN.EPOCH_SIZE", "min", f"{SP} batch_epoch"),
        ("GAN.DECAY_EPOCHS", 0, f"{SP} constant LR"),
        ("GAN.POOL_SIZE", 50, f"{SP} ItemPool"),
        ("SOLVER.GEN.LR", 2e-4, f"{SP} --lr"),
        ("SOLVER.GEN.BETAS", (0.5, 0.999), f"{SP} beta1 0.5"),
        ("SOLVER.DIS.LR", 2e-4, f"{SP} --lr"),
        ("MODEL.NORM", "FrozenBN", f"{IDE} use_global_stats"),
        ("MODEL.BACKBONE.LAST_STRIDE", 2, f"{IDE} ResNet-50 pool5 7x7"),
        ("MODEL.HEADS.EMBEDDING_DIM", 0, f"{IDE} pool5 -> fc8_"),
        ("MODEL.HEADS.DROPOUT", 0.0, f"{IDE} no dropout"),
        ("MODEL.HEADS.TEST_FEATURE", "pool", f"{IDE} extract_feature.m pool5"),
        ("SOLVER.REID.OPTIM", "sgd", f"{IDE} solver"),
        ("SOLVER.REID.BASE_LR", 0.001, f"{IDE} base_lr"),
        ("SOLVER.REID.HEAD_MULTS", (2.0, 2.0, 4.0, 0.0), f"{IDE} fc8_ lr/decay mults"),
        (
            "SOLVER.REID.FROZEN",
            ("backbone.conv1", "backbone.bn1", "backbone.layer1"),
            f"{IDE} conv1/res2 lr_mult 0",
        ),
        ("SOLVER.REID.FREEZE_BN_AFFINE", True, f"{IDE} Scale lr_mult 0"),
        ("SOLVER.REID.MOMENTUM", 0.9, f"{IDE} momentum"),
        ("SOLVER.REID.NESTEROV", False, f"{IDE} Caffe SGD"),
        ("SOLVER.REID.WEIGHT_DECAY", 5e-4, f"{IDE} weight_decay"),
        ("SOLVER.REID_GAMMA", 0.1, f"{IDE} gamma"),
        ("SOLVER.MAX_ITER", 50000, f"{IDE} max_iter"),
        ("SOLVER.STEPS", (20000,), f"{IDE} stepsize"),
        ("SOLVER.IMS_PER_BATCH", 16, f"{IDE} batch_size"),
        ("INPUT.SIZE_TRAIN", (224, 224), f"{IDE} new_height/new_width"),
        ("INPUT.INTERPOLATION_TRAIN", "bilinear", f"{IDE} Caffe ImageData cv::resize"),
        ("INPUT.SIZE_TEST", (224, 224), f"{IDE} prepare_img.m"),
        ("INPUT.PADDING", 0, f"{IDE} crop 224 of 224"),
        ("INPUT.FLIP_PROB", 0.5, f"{IDE} mirror true"),
        ("INPUT.REA.PROB", 0.0, f"{IDE} no erasing"),
        ("INPUT.RANDOM_SIZED_RECT_CROP", False, f"{IDE} no crop"),
        ("TEST.FLIP", False, f"{IDE} extract_feature.m"),
        ("TEST.METRIC", "cosine", f"{IDE} Euclidean on L2 pool5"),
        ("GENERATED.ONLY", True, f"{IDE} train_market2duke.txt"),
        ("LOSS.LABEL.GENERATED", "hard", f"{IDE} SoftmaxWithLoss"),
        ("SOLVER.AMP", "off", f"{SP} / {IDE} float32"),
    ],
    "ptgan_r50.yml": [
        ("LOSS.IDENTITY", 0.0, "paper: L_PTGAN = L_Style + lambda_1 L_ID"),
        ("PTGAN.ID_NORM", "paper", "paper Eq. 4 raw L2 norm"),
        ("GENERATED.ONLY", True, "paper: re-ID on the transferred source"),
        ("LOSS.LABEL.GENERATED", "hard", "paper: source labels"),
        ("MODEL.GEN.N_BLOCKS", 9, "paper: CycleGAN's generator"),
        ("MODEL.DIS.N_LAYERS", 3, "paper: CycleGAN's discriminator"),
        ("LOSS.CYCLE", 10.0, "[ours] CycleGAN's lambda"),
        ("PTGAN.ID_WEIGHT", 0.0226, "[ours] 10 on the rms scale"),
        ("GAN.EPOCHS", 6, "[ours] SPGAN's released length"),
        ("GAN.DECAY_EPOCHS", 3, "[ours] CycleGAN's second-half decay"),
        ("INPUT.REA.PROB", 0.0, "[ours]"),
        ("TEST.FLIP", False, "[ours]"),
        ("MODEL.BACKBONE.LAST_STRIDE", 2, "[ours]"),
        ("MODEL.HEADS.TEST_FEATURE", "pool", "[ours]"),
        ("SOLVER.AMP", "off", "[ours] float32"),
    ],
}


@pytest.mark.parametrize("config", sorted(RECIPES))
def test_full_recipes_hold_the_released_values(config):
    from dgnet_plugin.config.validate import validate_config

    cfg = cfg_of(config)
    validate_config(cfg)
    for key, want, source in RECIPES[config]:
        node = cfg
        for part in key.split("."):
            node = node[part]
        got = tuple(node) if isinstance(node, list | tuple) else node
        assert got == want, f"{config}: {key} = {got!r}, released {want!r} ({source})"


@pytest.mark.parametrize("config", sorted(RECIPES))
def test_full_recipes_set_every_sourced_value_themselves(config):
    """A recipe must not change when a base or a core default changes: every key of its table
    is written in the file itself."""
    import yaml

    text = yaml.safe_load((REPO / "configs" / config).read_text())
    assert "_BASE_" not in text
    for key, _, _ in RECIPES[config]:
        node = text
        for part in key.split("."):
            assert part in node, f"{config} does not set {key} itself"
            node = node[part]
