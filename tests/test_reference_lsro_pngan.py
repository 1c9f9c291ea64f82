"""LSRO and PN-GAN against their released code: each reference formula is written out here from
the released source (layumi/Person-reID_GAN, layumi/DCGAN-tensorflow, naiq/PN_GAN) on small
fixed tensors and compared with the project's value; the update order counts optimiser steps;
the full recipes are compared with tables of released values."""

from __future__ import annotations

import itertools
import math
import os

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, SHARED_DATA
from torch import nn

import dgnet_plugin  # noqa: F401
from dgnet_plugin.config import load_cfg_file
from dgnet_plugin.engine.precision import PhaseUpdater
from dgnet_plugin.losses import vanilla_gan_dis_loss, vanilla_gan_gen_loss
from dgnet_plugin.methods.lsro.engine import (
    LSROEngine,
    matconvnet_classifier_init,
    matconvnet_param_groups,
)
from dgnet_plugin.methods.lsro.gan import DCGAN, LSRODCGANEngine
from dgnet_plugin.methods.lsro.stages import dcgan_iterations
from dgnet_plugin.methods.pngan.data import (
    epoch_step_decay_factor,
    ordered_pair_count,
    pair_schedule,
)
from dgnet_plugin.methods.pngan.gan import PNGANGeneratorEngine, PoseGAN
from dgnet_plugin.modeling.blocks import ResBlock
from dgnet_plugin.modeling.discriminators import DCGANDiscriminator, PNGANPatchDiscriminator
from dgnet_plugin.modeling.generators import DCGANGenerator, ResnetGenerator
from dgnet_plugin.offline_augmentation.label_assignment import label_assignment_loss

POSES_CSV = str(SHARED_DATA / "cuhk03_pose_mask" / "cuhk03_poses.csv")


# ------------------------------------------------------------------ PN-GAN schedule (bug 3)
#: a small known identity list: file names as Market's <pid>_c<cam>..., the counts per identity
#: 1, 2, 3, 5 (pid 4 has one image: no pair); pid 9's images have no pose
IDS = {1: 1, 2: 2, 3: 3, 4: 5, 9: 4}
ITEMS = [(f"{pid:04d}_c1s1_{k:06d}_00.jpg", pid, 0) for pid, n in IDS.items() for k in range(n)]


def has_pose(path: str) -> bool:
    return not path.startswith("0009")


def released_epoch_pairs(items, has_pose) -> list:
    """naiq/PN_GAN script/GAN/dataset.py Market_DataLoader.__init__: the images with a pose
    image, then ``data += list(itertools.permutations(tmp, 2))`` for each identity."""
    images = [os.path.basename(it[0]) for it in items if has_pose(it[0])]  # os.listdir names
    data = []
    for i in sorted({int(im.split("_")[0]) for im in images}):
        tmp = [j for j in images if int(j.split("_")[0]) == i]
        data += list(itertools.permutations(tmp, 2))
    return data


def test_pngan_epoch_is_every_ordered_same_identity_pair():
    """naiq/PN_GAN script/GAN/dataset.py (permutations), train.py load_data (batch 32,
    drop_last) and config.py (MAX_EPOCH 20, LR_DECAY 10): iterations = 20 x (pairs // 32)."""
    pairs = released_epoch_pairs(ITEMS, has_pose)
    assert len(pairs) == 0 + 2 + 6 + 20 == ordered_pair_count([1, 2, 3, 5])
    for batch, epochs in ((4, 20), (3, 7), (28, 20)):
        s = pair_schedule(ITEMS, has_pose, batch, epochs, 10)
        per_epoch = len(pairs) // batch  # DataLoader(drop_last=True) length
        assert s["pairs"] == len(pairs) and s["iters_per_epoch"] == per_epoch
        assert s["max_iter"] == epochs * per_epoch and s["decay_start"] == 10 * per_epoch
        assert s["images"] == 11 and s["identities"] == 4
    with pytest.raises(ValueError, match="cannot fill one batch"):
        pair_schedule(ITEMS, has_pose, 29, 20, 10)
    # Market-1501's train set (12,936 images, 751 identities): at least 12,936^2 / 751 -
    # 12,936 pairs (Cauchy-Schwarz), i.e. >= 131,180 iterations of 32 in 20 epochs, 16x the
    # 8,000 iterations of the earlier recipe
    sizes = [12936 // 751 + (1 if i < 12936 % 751 else 0) for i in range(751)]
    n = ordered_pair_count(sizes)
    assert n >= 12936**2 / 751 - 12936 and 20 * (n // 32) >= 131180


def test_pngan_pairs_are_each_ordered_pair_once_per_epoch():
    """naiq/PN_GAN dataset.py (permutations of each identity's images, random.shuffle) and
    train.py (DataLoader shuffle=True, batch_size, drop_last=True): an epoch of
    len(pairs) // batch batches holds distinct ordered pairs; two processes split each batch."""
    from dgnet_plugin.methods.pngan.data import OrderedPairBatchSampler

    groups = [[0], [1, 2], [3, 4, 5], [6, 7, 8, 9, 10]]
    released = {p for g in groups for p in itertools.permutations(g, 2)}
    sampler = OrderedPairBatchSampler(groups, 4, seed=3)
    stream = iter(sampler)
    epoch = [p for _ in range(len(released) // 4) for p in next(stream)]
    assert len(epoch) == len(set(epoch)) == 28 and set(epoch) <= released
    nxt = [p for _ in range(7) for p in next(stream)]  # epoch 2: another order, same pairs
    assert set(nxt) <= released and nxt != epoch
    # two processes: each half of every global batch; a resumed sampler continues
    halves = [iter(OrderedPairBatchSampler(groups, 4, 3, 0, r, 2)) for r in (0, 1)]
    again = [p for _ in range(7) for h in halves for p in next(h)]
    assert again == epoch
    resumed = iter(OrderedPairBatchSampler(groups, 4, 3, start=7))
    assert next(resumed) == nxt[:4]


def test_pngan_learning_rate_decays_once_per_epoch_as_the_released_lambda():
    """naiq/PN_GAN script/GAN/train.py Optimizer: ``lr_policy = lambda epoch: 1 - max(0, epoch -
    LR_DECAY) / LR_DECAY`` with ``scheduler.step()`` at the start of epochs 1..20, so epoch e
    runs at lr_policy(e)."""
    per_epoch = 7
    for it in range(20 * per_epoch):
        epoch = it // per_epoch + 1

        def lr_policy(e):
            return 1 - 1 * max(0, e - 10) / 10

        assert epoch_step_decay_factor(it, per_epoch, 10) == pytest.approx(lr_policy(epoch))
    assert epoch_step_decay_factor(10 * per_epoch, per_epoch, 10) == pytest.approx(0.9)
    assert epoch_step_decay_factor(20 * per_epoch - 1, per_epoch, 10) == 0.0


def test_pngan_generator_stage_gets_its_length_from_the_data(tiny_market):
    """The pose_gan stage's options: SOLVER.MAX_ITER = PNGAN.EPOCHS x (ordered pairs of the
    training images with a pose // GAN.IMS_PER_BATCH), counted as the released loader does."""
    from dgnet_plugin.data import load_train_set
    from dgnet_plugin.data.pose import build_keypoint_provider
    from dgnet_plugin.methods.pngan.stages import pose_gan_config

    demo = str(REPO / "configs" / "pngan_cuhk03_cpu_demo.yml")
    cfg = load_cfg_file(
        demo,
        ["POSE.SOURCE", POSES_CSV, "DATASETS.ROOT", str(tiny_market), "PNGAN.EPOCHS", "20"],
    )
    items, _ = load_train_set(cfg)
    provider = build_keypoint_provider(POSES_CSV)
    pairs = released_epoch_pairs(items, lambda p: provider(p) is not None)
    per_epoch = len(pairs) // cfg.GAN.IMS_PER_BATCH
    opts = pose_gan_config(cfg)
    assert opts["SOLVER.MAX_ITER"] == 20 * per_epoch > 0
    assert opts["GAN.DECAY_START"] == 10 * per_epoch
    assert opts["PNGAN.ITERS_PER_EPOCH"] == per_epoch
    # PNGAN.EPOCHS 0 (the demo): GAN.MAX_ITER as given
    cfg.defrost()
    cfg.PNGAN.EPOCHS = 0
    opts = pose_gan_config(cfg)
    assert opts["SOLVER.MAX_ITER"] == cfg.GAN.MAX_ITER and "PNGAN.ITERS_PER_EPOCH" not in opts


# ------------------------------------------------------------------ losses
LOGITS = torch.tensor(
    [[2.0, 0.0, -1.0, 0.5], [1.0, 2.0, 3.0, 4.0], [0.5, 0.0, -1.0, 0.0], [0.0, 0.3, 0.2, -2.0]]
)
PIDS = torch.tensor([0, -1, 2, -1])
GENERATED = torch.tensor([False, True, False, True])


def test_lsro_loss_against_vl_nnloss_labelsmooth():
    """layumi/Person-reID_GAN matlab/vl_nnloss.m, case 'labelsmooth' (forward and backward),
    opts.rate 0, opts.gan 1; generated images carry label 0. The summed loss's derivative is
    divided by the batch size in examples/cnn_train_dag.m accumulateGradients."""
    x, n, k = LOGITS, LOGITS.shape[0], LOGITS.shape[1]
    xmax = x.max(1).values
    ex = torch.exp(x - xmax[:, None])
    ci = PIDS.clamp(min=0)
    t1 = xmax + torch.log(ex.sum(1)) - x[torch.arange(n), ci]
    part2 = torch.log(ex.sum(1)) - (x - xmax[:, None]).sum(1) * 1 / k
    rate, gan_w = 0.0, 1.0
    t = (1 - rate) * t1 + rate * part2
    t = torch.where(GENERATED, part2 * gan_w, t)
    released = t.sum() / n
    # backward: softmax - onehot for the real images, softmax - 1/K for the generated ones
    soft = ex / ex.sum(1, keepdim=True)
    d1 = soft.clone()
    d1[~GENERATED, ci[~GENERATED]] -= 1
    d2 = soft - 1 / k
    grad = torch.where(GENERATED[:, None], d2 * gan_w, (1 - rate) * d1 + rate * d2) / n

    logits = LOGITS.clone().requires_grad_(True)
    ours = label_assignment_loss(logits, PIDS, GENERATED, "hard", "lsro")
    ours.backward()
    torch.testing.assert_close(ours.detach(), released, rtol=1e-5, atol=0)
    torch.testing.assert_close(logits.grad, grad, rtol=1e-5, atol=1e-7)
    # and the LSRO engine's loss is that loss
    cfg = load_cfg_file(str(REPO / "configs" / "lsro_r50.yml"))
    engine = object.__new__(LSROEngine)
    engine.cfg = cfg
    got = engine.label_loss(LOGITS, {"pid": PIDS, "generated": GENERATED})
    torch.testing.assert_close(got, released, rtol=1e-5, atol=0)


def tf_sigmoid_cross_entropy_with_logits(x, z):
    """TensorFlow's documented formula: ``max(x, 0) - x * z + log(1 + exp(-|x|))``."""
    return x.clamp(min=0) - x * z + torch.log1p(torch.exp(-x.abs()))


def test_dcgan_losses_against_dcgan_tensorflow():
    """layumi/DCGAN-tensorflow model.py build_model: d_loss = mean(sce(D_logits, 1)) +
    mean(sce(D_logits_, 0)); g_loss = mean(sce(D_logits_, 1))."""
    real = torch.tensor([[2.0], [-0.5], [0.1], [4.0]]).view(4, 1, 1, 1)
    fake = torch.tensor([[-1.0], [0.3], [-3.0], [0.0]]).view(4, 1, 1, 1)
    d_loss = tf_sigmoid_cross_entropy_with_logits(real, 1.0).mean() + (
        tf_sigmoid_cross_entropy_with_logits(fake, 0.0).mean()
    )
    g_loss = tf_sigmoid_cross_entropy_with_logits(fake, 1.0).mean()
    torch.testing.assert_close(vanilla_gan_dis_loss([fake], [real]), d_loss, rtol=1e-5, atol=0)
    torch.testing.assert_close(vanilla_gan_gen_loss([fake]), g_loss, rtol=1e-5, atol=0)


class _CountingSGD(torch.optim.SGD):
    def __init__(self, params, name, log):
        super().__init__(params, lr=0.01)
        self.name, self.log = name, log

    def step(self, closure=None):
        self.log.append(self.name)
        return super().step(closure)


def _stub_engine(cls, cfg, model, batches, log):
    engine = object.__new__(cls)
    engine.cfg, engine.model = cfg, model
    engine.device = torch.device("cpu")
    engine.amp = PhaseUpdater("off", "cpu", cls.AMP_PHASES)
    engine.to_device = lambda b: b
    engine.optimizers = {
        k: _CountingSGD(getattr(model, k).parameters(), k, log) for k in ("gen", "dis")
    }
    engine.data = iter(batches)
    return engine


def test_lsro_dcgan_runs_two_generator_steps_per_discriminator_step():
    """layumi/DCGAN-tensorflow model.py train: per batch, d_optim once, then g_optim twice on
    the same batch_z ("Run g_optim twice to make sure that d_loss does not go to zero"), each
    g_optim evaluating G(z) anew."""
    cfg = load_cfg_file(str(REPO / "configs" / "lsro_r50.yml"))
    assert cfg.LSRO.G_STEPS_PER_D == 2
    torch.manual_seed(0)
    size = (32, 16)
    model = DCGAN(
        DCGANGenerator(100, 8, 3, size, arch="tensorflow", noise="uniform"),
        DCGANDiscriminator(3, 8, size, arch="tensorflow"),
    )
    forwards = []
    model.gen.register_forward_hook(lambda *a: forwards.append("G"))
    log: list[str] = []
    batches = [{"img": torch.rand(4, 3, *size) * 2 - 1} for _ in range(3)]
    engine = _stub_engine(LSRODCGANEngine, cfg, model, batches, log)
    for it in range(3):
        out = engine.run_step(it)
        assert set(out) == {"dis", "gan"}
    assert log == ["dis", "gen", "gen"] * 3
    assert forwards == ["G", "G"] * 3  # G(z) for D and the first G step, then G(z) again
    cfg.defrost()
    cfg.LSRO.G_STEPS_PER_D = 1  # the DCGAN paper
    log.clear()
    engine = _stub_engine(LSRODCGANEngine, cfg, model, batches[:2], log)
    for it in range(2):
        engine.run_step(it)
    assert log == ["dis", "gen"] * 2


def _tiny_pose_gan():
    torch.manual_seed(0)
    gen = ResnetGenerator(
        3 + 36, 3, 4, 1, 2, res_pad="zeros", res_post_relu=True, out_bias=False, init="default"
    )
    return PoseGAN(gen, PNGANPatchDiscriminator(3, 4))


def test_pngan_losses_and_order_against_the_released_train_loop():
    """naiq/PN_GAN script/GAN/train.py train: fake = G(src, pose); G step: MSE(D(fake), 1) +
    lambda_idt (10) * L1(fake, tgt); then the D step on the same fake: MSE(D(fake.detach()),
    0) + MSE(D(src), 1) (the *source* as the real image, weight 1)."""
    from dgnet_plugin.offline_augmentation.cyclegan import adversarial_losses

    cfg = load_cfg_file(str(REPO / "configs" / "pngan_r50.yml"), ["POSE.SOURCE", POSES_CSV])
    model = _tiny_pose_gan()
    g = torch.Generator().manual_seed(1)
    batch = {
        "img": torch.rand(2, 3, 64, 64, generator=g) * 2 - 1,
        "target": torch.rand(2, 3, 64, 64, generator=g) * 2 - 1,
        "pose": torch.rand(2, 36, 64, 64, generator=g),
    }
    with torch.no_grad():  # the released losses, from the networks before the steps
        fake = model.gen(torch.cat([batch["img"], batch["pose"]], 1))
        d_fake = model.dis(fake)[0].squeeze()
        d_src = model.dis(batch["img"])[0].squeeze()
        g_released = F.mse_loss(d_fake, torch.ones_like(d_fake)) + 10 * F.l1_loss(
            fake, batch["target"]
        )
        d_released = F.mse_loss(d_fake, torch.zeros_like(d_fake)) + F.mse_loss(
            d_src, torch.ones_like(d_src)
        )
    log: list[str] = []
    engine = _stub_engine(PNGANGeneratorEngine, cfg, model, [batch], log)
    engine.gan_gen_loss, engine.gan_dis_loss = adversarial_losses(cfg.LOSS.GAN_MODE)
    out = engine.run_step(0)
    assert log == ["gen", "dis"]  # G step, then D step on the same (detached) fake
    # the logged terms are unweighted; the engine weights them (the loss rule)
    got_g = out["gan"] + cfg.LOSS.POSE_L1 * out["pose_l1"]
    torch.testing.assert_close(got_g, g_released, rtol=1e-5, atol=0)
    torch.testing.assert_close(
        cfg.PNGAN.DIS_LOSS_WEIGHT * out["dis"], d_released, rtol=1e-5, atol=0
    )


# ------------------------------------------------------------------ architectures
def test_pngan_resblock_and_generator_as_released():
    """naiq/PN_GAN script/GAN/network.py ResBlock.forward: conv1 (3x3, padding 1 = zeros, bias,
    IN, ReLU), conv2 (3x3, zeros, bias, IN), + x, ReLU; Res_Generator's last conv has no bias."""
    torch.manual_seed(0)
    block = ResBlock(4, "in", "relu", "zeros", post_relu=True)
    x = torch.randn(2, 4, 6, 5)
    c1, c2 = block.conv1.conv, block.conv2.conv
    out = F.relu(F.instance_norm(F.conv2d(x, c1.weight, c1.bias, padding=1)))
    out = F.instance_norm(F.conv2d(out, c2.weight, c2.bias, padding=1))
    released = F.relu(out + x)
    torch.testing.assert_close(block(x), released, rtol=1e-5, atol=1e-6)
    # the default block (CycleGAN, DG-Net) is unchanged: no ReLU after the addition
    plain = ResBlock(4, "in", "relu", "zeros")
    plain.load_state_dict(block.state_dict())
    torch.testing.assert_close(plain(x), out + x, rtol=1e-5, atol=1e-6)
    gen = ResnetGenerator(6, 3, 8, 2, 2, res_pad="zeros", res_post_relu=True, out_bias=False)
    last = [m for m in gen.modules() if isinstance(m, nn.Conv2d)][-1]
    assert last.kernel_size == (7, 7) and last.bias is None


def test_pngan_pose_picture_is_a_3_channel_pose_image():
    """naiq/PN_GAN script/GAN/dataset.py __getitem__: the pose is an image read like a photo
    (3 channels, Normalize(0.5, 0.5): [-1, 1]); network.py Res_Generator: Conv2d(6, ngf, 7)."""
    from dgnet_plugin.data.pose import OPENPOSE_COLORS, render_pose_input

    kp = torch.full((17, 3), float("nan"))
    kp[0] = torch.tensor([15.5, 19.5, 1.0])  # the nose alone, at the centre of pixel (19, 15)
    pic = render_pose_input(kp, (64, 32), None, 1.0, 1.0, 0.2, "picture")
    assert pic.shape == (3, 64, 32) and pic.min() >= -1 and pic.max() <= 1
    assert pic[:, 0, 0].tolist() == [-1.0, -1.0, -1.0]  # black background
    expected = torch.tensor(OPENPOSE_COLORS[0], dtype=torch.float32) / 255 * 2 - 1
    torch.testing.assert_close(pic[:, 19, 15], expected, rtol=0, atol=0.05)
    cfg = load_cfg_file(str(REPO / "configs" / "pngan_r50.yml"), ["POSE.SOURCE", POSES_CSV])
    assert cfg.POSE.FORMAT == "picture"
    gen = PoseGAN.from_config(cfg).gen
    first = next(m for m in gen.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == 6 and first.kernel_size == (7, 7)


def test_pngan_patch_discriminator_as_released():
    """network.py Patch_Discriminator: 4x4 s2 p1 (no bias), LReLU; 4x4 s2 p1 IN LReLU x2;
    4x4 s1 p0 IN LReLU; 4x4 s1 p0 (no bias): a 26x10 map at 256x128."""
    d = PNGANPatchDiscriminator(3, 64)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    spec = [
        (c.in_channels, c.out_channels, c.stride[0], c.padding[0], c.bias is not None)
        for c in convs
    ]
    assert spec == [
        (3, 64, 2, 1, False), (64, 128, 2, 1, True), (128, 256, 2, 1, True),
        (256, 512, 1, 0, True), (512, 1, 1, 0, False),
    ]  # fmt: skip
    assert d(torch.zeros(1, 3, 256, 128))[0].shape == (1, 1, 26, 10)


def test_dcgan_tensorflow_layout():
    """layumi/DCGAN-tensorflow model.py generator / discriminator, ops.py (k 5, stride 2):
    G = linear z -> (H/16 x W/16 x 512) + BN + ReLU, deconv 5x5 to 256, 128, 64, 3 (tanh);
    D = conv 5x5 to 64, 128, 256, 512 (BN from the second), LReLU 0.2, linear -> 1."""
    g = DCGANGenerator(100, 64, 3, (128, 128), arch="tensorflow", noise="uniform")
    assert g.project.in_features == 100 and g.project.out_features == 512 * 8 * 8
    ups = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride) for m in ups] == [
        (512, 256, (5, 5), (2, 2)), (256, 128, (5, 5), (2, 2)),
        (128, 64, (5, 5), (2, 2)), (64, 3, (5, 5), (2, 2)),
    ]  # fmt: skip
    z = g.sample_noise(1000, torch.Generator().manual_seed(0))
    assert z.min() >= -1 and z.max() <= 1 and abs(z.mean().item()) < 0.02  # U(-1, 1)
    assert g(z[:2]).shape == (2, 3, 128, 128)
    d = DCGANDiscriminator(3, 64, (128, 128), arch="tensorflow")
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in convs] == [
        (c, (5, 5), (2, 2)) for c in (64, 128, 256, 512)
    ]
    assert d.head.in_features == 512 * 8 * 8
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 3


# ------------------------------------------------------------------ LSRO re-ID optimiser
def test_lsro_matconvnet_learning_rates_and_weight_decay():
    """layumi/Person-reID_GAN resnet52_market_gan.m: parameter i gets learningRate 0.02 (even
    i: BN scales) or 0.001 (odd i: conv filters, BN biases), conv1's filter 0.0001, weightDecay
    0 for the 'b*' (batch-norm) parameters; matlab/+dagnn/@DagNN/initParams.m: the new fc751
    (before the loss) 0.01 on its filter, 0.2 on its bias, filter U(-a, a) * 0.1 with a =
    sqrt(3 / 2048); train_id_net_res_market_lsro.m: global rate 0.1, weightDecay 1e-4."""
    from dgnet_plugin.methods.ide.meta_arch import IDEBaseline
    from dgnet_plugin.modeling.backbones import build_backbone

    cfg = load_cfg_file(
        str(REPO / "configs" / "lsro_r50.yml"), ["MODEL.BACKBONE.PRETRAIN", "False"]
    )
    model = IDEBaseline(build_backbone(cfg), 751, 0, "avg", 0.75, test_feature="pool")
    s = cfg.SOLVER.REID
    groups = matconvnet_param_groups(model, s.BASE_LR, s.WEIGHT_DECAY)
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert len(by_param) == sum(1 for _ in model.parameters())
    b = model.backbone
    released = {
        b.conv1.weight: (0.1 * 0.0001, 1e-4),
        b.layer1[0].conv1.weight: (0.1 * 0.001, 1e-4),
        b.layer4[2].conv3.weight: (0.1 * 0.001, 1e-4),
        b.bn1.weight: (0.1 * 0.02, 0.0),
        b.bn1.bias: (0.1 * 0.001, 0.0),
        b.layer3[1].bn2.weight: (0.1 * 0.02, 0.0),
        model.classifier.classifier.weight: (0.1 * 0.01, 1e-4),
        model.classifier.classifier.bias: (0.1 * 0.2, 1e-4),
    }
    for p, (lr, wd) in released.items():
        assert by_param[id(p)][0] == pytest.approx(lr, rel=1e-9)
        assert by_param[id(p)][1] == wd
    fc = nn.Linear(2048, 751)
    matconvnet_classifier_init(fc)
    a = 0.1 * math.sqrt(3 / 2048)
    assert fc.weight.abs().max() <= a and fc.weight.abs().max() > 0.9 * a
    assert fc.bias.abs().max() == 0


def test_lsro_baseline_stage_trains_64_real_images_for_50_epochs(monkeypatch):
    """layumi/Person-reID_GAN train_id_net_res_market_new.m: batchSize 64 of the real images,
    learningRate [0.1 x 40, 0.01 x 10] epochs (Market: ceil(12,936 / 64) = 203 batches each)."""
    import dgnet_plugin.engine.run as run_module
    from dgnet_plugin.engine.stages import StageContext
    from dgnet_plugin.methods.lsro.stages import lsro_stages

    launched = []
    monkeypatch.setattr(run_module, "run_training", lambda c, **kw: launched.append(c))
    cfg = load_cfg_file(str(REPO / "configs" / "lsro_r50.yml"))
    stage = next(s for s in lsro_stages(cfg) if s.name == "baseline")
    stage.run(StageContext(cfg, "lsro_r50.yml", []))
    derived = launched[0]  # the stage's derived config
    per_epoch = math.ceil(12936 / 64)
    assert derived.GENERATED.ENABLED is False
    assert derived.SOLVER.IMS_PER_BATCH == 64
    assert derived.SOLVER.MAX_ITER == 50 * per_epoch
    assert tuple(derived.SOLVER.STEPS) == (40 * per_epoch,)
    assert derived.OUTPUT_DIR == os.path.join(cfg.OUTPUT_DIR, "baseline")


def test_lsro_dcgan_length_is_25_epochs_of_the_training_images():
    """layumi/DCGAN-tensorflow main.py epoch 25; model.py train: batch_idxs = min(len(data),
    train_size) // batch_size per epoch (Market: 12,936 images, batch 64)."""
    released = 25 * (min(12936, math.inf) // 64)
    assert dcgan_iterations(12936, 64, 25) == released == 5050
    with pytest.raises(ValueError, match="one DCGAN batch"):
        dcgan_iterations(10, 64, 25)


def released_dcgan_epoch(num_files: int, batch: int) -> list[list[int]]:
    """layumi/DCGAN-tensorflow model.py train: every epoch ``self.data = glob(...)`` (the same
    list), ``batch_idxs = min(len(data), train_size) // batch_size`` and ``batch_files =
    self.data[idx * batch_size:(idx + 1) * batch_size]``: never shuffled."""
    files = list(range(num_files))
    return [files[i * batch : (i + 1) * batch] for i in range(num_files // batch)]


def test_lsro_dcgan_reads_the_training_list_in_order_every_epoch():
    from torch.utils.data import Dataset

    from dgnet_plugin.data import build_train_loader
    from dgnet_plugin.data.samplers import GlobalBatchSampler
    from dgnet_plugin.methods.lsro.stages import dcgan_config

    released = released_dcgan_epoch(22, 4)
    one = GlobalBatchSampler(22, 4, seed=5, shuffle=False)
    got = list(itertools.islice(iter(one), 3 * len(released)))
    assert got == released * 3  # the file order, every epoch, last partial batch dropped
    halves = [GlobalBatchSampler(22, 4, r, 2, seed=5, shuffle=False) for r in (0, 1)]
    for k, (a, b) in enumerate(zip(*map(iter, halves))):
        assert a + b == released[k % len(released)]
        if k == 10:
            break
    assert got[:5] != list(itertools.islice(iter(GlobalBatchSampler(22, 4, seed=5)), 5))

    # the recipe's DCGAN stage runs with DATALOADER.SHUFFLE False, and the loader obeys it
    cfg = load_cfg_file(str(REPO / "configs" / "lsro_r50.yml"), freeze=False)
    cfg.LSRO.GAN_EPOCHS = 0
    merges = dcgan_config(cfg)
    assert merges["DATALOADER.SHUFFLE"] is False and merges["INPUT.CROP_SCALE"] == ()
    cfg.merge_from_list(["DATALOADER.SHUFFLE", "False", "SOLVER.IMS_PER_BATCH", "4",
                         "DATALOADER.NUM_WORKERS", "0"])  # fmt: skip

    class Index(Dataset):
        def __len__(self):
            return 22

        def __getitem__(self, i):
            return i

    stream = build_train_loader(cfg, [None] * 22, dataset=Index())
    assert [next(stream).tolist() for _ in range(2 * len(released))] == released * 2


def released_pool_epoch(perm: list[int], batch: int) -> list[list[int]]:
    """layumi/Person-reID_GAN examples/cnn_train_dag.m: ``params.train =
    opts.train(randperm(numel(opts.train)))`` (line 84), then ``for t = 1:batchSize:numel(subset)``
    with ``batchSize = min(params.batchSize, numel(subset) - t + 1)`` (lines 193-196): every
    image of the one real + generated pool once per epoch, the last batch holding the rest."""
    return [perm[t : t + min(batch, len(perm) - t)] for t in range(0, len(perm), batch)]


def test_lsro_pooled_batches_are_the_released_shuffled_pool():
    from dgnet_plugin.data.samplers import PooledBatchSampler

    n, b, seed = 19, 4, 3
    gen = torch.Generator().manual_seed(seed)
    perms = [torch.randperm(n, generator=gen).tolist() for _ in range(3)]
    released = [x for perm in perms for x in released_pool_epoch(perm, b)]
    got = list(itertools.islice(iter(PooledBatchSampler(n, b, seed=seed)), len(released)))
    assert got == released and len(released) == 3 * math.ceil(n / b)
    for e in range(3):  # every image of the pool once per epoch
        assert sorted(sum(got[e * 5 : (e + 1) * 5], [])) == list(range(n))
    resumed = list(itertools.islice(iter(PooledBatchSampler(n, b, seed=seed, start=7)), 3))
    assert resumed == got[7:10]
    # two processes: contiguous halves of each full batch; the 3 left cannot split evenly
    halves = [PooledBatchSampler(n, b, r, 2, seed) for r in (0, 1)]
    assert len(halves[0]) == 4
    pairs = list(itertools.islice(zip(*map(iter, halves)), 8))
    full = [x for x in released[:10] if len(x) == b]
    assert [a + c for a, c in pairs] == full[:8]

    # Market: 12,936 real + 6,000 generated, batches of 64: 296 per epoch, 31.7 % generated
    # on average, the count varying from batch to batch (a fixed split would not)
    real, fake = 12936, 6000
    s = PooledBatchSampler(real + fake, 64, seed=0)
    assert len(s) == 296 == math.ceil((real + fake) / 64)
    batches = list(itertools.islice(iter(s), 2 * 296))
    assert [len(x) for x in batches[:296]] == [64] * 295 + [(real + fake) % 64]
    counts = torch.tensor([sum(i >= real for i in x) for x in batches if len(x) == 64]).float()
    assert counts.mean().item() == pytest.approx(64 * fake / (real + fake), abs=0.3)
    assert counts.std().item() > 2
    assert sum(sum(i >= real for i in x) for x in batches[:296]) == fake


def test_lsro_pooled_loader_keeps_each_samples_label_rule(tiny_market):
    """The pooled loader's batches mix real and generated images, each flagged, so that the
    loss gives each sample its own rule (real: cross-entropy, generated: uniform) and divides
    by the batch (checked against vl_nnloss.m in test_lsro_loss_against_vl_nnloss_labelsmooth)."""
    from dgnet_plugin.data import load_train_set
    from dgnet_plugin.offline_augmentation.data import build_mixed_train_loader

    cfg = load_cfg_file(
        str(REPO / "configs" / "lsro_cuhk03_cpu_demo.yml"),
        ["DATASETS.ROOT", str(tiny_market), "DATASETS.NAMES", "('market_layout',)",
         "DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "8",
         "INPUT.SIZE_TRAIN", "(32, 16)", "GENERATED.MIXING", "pool"],
    )  # fmt: skip
    real, _ = load_train_set(cfg)
    real = real[:20]
    fake = [(p, -1, c, 0) for p, _, c, _ in real[:6]]  # any images, flagged as generated
    stream = build_mixed_train_loader(cfg, real, fake, 0, pooled=True)
    batches = [next(stream) for _ in range(math.ceil(26 / 8))]
    assert [len(x["pid"]) for x in batches] == [8, 8, 8, 2]
    flags = torch.cat([x["generated"] for x in batches])
    pids = torch.cat([x["pid"] for x in batches])
    assert int(flags.sum()) == 6 and bool((pids[flags] == -1).all())
    assert bool((pids[~flags] >= 0).all())


def released_crop_box(w0, h0, out_w, out_h, size_range, aniso_range, u):
    """layumi/Person-reID_GAN matlab/src/vl_imreadjpeg.cu (Batch::prefetch, the crop of each
    item): anisotropy, crop shape from the output's, ``scale = min(W / cw, H / ch)``, ``size =
    sqrt(z (b - a) + a)`` with ``a = max^2``, ``b = min^2``, C ``round`` clipped to the image,
    ``dx = rand() % (dx + 1)`` (here a uniform ``u`` times ``dx + 1``)."""
    if aniso_range[0] == 0 or aniso_range[1] == 0:
        r = (w0 / h0) / (out_w / out_h)
    else:
        a, b = math.log(aniso_range[1]), math.log(aniso_range[0])
        r = math.exp(u[0] * (b - a) + a)
    cw, ch = out_w * math.sqrt(r), out_h / math.sqrt(r)
    scale = min(w0 / cw, h0 / ch)
    a, b = size_range[1] ** 2, size_range[0] ** 2
    size = math.sqrt(u[1] * (b - a) + a)
    cw, ch = cw * scale * size, ch * scale * size
    cwi = int(min(math.floor(cw + 0.5), w0))
    chi = int(min(math.floor(ch + 0.5), h0))
    return int(u[2] * (w0 - cwi + 1)), int(u[3] * (h0 - chi + 1)), cwi, chi


def test_lsro_crop_against_vl_imreadjpeg():
    from PIL import Image

    from dgnet_plugin.data.transforms import MatConvNetCrop, build_transforms

    draws = [(0.3, 0.0, 0.0, 0.0), (0.7, 0.999, 0.999, 0.999), (0.5, 0.41, 0.62, 0.13)]
    for aniso in ((1.0, 1.0), (0.0, 0.0), (0.8, 1.25)):
        crop = MatConvNetCrop((224, 224), (0.85, 1.0), aniso)
        for u in draws:
            for w0, h0 in ((64, 128), (60, 161)):
                want = released_crop_box(w0, h0, 224, 224, (0.85, 1.0), aniso, u)
                assert crop.box(w0, h0, u) == want, (aniso, u, w0, h0)
    # Market's 64x128 crops: squares of 0.85-1 of the 64 px side ((1, 1): the output's shape)
    crop = MatConvNetCrop((224, 224), (0.85, 1.0))
    torch.manual_seed(0)
    img = Image.new("RGB", (64, 128))
    sides = []
    for _ in range(300):
        out = crop(img)
        assert out.size[0] == out.size[1]
        sides.append(out.size[0])
    assert min(sides) >= round(0.85 * 64) and max(sides) <= 64 and len(set(sides)) > 5
    cfg = load_cfg_file(str(REPO / "configs" / "lsro_r50.yml"))
    assert build_transforms(cfg, True)(img).shape == (3, 224, 224)
    assert isinstance(build_transforms(cfg, True).transforms[0], MatConvNetCrop)


# ------------------------------------------------------------------ recipes
#: (key, released value, source)
LSRO_RECIPE = [
    ("MODEL.BACKBONE.NAME", "resnet50", "PRG resnet52_market_gan.m:2"),
    ("MODEL.BACKBONE.LAST_STRIDE", 2, "PRG: the ImageNet ResNet-50 unchanged"),
    ("MODEL.HEADS.EMBEDDING_DIM", 0, "PRG resnet52_market_gan.m:19-22 pool5 -> dropout -> fc"),
    ("MODEL.HEADS.DROPOUT", 0.75, "PRG resnet52_market_gan.m:19"),
    ("MODEL.HEADS.POOL", "avg", "PRG pool5"),
    ("MODEL.HEADS.TEST_FEATURE", "pool", "PRG test_gallery_query_crazy.m:9,28"),
    ("MODEL.GEN.ARCH", "tensorflow", "DCT model.py:342-374, ops.py:65"),
    ("MODEL.DIS.ARCH", "tensorflow", "DCT model.py:311-323, ops.py:52"),
    ("MODEL.GEN.Z_DIM", 100, "DCT model.py:19"),
    ("MODEL.GEN.NOISE", "uniform", "DCT model.py:217"),
    ("MODEL.GEN.DIM", 64, "DCT gf_dim"),
    ("MODEL.DIS.DIM", 64, "DCT df_dim"),
    ("LOSS.GAN_MODE", "vanilla", "DCT model.py:123-128"),
    ("LOSS.LABEL.REAL", "hard", "PRG vl_nnloss.m opts.rate 0"),
    ("LOSS.LABEL.GENERATED", "lsro", "PRG vl_nnloss.m labelsmooth, label 0"),
    ("GAN.SIZE", (128, 128), "DCT README --input_height 128 --output_height 128"),
    ("GAN.IMS_PER_BATCH", 64, "DCT main.py:15"),
    ("GAN.PADDING", 0, "DCT utils.py get_image"),
    ("LSRO.G_STEPS_PER_D", 2, "DCT model.py:261-269"),
    ("LSRO.GAN_EPOCHS", 25, "DCT main.py:11"),
    ("LSRO.GAN_FLIP_PROB", 0.0, "DCT utils.py get_image"),
    ("LSRO.GAN_SHUFFLE", False, "DCT model.py:194-203 the glob list in order"),
    ("GENERATED.MIXING", "pool", "PRG cnn_train_dag.m:84 one shuffled real + generated pool"),
    ("SOLVER.IMS_PER_BATCH", 64, "PRG lsro.m:20 batchSize 64"),
    ("INPUT.CROP_SCALE", (0.85, 1.0), "PRG lsro.m:42 CropSize [0.85,1]"),
    ("INPUT.CROP_ANISOTROPY", (1.0, 1.0), "PRG lsro.m:41-43 default CropAnisotropy [1 1]"),
    ("INPUT.INTERPOLATION_TRAIN", "bicubic", "PRG lsro.m:43 Interpolation bicubic"),
    ("INPUT.PADDING", 0, "PRG lsro.m:41-43 no pad"),
    ("LSRO.NUM_GENERATED", 6000, "PRG prepare_gan_data.m:5"),
    ("LSRO.PARAM_GROUPS", "matconvnet", "PRG resnet52_market_gan.m:7-18"),
    ("LSRO.PSEUDO_WEIGHT", 0.1, "PRG Pseudo_Loss.m"),
    ("SOLVER.GEN.LR", 2e-4, "DCT main.py:12"),
    ("SOLVER.GEN.BETAS", (0.5, 0.999), "DCT main.py:13"),
    ("SOLVER.DIS.LR", 2e-4, "DCT main.py:12"),
    ("SOLVER.DIS.BETAS", (0.5, 0.999), "DCT main.py:13"),
    ("SOLVER.GEN.WEIGHT_DECAY", 0.0, "DCT: AdamOptimizer"),
    ("INPUT.SIZE_TRAIN", (224, 224), "PRG train_id_net_res_market_lsro.m:41"),
    ("INPUT.SIZE_TEST", (256, 256), "PRG test_gallery_query_crazy.m:25"),
    ("INPUT.FLIP_PROB", 0.5, "PRG lsro.m:41 'Flip'"),
    ("INPUT.REA.PROB", 0.0, "PRG: no random erasing"),
    ("SOLVER.REID.OPTIM", "sgd", "PRG cnn_train_dag.m"),
    ("SOLVER.REID.BASE_LR", 0.1, "PRG lsro.m:30"),
    ("SOLVER.REID.MOMENTUM", 0.9, "PRG lsro.m:28"),
    ("SOLVER.REID.NESTEROV", True, "PRG lsro.m:24"),
    ("SOLVER.REID.WEIGHT_DECAY", 1e-4, "PRG lsro.m:31"),
    ("SOLVER.REID_GAMMA", 0.1, "PRG lsro.m:30"),
    ("SOLVER.MAX_ITER", 50 * math.ceil((12936 + 6000) / 64), "PRG lsro.m:30-32: 50 epochs"),
    ("SOLVER.STEPS", (40 * math.ceil((12936 + 6000) / 64),), "PRG lsro.m:30: x0.1 after 40"),
    ("SOLVER.AMP", "off", "PRG / DCT float32"),
    ("TEST.FLIP", True, "PRG test_gallery_query_crazy.m:30-32"),
]

PNGAN_RECIPE = [
    ("MODEL.GEN.NAME", "ResnetGenerator", "PNG network.py Res_Generator"),
    ("MODEL.GEN.DIM", 64, "PNG config.py:28"),
    ("MODEL.GEN.N_BLOCKS", 9, "PNG config.py:30"),
    ("MODEL.GEN.N_DOWNSAMPLE", 2, "PNG network.py:65-74"),
    ("MODEL.GEN.RES_PAD", "zeros", "PNG network.py:37,42"),
    ("MODEL.GEN.RES_POST_RELU", True, "PNG network.py:51"),
    ("MODEL.GEN.OUT_BIAS", False, "PNG network.py:92"),
    ("MODEL.GEN.INIT", "default", "PNG train.py:66-85"),
    ("MODEL.DIS.NAME", "PNGANPatchDiscriminator", "PNG network.py:168-201, train.py:75"),
    ("MODEL.DIS.DIM", 64, "PNG config.py:29"),
    ("LOSS.GAN_MODE", "lsgan", "PNG train.py:120"),
    ("LOSS.POSE_L1", 10.0, "PNG config.py:31"),
    ("LOSS.LABEL.GENERATED", "hard", "PN-GAN paper"),
    ("GAN.SIZE", (256, 128), "PNG dataset.py:14"),
    ("GAN.IMS_PER_BATCH", 32, "PNG config.py:24"),
    ("GAN.PADDING", 0, "PNG dataset.py:12-18"),
    ("PNGAN.EPOCHS", 20, "PNG config.py:21"),
    ("PNGAN.DECAY_EPOCH", 10, "PNG config.py:20"),
    ("PNGAN.DIS_REAL", "source", "PNG train.py:177"),
    ("PNGAN.DIS_LOSS_WEIGHT", 1.0, "PNG train.py:182"),
    ("PNGAN.SELF_PAIRS", 0.0, "PNG dataset.py permutations"),
    ("PNGAN.BACKGROUND_WEIGHT", 1.0, "PNG train.py:165 plain L1"),
    ("PNGAN.FUSED_L2", False, "PNG viper_feature.py:86-88"),
    ("POSE.NUM_CANONICAL", 8, "PN-GAN paper"),
    ("POSE.FORMAT", "picture", "PNG dataset.py:103-105, network.py:61"),
    ("SOLVER.GEN.LR", 2e-4, "PNG config.py:19"),
    ("SOLVER.GEN.BETAS", (0.5, 0.999), "PNG train.py:105"),
    ("SOLVER.DIS.BETAS", (0.5, 0.999), "PNG train.py:106"),
    ("SOLVER.GEN.WEIGHT_DECAY", 0.0, "PNG train.py:105"),
    ("MODEL.HEADS.EMBEDDING_DIM", 1024, "PNG viper_feature.py:58,61"),
    ("INPUT.SIZE_TEST", (224, 112), "PNG viper_feature.py:45"),
    ("TEST.FLIP", False, "PNG viper_feature.py"),
    ("TEST.METRIC", "euclidean", "PNG viper_feature.py:102-108"),
    ("SOLVER.AMP", "off", "PNG float32"),
]


def _get(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


@pytest.mark.parametrize("name,table", [("lsro_r50", LSRO_RECIPE), ("pngan_r50", PNGAN_RECIPE)])
def test_full_recipes_hold_the_released_values(name, table):
    path = REPO / "configs" / f"{name}.yml"
    assert "_BASE_" not in path.read_text()  # every value set in the recipe itself
    cfg = load_cfg_file(str(path))
    wrong = {}
    for key, value, source in table:
        got = _get(cfg, key)
        same = got == pytest.approx(value) if isinstance(value, float) else got == value
        if isinstance(value, tuple):
            same = tuple(got) == pytest.approx(value)
        if not same:
            wrong[key] = (got, value, source)
    assert not wrong, wrong
    if name == "pngan_r50":  # [PNG] viper_feature.py:79-84: avg, max and concat
        assert {"avg", "max", "concat"} <= set(cfg.PNGAN.TEST_FEATURES)


def test_pngan_fusion_without_renormalisation_and_concat():
    """naiq/PN_GAN script/viper_feature.py: each view's feature L2-normalised
    (Calculate_8_pose_feature), then f_avg = mean, f_max = max, f_concat = the 8 views stacked
    (Calculate_distmat), squared Euclidean distances without normalising again."""
    from dgnet_plugin.methods.pngan.fusion import view_features

    g = torch.Generator().manual_seed(0)
    poses = torch.randn(3, 8, 5, generator=g)
    orig = torch.randn(3, 5, generator=g)
    out_p = poses / poses.square().sum(2, keepdim=True).sqrt()
    torch.testing.assert_close(view_features(orig, poses, "avg", False), out_p.mean(1))
    torch.testing.assert_close(view_features(orig, poses, "max", False), out_p.amax(1))
    torch.testing.assert_close(view_features(orig, poses, "concat", False), out_p.reshape(3, 40))
    for n in ("avg", "max"):  # FUSED_L2 True: normalised again
        torch.testing.assert_close(view_features(orig, poses, n, True).norm(dim=1), torch.ones(3))
