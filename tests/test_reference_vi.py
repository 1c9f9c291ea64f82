"""Reference tests of the visible-infrared methods against their released code: AGW
(mangye16/Cross-Modal-Re-ID-baseline @ e817a26: ``model.py``, ``loss.py``, ``train.py``) and
the parts of D2RL that follow UNIT (mingyuliutw/UNIT @ 28d5982: ``trainer.py``,
``networks.py``; D2RL itself has no released code). Each released formula is written out
here, in the test, on small fixed tensors, and compared with the project's value (rtol 1e-5).
Then the order of D2RL's updates per phase (optimiser steps counted) and the full recipes
(``configs/agw_r50_sysu.yml``, ``d2rl_r50_sysu.yml``, ``d2rl_r50_regdb.yml``) against tables
of released values, each with its source."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F
from conftest import MOBILENET_WEIGHTS, REPO
from PIL import Image
from torchvision import transforms as T

import dgnet_plugin  # noqa: F401 (registers the methods)
from dgnet_plugin.config import load_cfg_file
from dgnet_plugin.data.transforms import build_transforms
from dgnet_plugin.engine.optim import warmup_multistep_factor
from dgnet_plugin.losses import (
    id_loss,
    lsgan_dis_loss,
    weighted_regularized_triplet_loss,
)
from dgnet_plugin.methods.d2rl import engine as d2rl_engine
from dgnet_plugin.methods.d2rl.engine import reid_lr_scheduler, translate_pair
from dgnet_plugin.methods.d2rl.meta_arch import (
    d2rl_loss_weights,
    reid_losses,
    unit_translation_losses,
)
from dgnet_plugin.modeling import build_model
from dgnet_plugin.modeling.blocks import NonLocalBlock
from dgnet_plugin.modeling.heads import global_pool

RTOL = 1e-5


def close(ours, ref):
    return torch.allclose(torch.as_tensor(ours), torch.as_tensor(ref), rtol=RTOL, atol=1e-7)


# ----------------------------------------------------------------------------------- AGW


def _conv1x1(x, conv):
    """A 1x1 convolution written out: ``W x + b`` per position."""
    return (
        torch.einsum("oc,bchw->bohw", conv.weight[:, :, 0, 0], x) + conv.bias[None, :, None, None]
    )


def agw_non_local(blk, x):
    """mangye16/Cross-Modal-Re-ID-baseline ``model.py`` ``Non_local.forward``: g, theta, phi
    1x1 convs to ``inter_channels``, ``f = theta_x @ phi_x``, ``f_div_C = f / N`` (the softmax
    line is commented out), ``y = f_div_C @ g_x``, ``z = W(y) + x`` with W = conv + BN (here in
    eval mode: its running statistics and affine parameters)."""
    b, _, h, w = x.shape
    ic = blk.theta.out_channels
    g_x = _conv1x1(x, blk.g).view(b, ic, -1).permute(0, 2, 1)
    theta_x = _conv1x1(x, blk.theta).view(b, ic, -1).permute(0, 2, 1)
    phi_x = _conv1x1(x, blk.phi).view(b, ic, -1)
    f = torch.matmul(theta_x, phi_x)
    f_div_c = f / f.size(-1)
    y = torch.matmul(f_div_c, g_x).permute(0, 2, 1).contiguous().view(b, ic, h, w)
    bn = blk.out[1]
    v = _conv1x1(y, blk.out[0])
    w_y = (v - bn.running_mean[None, :, None, None]) / torch.sqrt(
        bn.running_var[None, :, None, None] + bn.eps
    ) * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
    return w_y + x


def _randomise_bn(bn, gen):
    with torch.no_grad():
        bn.weight.copy_(torch.rand(bn.weight.shape, generator=gen) + 0.5)
        bn.bias.copy_(torch.randn(bn.bias.shape, generator=gen))
        bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=gen))
        bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=gen) + 0.5)


def test_non_local_block_is_agws():
    """Default block = AGW's Non_local: 1 inner channel (``reduc_ratio // reduc_ratio``),
    ``theta^T phi / N`` without softmax, W = conv + BN; output on fixed tensors."""
    gen = torch.Generator().manual_seed(0)
    blk = NonLocalBlock(6).eval()
    assert blk.theta.weight.shape == (1, 6, 1, 1) and blk.g.weight.shape == (1, 6, 1, 1)
    assert blk.out[0].weight.shape == (6, 1, 1, 1)
    # AGW initialises W's BN to 0: the block starts as the identity
    assert torch.equal(blk.out[1].weight, torch.zeros(6)) and torch.equal(
        blk.out[1].bias, torch.zeros(6)
    )
    _randomise_bn(blk.out[1], gen)
    x = torch.randn(2, 6, 4, 3, generator=gen)
    with torch.no_grad():
        assert close(blk(x), agw_non_local(blk, x))


def test_non_local_softmax_option_is_the_embedded_gaussian():
    """``MODEL.AGW.NON_LOCAL_AFFINITY softmax`` with ``NON_LOCAL_INTER 0`` (C / 2): Wang et
    al. (CVPR 2018) Eq. 2-3, ``y = softmax(theta(x)^T phi(x)) g(x)`` (not AGW's)."""
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)  # the block's weights: the same whatever ran before
    blk = NonLocalBlock(6, inter=0, affinity="softmax").eval()
    assert blk.theta.out_channels == 3
    _randomise_bn(blk.out[1], gen)
    x = torch.randn(2, 6, 4, 3, generator=gen)
    t = _conv1x1(x, blk.theta).flatten(2).transpose(1, 2)
    p = _conv1x1(x, blk.phi).flatten(2)
    g = _conv1x1(x, blk.g).flatten(2).transpose(1, 2)
    y = (torch.softmax(t @ p, -1) @ g).transpose(1, 2).reshape(2, 3, 4, 3)
    bn = blk.out[1]
    v = _conv1x1(y, blk.out[0])
    ref = (
        x
        + (v - bn.running_mean[:, None, None])
        / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
        * bn.weight[:, None, None]
        + bn.bias[:, None, None]
    )
    with torch.no_grad():
        got = blk(x)
    # outputs up to ~4: a few float32 ulps (4.8e-7 measured) is the summation order, not a bug
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="affinity"):
        NonLocalBlock(6, affinity="gaussian")


def agw_wrt(inputs, targets):
    """mangye16/Cross-Modal-Re-ID-baseline ``loss.py`` ``TripletLoss_WRT.forward`` (with
    ``pdist_torch`` and ``softmax_weights``), ``SoftMarginLoss`` written out as
    ``mean(log(1 + exp(-y x)))`` with ``y = 1``."""
    m = inputs.shape[0]
    pw = inputs.pow(2).sum(dim=1, keepdim=True).expand(m, m)
    dist = (pw + pw.t() - 2 * inputs @ inputs.t()).clamp(min=1e-12).sqrt()
    is_pos = targets.expand(m, m).eq(targets.expand(m, m).t()).float()
    is_neg = targets.expand(m, m).ne(targets.expand(m, m).t()).float()
    dist_ap, dist_an = dist * is_pos, dist * is_neg

    def softmax_weights(d, mask):
        max_v = torch.max(d * mask, dim=1, keepdim=True)[0]
        diff = d - max_v
        z = torch.sum(torch.exp(diff) * mask, dim=1, keepdim=True) + 1e-6
        return torch.exp(diff) * mask / z

    furthest_positive = torch.sum(dist_ap * softmax_weights(dist_ap, is_pos), dim=1)
    closest_negative = torch.sum(dist_an * softmax_weights(-dist_an, is_neg), dim=1)
    return torch.log1p(torch.exp(-(closest_negative - furthest_positive))).mean()


def test_wrt_loss_is_agws():
    # integer-valued features: the released expanded distance is exact (0 on the diagonal)
    f = torch.tensor([[0.0, 1.0, 2.0], [1.0, 1.0, 0.0], [3.0, 0.0, 1.0], [2.0, 2.0, 2.0]])
    f = torch.cat([f, f.flip(0) * 0.5 + 1.0])
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    assert close(weighted_regularized_triplet_loss(f, pids), agw_wrt(f, pids))


def test_gem_and_identity_loss_are_agws():
    """GeM: ``model.py`` ``(mean(x ** 3) + 1e-12) ** (1 / 3)`` over the positions; identity
    loss: ``nn.CrossEntropyLoss`` (``train.py`` ``criterion_id``)."""
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(3, 5, 4, 2, generator=gen) + 0.05
    x[0, 0, 0, 0] = 0.0  # a zero position (after ReLU), not a zero channel
    ref = (torch.mean(x.view(3, 5, -1) ** 3.0, dim=-1) + 1e-12) ** (1 / 3.0)
    assert close(global_pool(x, "gem"), ref)
    logits, pids = torch.randn(6, 4, generator=gen), torch.tensor([0, 1, 2, 3, 0, 1])
    assert close(id_loss(logits, pids), torch.nn.CrossEntropyLoss()(logits, pids))


def agw_lr(epoch: int, lr: float = 0.1) -> tuple[float, float]:
    """``train.py`` ``adjust_learning_rate``: (base group, bottleneck + classifier) LRs."""
    if epoch < 10:
        lr = lr * (epoch + 1) / 10
    elif epoch < 20:
        lr = lr
    elif epoch < 50:
        lr = lr * 0.1
    else:
        lr = lr * 0.01
    return 0.1 * lr, lr


def _recipe(name, opts=()):
    return load_cfg_file(str(REPO / "configs" / name), list(opts))


def test_agw_recipe_lr_schedule_is_agws_per_epoch_schedule():
    """At ~700 iterations per epoch (the recipe's conversion), every iteration's backbone and
    head LR equals ``adjust_learning_rate`` of its epoch: 10 constant warm-up steps from 0.1 x,
    then x 0.1 at epoch 20 and x 0.01 at 50."""
    cfg = _recipe("agw_r50_sysu.yml")
    s = cfg.SOLVER
    base = s.REID.BASE_LR
    head = s.REID.BASE_LR * s.REID.HEADS_LR_FACTOR
    for it in range(0, s.MAX_ITER, 50):
        k = warmup_multistep_factor(
            it, s.WARMUP_ITERS, s.STEPS, s.REID_GAMMA, stages=s.WARMUP_STAGES
        )
        ref_base, ref_head = agw_lr(it // 700)
        assert close(base * k, ref_base) and close(head * k, ref_head), it


def test_d2rl_t_f_schedule_is_agws_from_t_fs_first_iteration():
    """T_F starts at WARMUP_GEN_ITER; from there its LR follows AGW's per-epoch schedule (SYSU:
    700 iterations per epoch; RegDB: 65, AGW's IdentitySampler int(2060 / 32) + 1)."""
    for name, per_epoch in (("d2rl_r50_sysu.yml", 700), ("d2rl_r50_regdb.yml", 65)):
        cfg = _recipe(name)
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = reid_lr_scheduler(opt, cfg)
        start = cfg.MODEL.D2RL.WARMUP_GEN_ITER
        s = cfg.SOLVER
        for it in range(start, s.MAX_ITER, 25):
            k = sched.lr_lambdas[0](it)
            assert close(s.REID.BASE_LR * k, agw_lr((it - start) // per_epoch)[0]), (name, it)


def test_agw_network_non_local_positions_and_bn_init():
    """ResNet-50: ``model.py`` NL_2_idx = [2, 3] (after layer2's blocks 2 and 3), NL_3_idx =
    [3, 4, 5]; 1 inner channel; BNNeck BatchNorm1d weight N(1, 0.01) (``weights_init_kaiming``),
    bias 0 and frozen; classifier N(0, 0.001), no bias."""
    cfg = _recipe("agw_r50_sysu.yml", ["MODEL.BACKBONE.PRETRAIN", "False", "MODEL.DEVICE", "cpu"])
    torch.manual_seed(0)
    m = build_model(cfg, 395)
    kinds = [[type(b).__name__ for b in stage] for stage in m.body]
    assert kinds[1] == ["Bottleneck"] * 3 + ["NonLocalBlock", "Bottleneck", "NonLocalBlock"]
    assert kinds[2] == ["Bottleneck"] * 4 + ["NonLocalBlock", "Bottleneck"] * 2 + ["NonLocalBlock"]
    nls = [b for b in m.body.modules() if isinstance(b, NonLocalBlock)]
    assert [b.theta.weight.shape[:2] for b in nls] == [(1, 512)] * 2 + [(1, 1024)] * 3
    assert all(b.affinity == "dot_over_n" for b in nls)
    bn = m.head.bottleneck.weight.detach()
    assert abs(bn.mean().item() - 1.0) < 0.002 and 0.008 < bn.std().item() < 0.012
    assert not m.head.bottleneck.bias.requires_grad and m.head.classifier.bias is None
    assert 0.0008 < m.head.classifier.weight.std().item() < 0.0012


def test_agw_after_stage_option_keeps_the_earlier_layout():
    cfg = load_cfg_file(
        str(REPO / "configs" / "agw_cpu_demo.yml"),
        [
            "MODEL.BACKBONE.PRETRAIN_PATH",
            str(MOBILENET_WEIGHTS),
            "MODEL.AGW.NON_LOCAL_POSITION",
            "after_stage",
        ],
    )
    m = build_model(cfg, 5)
    names = [type(b).__name__ for b in m.body]
    assert names[5:7] == ["NonLocalBlock"] * 2 and names[14:17] == ["NonLocalBlock"] * 3


def test_zero_padding_is_agws_pad():
    """``INPUT.PADDING_MODE constant`` (AGW ``train.py``: ``transforms.Pad(10)``, torchvision's
    zero fill) in our op order; the core default ``edge`` replicates the border instead."""
    cfg = _recipe("agw_r50_sysu.yml", ["INPUT.SIZE_TRAIN", "(40, 20)", "INPUT.PADDING", "10"])
    img = Image.new("RGB", (20, 40), (200, 100, 50))
    ref = T.Compose(
        [
            T.RandomHorizontalFlip(0.5),
            T.Resize((40, 20), interpolation=T.InterpolationMode.BICUBIC),
            T.Pad(10),
            T.RandomCrop((40, 20)),
            T.ToTensor(),
            T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    for seed in range(4):
        torch.manual_seed(seed)
        ours = build_transforms(cfg, True)(img)
        torch.manual_seed(seed)
        assert close(ours, ref(img))
    # a crop that reaches the border shows the zero fill (black) somewhere over a few draws
    black = torch.tensor([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225])[:, None]
    seen = False
    for seed in range(8):
        torch.manual_seed(seed)
        out = build_transforms(cfg, True)(img).flatten(1)
        seen |= bool(torch.isclose(out, black, atol=1e-4).all(0).any())
    assert seen


def test_agw_sampler_draws_identities_per_batch_and_images_with_replacement():
    """``DATALOADER.VI_SAMPLER agw``: AGW ``utils.py`` ``IdentitySampler``: per batch
    ``np.random.choice(labels, P, replace=False)``, then per identity
    ``np.random.choice(color_pos[id], K)`` and ``np.random.choice(thermal_pos[id], K)`` (with
    replacement). Checked on its properties (numpy's draws are not torch's)."""
    from dgnet_plugin.data.samplers import CrossModalityBatchSampler

    pids = [p for p in range(6) for _ in range(3)] * 2
    mods = ["visible"] * 18 + ["infrared"] * 18
    s = CrossModalityBatchSampler(pids, mods, 4, 3, seed=0, mode="agw")
    it = iter(s)
    repeated = False
    for _ in range(50):
        batch = next(it)
        assert len(batch) == 4 * (3 + 3)
        ids = [pids[i] for i in batch[::6]]
        assert len(set(ids)) == 4  # distinct identities within a batch
        for j in range(4):
            vis, ir = batch[6 * j : 6 * j + 3], batch[6 * j + 3 : 6 * j + 6]
            assert {pids[i] for i in vis + ir} == {ids[j]}
            assert all(mods[i] == "visible" for i in vis) and all(mods[i] == "infrared" for i in ir)
            repeated |= len(set(vis)) < 3  # 3 images, 3 draws: a repeat is likely in 50 batches
    assert repeated
    with pytest.raises(ValueError, match="VI_SAMPLER"):
        CrossModalityBatchSampler(pids, mods, 4, 3, mode="random")


def _agw_batch(gen, n=2):
    return (
        torch.randn(2 * n, 3, 64, 32, generator=gen),
        torch.randn(2 * n, 1, 64, 32, generator=gen),
        torch.tensor([0, 0, 1, 1][: 2 * n]),
    )


def test_agw_step_losses_are_agws(tmp_path, monkeypatch):
    """One AGWEngine step: its terms equal ``train.py``'s ``loss_id = CE(out0, labels)`` and
    ``loss_tri = WRT(feat, labels)`` with ``feat, out0 = net(input1, input2)`` (both
    modalities in one forward) on the same batch and weights; one optimiser step."""
    engine = _engine(tmp_path, monkeypatch, "agw_cpu_demo.yml", [])
    gen = torch.Generator().manual_seed(3)
    x_v, x_i, pids = _agw_batch(gen)
    ref_model = copy.deepcopy(engine.model).train()
    out = ref_model.forward_pair(x_v, x_i)
    labels = torch.cat([pids, pids])
    ref = {
        "id": torch.nn.CrossEntropyLoss()(out["logits"], labels),
        "wrt": agw_wrt(out["pool"].double(), labels).float(),
    }
    engine.data = iter([{"img_v": x_v, "img_i": x_i, "pid_v": pids, "pid_i": pids}])
    steps = _count_steps(engine)
    log = engine.run_step(0)
    assert close(log["id"], ref["id"]) and torch.allclose(log["wrt"], ref["wrt"], rtol=1e-4)
    assert steps == {"model": 1}


# ---------------------------------------------------------------------------- D2RL / UNIT

TINY = [
    "MODEL.GEN.DIM",
    "4",
    "MODEL.GEN.N_RES",
    "2",
    "MODEL.DIS.DIM",
    "4",
    "MODEL.DIS.NUM_SCALES",
    "2",
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


class NoiseLog:
    """Wraps ``gen.sample`` and records each ``(mu, n)`` it draws, so the written-out UNIT
    formulas can add the very same noise to the same latent."""

    def __init__(self, gen):
        self.drawn = []
        real = gen.sample

        def sample(mu):
            z = real(mu)
            self.drawn.append((mu.detach().clone(), (z - mu).detach().clone()))
            return z

        gen.sample = sample

    def noise_of(self, h):
        hits = [n for mu, n in self.drawn if mu.shape == h.shape and torch.allclose(mu, h)]
        assert len(hits) == 1, "expected one recorded draw for this latent"
        return hits[0]


def unit_ms_dis_gen_loss(dis, x):
    """UNIT ``networks.py`` ``MsImageDis.calc_gen_loss`` (lsgan): ``sum_s mean((out - 1) ** 2)``."""
    return sum(torch.mean((o - 1) ** 2) for o in dis(x))


def unit_ms_dis_dis_loss(dis, fake, real):
    """UNIT ``MsImageDis.calc_dis_loss`` (lsgan):
    ``sum_s mean(out0 ** 2) + mean((out1 - 1) ** 2)``."""
    return sum(
        torch.mean((o0 - 0) ** 2) + torch.mean((o1 - 1) ** 2)
        for o0, o1 in zip(dis(fake), dis(real))
    )


@pytest.fixture(scope="module")
def d2rl():
    cfg = load_cfg_file(str(REPO / "configs" / "d2rl_cpu_demo.yml"), TINY)
    torch.manual_seed(0)
    return cfg, build_model(cfg, 5).train()


def test_unit_generator_terms_are_units_gen_update(d2rl):
    """UNIT ``trainer.py`` ``UNIT_Trainer.gen_update`` (a = visible, b = infrared; vgg_w 0):
    recon from ``h + n``, cross decode from ``h + n``, re-encode and decode ``h_recon +
    n_recon`` for the cycle, KL = ``mean(h ** 2)`` (``__compute_kl``) on ``h`` and
    ``h_recon``, L1 = ``mean(|input - target|)`` (``recon_criterion``), LSGAN on both
    translations; each term times its weight."""
    cfg, m = d2rl
    gen = copy.deepcopy(m.gen)
    noise = NoiseLog(gen)
    g = torch.Generator().manual_seed(4)
    x_a, x_b = (
        torch.rand(2, 3, 32, 16, generator=g) * 2 - 1,
        torch.rand(2, 1, 32, 16, generator=g) * 2 - 1,
    )
    w = cfg.LOSS
    terms, img = unit_translation_losses(gen, m.dis_v, m.dis_i, x_a, x_b)
    weights = d2rl_loss_weights(w)  # the engine weights the unweighted terms (the loss rule)
    terms = {k: weights[k] * v for k, v in terms.items()}
    with torch.no_grad():
        h_a, h_b = gen.encode(x_a, "a"), gen.encode(x_b, "b")
        n_a, n_b = noise.noise_of(h_a), noise.noise_of(h_b)
        x_a_recon, x_b_recon = gen.decode(h_a + n_a, "a"), gen.decode(h_b + n_b, "b")
        x_ba, x_ab = gen.decode(h_b + n_b, "a"), gen.decode(h_a + n_a, "b")
        h_b_recon, h_a_recon = gen.encode(x_ba, "a"), gen.encode(x_ab, "b")
        n_b_recon, n_a_recon = noise.noise_of(h_b_recon), noise.noise_of(h_a_recon)
        x_aba = gen.decode(h_a_recon + n_a_recon, "a")
        x_bab = gen.decode(h_b_recon + n_b_recon, "b")

        def recon(i, t):
            return torch.mean(torch.abs(i - t))

        def kl(mu):
            return torch.mean(torch.pow(mu, 2))

        ref = {
            "gan": w.GAN_W * unit_ms_dis_gen_loss(m.dis_v, x_ba)
            + w.GAN_W * unit_ms_dis_gen_loss(m.dis_i, x_ab),
            "recon_x": w.RECON_X_W * recon(x_a_recon, x_a) + w.RECON_X_W * recon(x_b_recon, x_b),
            "kl": w.RECON_KL_W * kl(h_a) + w.RECON_KL_W * kl(h_b),
            "cyc_x": w.RECON_X_CYC_W * recon(x_aba, x_a) + w.RECON_X_CYC_W * recon(x_bab, x_b),
            "cyc_kl": w.RECON_KL_CYC_W * kl(h_a_recon) + w.RECON_KL_CYC_W * kl(h_b_recon),
        }
    assert set(terms) == set(ref)
    for k in ref:
        assert close(terms[k].detach(), ref[k]), k
    assert close(img["y_fake"].detach(), x_ab) and close(img["x_fake"].detach(), x_ba)


def test_unit_discriminator_step_decodes_sampled_latents(d2rl):
    """UNIT ``trainer.py`` ``dis_update``: ``x_ba = gen_a.decode(h_b + n_b)``, ``x_ab =
    gen_b.decode(h_a + n_a)``; loss = ``gan_w * calc_dis_loss(x_ba, x_a) + gan_w *
    calc_dis_loss(x_ab, x_b)``. The recipe default ``MODEL.D2RL.DIS_FAKES sampled``;
    ``mean`` decodes ``h`` alone."""
    cfg, m = d2rl
    assert cfg.MODEL.D2RL.DIS_FAKES == "sampled"
    gen = copy.deepcopy(m.gen)
    noise = NoiseLog(gen)
    g = torch.Generator().manual_seed(5)
    x_a, x_b = (
        torch.rand(2, 3, 32, 16, generator=g) * 2 - 1,
        torch.rand(2, 1, 32, 16, generator=g) * 2 - 1,
    )
    with torch.no_grad():
        y_fake, x_fake = translate_pair(gen, x_a, x_b, sampled=True)
        h_a, h_b = gen.encode(x_a, "a"), gen.encode(x_b, "b")
        x_ba = gen.decode(h_b + noise.noise_of(h_b), "a")
        x_ab = gen.decode(h_a + noise.noise_of(h_a), "b")
        assert close(x_fake, x_ba) and close(y_fake, x_ab)
        ours = cfg.LOSS.GAN_W * (
            lsgan_dis_loss(m.dis_v(x_fake), m.dis_v(x_a))
            + lsgan_dis_loss(m.dis_i(y_fake), m.dis_i(x_b))
        )
        ref = cfg.LOSS.GAN_W * unit_ms_dis_dis_loss(
            m.dis_v, x_ba, x_a
        ) + cfg.LOSS.GAN_W * unit_ms_dis_dis_loss(m.dis_i, x_ab, x_b)
        assert close(ours, ref)
        y_mean, x_mean = translate_pair(gen, x_a, x_b, sampled=False)
        assert close(y_mean, gen.decode(h_a, "b")) and close(x_mean, gen.decode(h_b, "a"))


def test_unit_discriminator_is_units_msimagedis():
    """UNIT ``networks.py`` ``MsImageDis`` (the recipes' ``MODEL.DIS.NAME``): per scale,
    ``Conv2dBlock(4, 2, 1)`` = reflect pad 1, 4x4 conv stride 2, LeakyReLU(0.2), no norm,
    ``n_layer`` times (width doubling after the first), then a 1x1 conv; the next scale sees
    ``AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)`` of the input."""
    from dgnet_plugin.methods.d2rl import UNITDiscriminator

    torch.manual_seed(0)
    d = UNITDiscriminator(in_ch=1, dim=4, n_layer=3, num_scales=2)
    x = torch.randn(2, 1, 32, 16)
    ref, inp = [], x
    for net in d.scales:
        h = inp
        for block in list(net)[:-1]:
            w, b = block.conv.weight, block.conv.bias
            h = F.leaky_relu(F.conv2d(F.pad(h, (1, 1, 1, 1), mode="reflect"), w, b, 2), 0.2)
        last = list(net)[-1]
        ref.append(F.conv2d(h, last.weight, last.bias))
        inp = F.avg_pool2d(inp, 3, 2, 1, count_include_pad=False)
    with torch.no_grad():
        outs = d(x)
    assert [o.shape for o in outs] == [(2, 1, 4, 2), (2, 1, 2, 1)]
    assert all(close(o, r) for o, r in zip(outs, ref))
    assert [blk.conv.weight.shape[0] for blk in list(d.scales[0])[:-1]] == [4, 8, 16]


def ori_triplet(inputs, targets, margin):
    """mangye16/Cross-Modal-Re-ID-baseline ``loss.py`` ``OriTripletLoss`` (batch-hard,
    ``MarginRankingLoss(margin)``: ``mean(max(0, -(d_an - d_ap) + margin))``), the triplet
    form of the AGW code D2RL's T_F recipe follows."""
    n = inputs.size(0)
    dist = inputs.pow(2).sum(dim=1, keepdim=True).expand(n, n)
    dist = (dist + dist.t() - 2 * inputs @ inputs.t()).clamp(min=1e-12).sqrt()
    mask = targets.expand(n, n).eq(targets.expand(n, n).t())
    d_ap = torch.stack([dist[i][mask[i]].max() for i in range(n)])
    d_an = torch.stack([dist[i][mask[i] == 0].min() for i in range(n)])
    return torch.clamp(-(d_an - d_ap) + margin, min=0).mean()


def test_t_f_losses_are_ce_and_batch_hard_triplet(d2rl):
    """T_F: cross-entropy on the FC-N_p logits (``nn.CrossEntropyLoss``) + batch-hard triplet
    with margin ``LOSS.TRIPLET_MARGIN`` on the FC-128 embedding (AGW ``loss.py``
    ``OriTripletLoss``), weighted by ``LOSS.ID_W`` / ``TRIPLET_W``."""
    cfg, m = d2rl
    g = torch.Generator().manual_seed(6)
    u = torch.randn(8, 4, 32, 16, generator=g)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    net = copy.deepcopy(m.reid_net).train()
    torch.manual_seed(0)
    weights = d2rl_loss_weights(cfg.LOSS)
    ours = reid_losses(net, u, pids, cfg.LOSS.TRIPLET_MARGIN)
    ours = {k: weights[k] * v for k, v in ours.items()}
    torch.manual_seed(0)
    out = net(u)
    w = cfg.LOSS
    assert close(ours["id"].detach(), w.ID_W * torch.nn.CrossEntropyLoss()(out["logits"], pids))
    ref_tri = w.TRIPLET_W * ori_triplet(out["embed"].double(), pids, w.TRIPLET_MARGIN)
    assert torch.allclose(ours["triplet"].detach().double(), ref_tri.detach(), rtol=1e-4)


# ------------------------------------------------------------------- update order (engine)


def _engine(tmp_path, monkeypatch, config, opts):
    """The method's engine on synthetic batches: the data loading is replaced (5 identities,
    no test set), everything else is the engine's own code."""
    import dgnet_plugin.engine.defaults as defaults
    from dgnet_plugin.methods.agw import engine as agw_engine
    from dgnet_plugin.modeling.meta_arch import META_ARCH_REGISTRY  # noqa: F401

    monkeypatch.setattr(defaults, "load_train_set", lambda cfg: ([], 5))
    for mod in (d2rl_engine, agw_engine):
        monkeypatch.setattr(mod, "load_cross_modality_train_set", lambda cfg: ([], [], None))
    cfg = load_cfg_file(
        str(REPO / "configs" / config),
        [
            "MODEL.BACKBONE.PRETRAIN_PATH",
            str(MOBILENET_WEIGHTS),
            "DATASETS.TESTS",
            "()",
            "OUTPUT_DIR",
            str(tmp_path),
            "MODEL.DEVICE",
            "cpu",
            *opts,
        ],
    )
    from dgnet_plugin.engine import ENGINE_REGISTRY

    torch.manual_seed(0)
    return ENGINE_REGISTRY.get(cfg.ENGINE.NAME)(cfg)


def _count_steps(engine) -> dict:
    """Wrap every optimiser's ``step`` to count calls per update phase (and their order in
    ``engine.step_order``)."""
    counts = {name: 0 for name in engine.optimizers}
    engine.step_order = []
    for name, opt in engine.optimizers.items():
        real = opt.step

        def step(*a, _real=real, _name=name, **k):
            counts[_name] += 1
            engine.step_order.append(_name)
            return _real(*a, **k)

        opt.step = step
    return counts


def test_d2rl_update_order_per_phase(tmp_path, monkeypatch):
    """2 iterations of T_I alone (D then G), 2 of T_F alone (T_F only), 2 joint (D, then G and
    T_F from one backward): optimiser steps counted per phase and iteration."""
    engine = _engine(
        tmp_path,
        monkeypatch,
        "d2rl_cpu_demo.yml",
        [*TINY, "MODEL.D2RL.WARMUP_GEN_ITER", "2", "MODEL.D2RL.WARMUP_REID_ITER", "2"],
    )
    gen = torch.Generator().manual_seed(7)

    def batches():
        while True:
            x_v, x_i, pids = (
                torch.randn(4, 3, 32, 16, generator=gen),
                torch.randn(4, 1, 32, 16, generator=gen),
                torch.tensor([0, 1, 2, 3]),
            )
            yield {"img_v": x_v, "img_i": x_i, "pid_v": pids, "pid_i": pids}

    engine.data = batches()
    counts = _count_steps(engine)
    per_iter = []
    for it in range(6):
        engine.step_order.clear()
        log = engine.run_step(it)
        per_iter.append(list(engine.step_order))
        assert ("dis_adv" in log) == (it < 2 or it >= 4)
        assert ("id" in log) == (it >= 2)
    assert per_iter == [["dis", "gen"]] * 2 + [["reid"]] * 2 + [["dis", "gen", "reid"]] * 2
    assert counts == {"gen": 4, "dis": 4, "reid": 4}


def test_d2rl_engine_passes_the_latent_choices(tmp_path, monkeypatch):
    """The D step decodes sampled latents (``DIS_FAKES sampled``, UNIT's dis_update), T_F's
    warm-up sees ``TF_TRANSLATION``'s; ``mean`` reaches both."""
    for dis_fakes, tf in (("sampled", "sampled"), ("mean", "mean")):
        engine = _engine(
            tmp_path,
            monkeypatch,
            "d2rl_cpu_demo.yml",
            [
                *TINY,
                "MODEL.D2RL.WARMUP_GEN_ITER",
                "1",
                "MODEL.D2RL.WARMUP_REID_ITER",
                "1",
                "MODEL.D2RL.DIS_FAKES",
                dis_fakes,
                "MODEL.D2RL.TF_TRANSLATION",
                tf,
            ],
        )
        seen = []
        real = d2rl_engine.translate_pair

        def spy(gen, xg, yg, sampled, _real=real, _seen=seen):
            _seen.append(sampled)
            return _real(gen, xg, yg, sampled)

        monkeypatch.setattr(d2rl_engine, "translate_pair", spy)
        pids = torch.tensor([0, 1, 2, 3])
        b = {
            "img_v": torch.randn(4, 3, 32, 16),
            "img_i": torch.randn(4, 1, 32, 16),
            "pid_v": pids,
            "pid_i": pids,
        }
        engine.data = itertools.repeat(b)
        engine.run_step(0)  # T_I alone: the D step
        engine.run_step(1)  # T_F alone
        assert seen == [dis_fakes == "sampled", tf == "sampled"]
        monkeypatch.setattr(d2rl_engine, "translate_pair", real)


# ------------------------------------------------------------------------------ recipes

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

AGW_RELEASED = {
    # key: (value, source in mangye16/Cross-Modal-Re-ID-baseline)
    "MODEL.BACKBONE.NAME": ("resnet50", "train.py --arch resnet50"),
    "MODEL.BACKBONE.LAST_STRIDE": (1, "model.py resnet50(last_conv_stride=1)"),
    "MODEL.HEADS.NAME": ("BNNeckHead", "model.py bottleneck BatchNorm1d + classifier"),
    "MODEL.HEADS.POOL": ("gem", "model.py gm_pool 'on' (p = 3)"),
    "MODEL.AGW.NON_LOCAL": (True, "train.py --method agw: no_local 'on'"),
    "MODEL.AGW.NON_LOCAL_INTER": (1, "model.py Non_local reduc_ratio // reduc_ratio"),
    "MODEL.AGW.NON_LOCAL_AFFINITY": ("dot_over_n", "model.py Non_local f / N"),
    "MODEL.AGW.NON_LOCAL_POSITION": ("interleaved", "model.py NL_2_idx, NL_3_idx"),
    "MODEL.AGW.BN_GAMMA_INIT": ("normal", "model.py weights_init_kaiming N(1, 0.01)"),
    "MODEL.AGW.IR_INPUT": ("rgb3", "data_loader.py: infrared images read as RGB"),
    "INPUT.SIZE_TRAIN": ((288, 144), "train.py --img_h 288 --img_w 144"),
    "INPUT.SIZE_TEST": ((288, 144), "train.py transform_test Resize"),
    "INPUT.FLIP_PROB": (0.5, "train.py RandomHorizontalFlip()"),
    "INPUT.PADDING": (10, "train.py Pad(10)"),
    "INPUT.PADDING_MODE": ("constant", "train.py Pad(10): zero fill"),
    "INPUT.REA.PROB": (0.0, "train.py: no random erasing"),
    "INPUT.PIXEL_MEAN": (IMAGENET[0], "train.py Normalize"),
    "INPUT.PIXEL_STD": (IMAGENET[1], "train.py Normalize"),
    "DATALOADER.NUM_IDS": (8, "train.py --batch-size 8"),
    "DATALOADER.NUM_INSTANCE": (4, "train.py --num_pos 4"),
    "DATALOADER.VI_SAMPLER": ("agw", "utils.py IdentitySampler"),
    "SOLVER.AMP": ("off", "train.py: float32"),
    "SOLVER.REID.OPTIM": ("sgd", "train.py optim.SGD"),
    "SOLVER.REID.BASE_LR": (0.01, "train.py base params 0.1 * lr, lr 0.1"),
    "SOLVER.REID.HEADS_LR_FACTOR": (10.0, "train.py bottleneck + classifier at lr"),
    "SOLVER.REID.MOMENTUM": (0.9, "train.py momentum=0.9"),
    "SOLVER.REID.NESTEROV": (True, "train.py nesterov=True"),
    "SOLVER.REID.WEIGHT_DECAY": (5e-4, "train.py weight_decay=5e-4"),
    "SOLVER.WARMUP_ITERS": (7000, "train.py 10 warm-up epochs x 700"),
    "SOLVER.WARMUP_STAGES": (10, "train.py adjust_learning_rate: per epoch"),
    "SOLVER.STEPS": ((14000, 35000), "train.py epochs 20, 50 x 700"),
    "SOLVER.REID_GAMMA": (0.1, "train.py x 0.1, x 0.01"),
    "SOLVER.MAX_ITER": (57000, "train.py 81 epochs x ~700"),
    "TEST.FLIP": (False, "test.py: no flip"),
    "TEST.CROSS_MODALITY.TRIALS": (10, "test.py 10 trials"),
}

_UNIT = {
    # key: (value, source in mingyuliutw/UNIT configs/unit_edges2handbags_folder.yaml / code)
    "MODEL.GEN.DIM": (64, "yaml gen.dim"),
    "MODEL.GEN.N_DOWNSAMPLE": (2, "yaml gen.n_downsample"),
    "MODEL.GEN.N_RES": (4, "yaml gen.n_res"),
    "MODEL.GEN.N_SHARED": (0, "trainer.py two independent VAEGen"),
    "MODEL.DIS.NAME": ("UNITDiscriminator", "networks.py MsImageDis"),
    "MODEL.DIS.DIM": (64, "yaml dis.dim"),
    "MODEL.DIS.N_LAYER": (4, "yaml dis.n_layer"),
    "MODEL.DIS.NUM_SCALES": (3, "yaml dis.num_scales"),
    "MODEL.D2RL.DIS_FAKES": ("sampled", "trainer.py dis_update decode(h + n)"),
    "LOSS.GAN_W": (1.0, "yaml gan_w"),
    "LOSS.RECON_X_W": (10.0, "yaml recon_x_w"),
    "LOSS.RECON_KL_W": (0.01, "yaml recon_kl_w"),
    "LOSS.RECON_X_CYC_W": (10.0, "yaml recon_x_cyc_w"),
    "LOSS.RECON_KL_CYC_W": (0.01, "yaml recon_kl_cyc_w"),
    "SOLVER.GEN.LR": (1e-4, "yaml lr"),
    "SOLVER.GEN.BETAS": ((0.5, 0.999), "yaml beta1, beta2"),
    "SOLVER.GEN.WEIGHT_DECAY": (1e-4, "yaml weight_decay"),
    "SOLVER.DIS.LR": (1e-4, "yaml lr"),
    "SOLVER.DIS.BETAS": ((0.5, 0.999), "yaml beta1, beta2"),
    "SOLVER.DIS.WEIGHT_DECAY": (1e-4, "yaml weight_decay"),
    "SOLVER.GAMMA": (0.5, "yaml gamma"),
    "SOLVER.STEPS": ((100000,), "yaml step_size 100000"),
    "SOLVER.AMP": ("off", "UNIT and AGW: float32"),
}
_AGW_FOR_T_F = {
    k: AGW_RELEASED[k]
    for k in (
        "MODEL.BACKBONE.LAST_STRIDE",
        "INPUT.SIZE_TRAIN",
        "INPUT.SIZE_TEST",
        "INPUT.FLIP_PROB",
        "INPUT.PADDING",
        "INPUT.PADDING_MODE",
        "INPUT.REA.PROB",
        "INPUT.PIXEL_MEAN",
        "INPUT.PIXEL_STD",
        "DATALOADER.NUM_IDS",
        "DATALOADER.NUM_INSTANCE",
        "DATALOADER.VI_SAMPLER",
        "SOLVER.REID.OPTIM",
        "SOLVER.REID.BASE_LR",
        "SOLVER.REID.HEADS_LR_FACTOR",
        "SOLVER.REID.MOMENTUM",
        "SOLVER.REID.NESTEROV",
        "SOLVER.REID.WEIGHT_DECAY",
        "SOLVER.WARMUP_STAGES",
        "SOLVER.REID_GAMMA",
        "TEST.FLIP",
        "TEST.CROSS_MODALITY.TRIALS",
    )
}
D2RL_RELEASED = {
    **_UNIT,
    **_AGW_FOR_T_F,
    "MODEL.BACKBONE.NAME": ("resnet50", "D2RL section 3.3 (ResNet-50)"),
    "MODEL.BACKBONE.IN_CHANNELS": (4, "D2RL section 3.2 ([RGB; IR])"),
    "MODEL.D2RL.REID_GRAD_TO_GEN": (True, "D2RL abstract: trained jointly, end to end"),
}
D2RL_SCHEDULE = {
    # T_F's AGW schedule from T_F's first iteration, in AGW epochs of that dataset
    "d2rl_r50_sysu.yml": (20000, 700),
    "d2rl_r50_regdb.yml": (10000, 65),
}


def _get(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return tuple(node) if isinstance(node, list | tuple) else node


@pytest.mark.parametrize(
    "name, table",
    [
        ("agw_r50_sysu.yml", AGW_RELEASED),
        ("d2rl_r50_sysu.yml", D2RL_RELEASED),
        ("d2rl_r50_regdb.yml", D2RL_RELEASED),
    ],
)
def test_recipe_values_are_the_released_ones(name, table):
    cfg = _recipe(name)
    wrong = {
        k: (_get(cfg, k), v, src)
        for k, (v, src) in table.items()
        if _get(cfg, k) != pytest.approx(v)
    }
    assert not wrong, wrong


@pytest.mark.parametrize("name", sorted(D2RL_SCHEDULE))
def test_d2rl_t_f_warmup_and_milestones_are_agws_epochs(name):
    start, per_epoch = D2RL_SCHEDULE[name]
    s = _recipe(name).SOLVER
    assert s.WARMUP_ITERS == 10 * per_epoch  # AGW train.py: 10 warm-up epochs
    assert tuple(s.REID_STEPS) == (start + 20 * per_epoch, start + 50 * per_epoch)
