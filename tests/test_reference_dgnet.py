"""Reference tests of DG-Net's loss terms against the released code (NVlabs/DG-Net @ 9855f08,
``trainer.py`` ``DGNet_Trainer.forward`` / ``gen_update`` / ``dis_update``, ``networks.py``
``MsImageDis.calc_gen_loss`` / ``calc_dis_loss`` / ``compute_grad2``, ``predict_label``
with ``teacher_style`` 0). Each official formula is written out here on a tiny DG-Net
(MobileNetV2 Ea, narrow G and D, fixed inputs) and compared, term by term, with
``DGNet.generator_losses`` / ``discriminator_losses`` (rtol 1e-5).

Dropout is set to p = 0 in Ea and the teacher so that the two computations see the same
activations (the official Ea also runs its heads' dropout in training; which units it drops
is a random draw, not a formula)."""

from __future__ import annotations

import copy

import pytest
import torch
from test_gradient_flow import K, N, batch, tiny_cfg

from dgnet_plugin.methods.dgnet.schedule import DGNET_LOSS_TERMS
from dgnet_plugin.modeling import build_model

RTOL = 1e-5


def close(a, b, atol=1e-7):
    """rtol 1e-5; ``atol`` for tensors with entries near 0 (images: 1e-4, batched and
    unbatched convolutions sum in other orders)."""
    a, b = torch.as_tensor(a).detach(), torch.as_tensor(b).detach()
    return torch.allclose(a, b, rtol=RTOL, atol=atol)


def _no_dropout(module):
    for m in module.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return module


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = _no_dropout(build_model(tiny_cfg(), K).train())
    teacher = _no_dropout(build_model(tiny_cfg("IDEBaseline"), K))
    with torch.no_grad():  # a discriminator away from its start (non-trivial scores)
        for p in model.dis.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        # a confident teacher: its soft labels far from the student's (a KL of order 1, not a
        # cancellation of nearly equal terms)
        for m in teacher.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.add_(torch.randn_like(m.weight) * 0.5)
    a, b = batch(11), batch(12)
    return model, teacher, a, b


def to_gray(x):
    """``trainer.py`` ``to_gray``: ``torch.mean(x, dim=1, keepdim=True)``."""
    return torch.mean(x, dim=1, keepdim=True)


def recon_criterion(inp, target):
    """``trainer.py`` ``recon_criterion``: ``mean(|input - target.detach()|)``."""
    return torch.mean(torch.abs(inp - target.detach()))


def ce(logits, labels):
    return torch.nn.CrossEntropyLoss()(logits, labels)


def ea(model, x):
    """``id_a(x)`` -> ``(f, [p_primary, p_fine])`` (``reIDmodel.py`` ``ft_netAB.forward``)."""
    out = model.reid(x, return_all=True)
    return out["code"], out["logits"]


def ea_copy(model):
    """``gen_update``: ``copy.deepcopy(self.id_a).eval()``, then ``apply(train_bn)``."""
    c = copy.deepcopy(model.reid).eval()
    for m in c.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.train()
    return c


def gen_adv(dis, x):
    """``MsImageDis.calc_gen_loss`` (lsgan): ``sum_s mean((out - 1) ** 2) * 2``."""
    return sum(torch.mean((o - 1) ** 2) * 2 for o in dis(x))


def dis_loss(dis, fake, real, lam):
    """``MsImageDis.calc_dis_loss`` (lsgan): per scale ``mean(out0 ** 2) + mean((out1 - 1) **
    2)`` plus ``LAMBDA * compute_grad2(out1, x_real).mean()`` (``compute_grad2``: the squared
    gradient of ``out1.sum()`` w.r.t. the real images, summed per image)."""
    real = real.clone().requires_grad_()
    loss = 0
    for o0, o1 in zip(dis(fake), dis(real)):
        loss = loss + torch.mean((o0 - 0) ** 2) + torch.mean((o1 - 1) ** 2)
        (g,) = torch.autograd.grad(o1.sum(), real, create_graph=True, retain_graph=True)
        loss = loss + lam * g.pow(2).view(real.size(0), -1).sum(1).mean()
    return loss


def official_terms(model, teacher, a, b, generated=None):
    """``DGNet_Trainer.forward`` then the terms of ``gen_update`` (``ID_style`` AB,
    ``use_encoder_again`` drawn as "encode again with the trainable Es", ``teacher_style`` 0),
    unweighted, each summed over the two directions as the official total does.
    ``generated``: ``(x_ba, x_ab)`` to feed ``gen_update`` (the project's forward outputs,
    once checked equal to the official forward's up to float rounding: the KL of two nearly
    equal distributions would amplify that rounding)."""
    x_a, x_b, xp_a, xp_b = a["img"], b["img"], a["pos"], b["pos"]
    l_a, l_b = a["pid"], b["pid"]
    gen = model.gen
    # forward
    s_a, s_b = gen.encoder(to_gray(x_a)), gen.encoder(to_gray(x_b))
    f_a, _ = ea(model, x_a)
    f_b, _ = ea(model, x_b)
    x_ba, x_ab = gen.decode(s_b, f_a), gen.decode(s_a, f_b)
    x_a_recon, x_b_recon = gen.decode(s_a, f_a), gen.decode(s_b, f_b)
    fp_a, _ = ea(model, xp_a)
    fp_b, _ = ea(model, xp_b)
    x_a_recon_p, x_b_recon_p = gen.decode(s_a, fp_a), gen.decode(s_b, fp_b)
    _, p_a = ea(model, a["img_erased"])
    _, p_b = ea(model, b["img_erased"])
    _, pp_a = ea(model, a["pos_erased"])
    _, pp_b = ea(model, b["pos_erased"])
    forward_ba, forward_ab = x_ba, x_ab
    if generated is not None:
        x_ba, x_ab = generated
    # gen_update
    x_ba_copy, x_ab_copy = x_ba.detach(), x_ab.detach()
    s_a_recon, s_b_recon = gen.encoder(to_gray(x_ab_copy)), gen.encoder(to_gray(x_ba_copy))
    frozen = ea_copy(model)
    out_ba, out_ab = frozen(x_ba, return_all=True), frozen(x_ab, return_all=True)
    f_a_recon, p_a_recon = out_ba["code"], out_ba["logits"]
    f_b_recon, p_b_recon = out_ab["code"], out_ab["logits"]
    # teacher (predict_label, teacher_style 0) and student on the detached generated images
    t = copy.deepcopy(teacher).eval()
    for m in t.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.train()

    def soft_label(x):
        with torch.no_grad():
            o1 = torch.softmax(t(x, return_all=True)["logits"][0], dim=1)
            o2 = torch.softmax(t(x.flip(3), return_all=True)["logits"][0], dim=1)
            q = o1 + o2
            return q / q.sum(dim=1, keepdim=True).expand_as(q)

    kl = torch.nn.KLDivLoss(reduction="sum")
    log_sm = torch.nn.LogSoftmax(dim=1)
    _, p_ba_student = ea(model, x_ba_copy)
    _, p_ab_student = ea(model, x_ab_copy)
    loss_teacher = (
        kl(log_sm(p_ba_student[0]), soft_label(x_ba_copy)) / N
        + kl(log_sm(p_ab_student[0]), soft_label(x_ab_copy)) / N
    )
    loss_b = ce(p_ba_student[1], l_b) + ce(p_ab_student[1], l_a)
    x_aba, x_bab = gen.decode(s_a_recon, f_a_recon), gen.decode(s_b_recon, f_b_recon)
    return {
        "x_ba": forward_ba,
        "x_ab": forward_ab,
        "gan": gen_adv(model.dis, x_ba) + gen_adv(model.dis, x_ab),
        "recon_x": recon_criterion(x_a_recon, x_a) + recon_criterion(x_b_recon, x_b),
        "recon_xp": recon_criterion(x_a_recon_p, x_a) + recon_criterion(x_b_recon_p, x_b),
        "recon_f": recon_criterion(f_a_recon, f_a) + recon_criterion(f_b_recon, f_b),
        "recon_s": recon_criterion(s_a_recon, s_a) + recon_criterion(s_b_recon, s_b),
        "cycle": recon_criterion(x_aba, x_a) + recon_criterion(x_bab, x_b),
        "recon_id": ce(p_a_recon[0], l_a) + ce(p_b_recon[0], l_b),
        "id": ce(p_a[0], l_a) + ce(p_b[0], l_b),
        # weight_B * (CE(p_a[1], l_a) + CE(p_b[1], l_b)) inside loss_id
        "id_fine": ce(p_a[1], l_a) + ce(p_b[1], l_b),
        "id_pos": ce(pp_a[0], l_a) + ce(pp_b[0], l_b),
        "teacher_kl": loss_teacher,  # T_w = 1
        "fine": loss_b,  # B_w * loss_B inside loss_teacher
    }


def test_every_generator_term_is_the_official_one(setup):
    model, teacher, a, b = setup
    torch.manual_seed(1)
    out = model(a, b)
    ours = model.generator_losses(
        out, {k: 1.0 for k in DGNET_LOSS_TERMS}, teacher, teacher_train_bn=True, reencode=True
    )
    ref = official_terms(model, teacher, a, b, (out["x_ba"], out["x_ab"]))
    assert close(out["x_ba"], ref["x_ba"], 1e-4) and close(out["x_ab"], ref["x_ab"], 1e-4)
    assert set(ours) == set(DGNET_LOSS_TERMS)
    wrong = {
        k: (ours[k].item(), ref[k].item()) for k in DGNET_LOSS_TERMS if not close(ours[k], ref[k])
    }
    assert not wrong, wrong


def test_frozen_structure_encoder_branch(setup):
    """``use_encoder_again`` < the draw: a frozen copy of Es (``enc_content_copy.eval()``) on
    the non-detached generated images; the same values as the trainable Es (IN has no running
    statistics), but no gradient to Es."""
    model, teacher, a, b = setup
    out = model(a, b)
    weights = {k: 0.0 for k in DGNET_LOSS_TERMS}
    weights["recon_s"] = 1.0
    ours = model.generator_losses(out, weights, teacher, reencode=False)
    enc_copy = copy.deepcopy(model.gen.encoder).eval()
    s_a_recon, s_b_recon = enc_copy(to_gray(out["x_ab"])), enc_copy(to_gray(out["x_ba"]))
    ref = recon_criterion(s_a_recon, out["s_a"]) + recon_criterion(s_b_recon, out["s_b"])
    assert close(ours["recon_s"], ref)


def test_discriminator_loss_is_the_official_one(setup):
    """``dis_update``: ``gan_w * (calc_dis_loss(D, x_ba, x_a)[0] + calc_dis_loss(D, x_ab,
    x_b)[0])`` with ``LAMBDA`` = ``MODEL.DIS.GRAD_PENALTY`` (0.01); the engine multiplies the
    sum of ``discriminator_losses`` by ``LOSS.GAN``."""
    model, _, a, b = setup
    out = model(a, b)
    ours = model.discriminator_losses(out)
    lam = tiny_cfg().MODEL.DIS.GRAD_PENALTY
    assert lam == 0.01
    ref = dis_loss(model.dis, out["x_ba"].detach(), a["img"], lam) + dis_loss(
        model.dis, out["x_ab"].detach(), b["img"], lam
    )
    assert close(sum(ours.values()), ref)


def test_ea_head_batch_norm_starts_at_one_as_the_official_classblock():
    """``reIDmodel.py`` ``ClassBlock``: ``weights_init_kaiming`` initialises 'InstanceNorm1d'
    only, so the BatchNorm1d after the 512-d bottleneck keeps torch's weight 1 and bias 0
    (``MODEL.EA_BN_INIT ones``); ``normal`` gives N(1, 0.02)."""
    torch.manual_seed(0)
    m = build_model(tiny_cfg(), K)
    bns = [x for x in m.reid.modules() if isinstance(x, torch.nn.BatchNorm1d)]
    assert len(bns) == 2
    assert all(torch.equal(x.weight, torch.ones_like(x.weight)) for x in bns)
    assert all(torch.equal(x.bias, torch.zeros_like(x.bias)) for x in bns)
    cfg = tiny_cfg()
    cfg.MODEL.EA_BN_INIT = "normal"
    m = build_model(cfg, K)
    w = next(x for x in m.reid.modules() if isinstance(x, torch.nn.BatchNorm1d)).weight
    assert not torch.equal(w, torch.ones_like(w)) and abs(w.mean().item() - 1) < 0.01


DGNET_RELEASED = {
    # key: (value, source in NVlabs/DG-Net configs/latest.yaml or code)
    "MODEL.BACKBONE.NAME": ("resnet50", "reIDmodel.py ft_netAB models.resnet50"),
    "MODEL.BACKBONE.LAST_STRIDE": (1, "ID_stride: 1"),
    "MODEL.HEADS.POOL": ("max", "pool: max"),
    "MODEL.HEADS.NUM_PARTS": (4, "ft_netAB self.part = 4"),
    "MODEL.HEADS.EMBEDDING_DIM": (512, "ClassBlock num_bottleneck=512"),
    "MODEL.HEADS.DROPOUT": (0.5, "classifier1 droprate 0.5"),
    "MODEL.HEADS.FINE_DROPOUT": (0.75, "classifier2 droprate 0.75"),
    "MODEL.EA_BN_INIT": ("ones", "ClassBlock weights_init_kaiming: BatchNorm1d not matched"),
    "MODEL.EA_FUSED_FORWARD": (False, "trainer.py forward: one id_a call per group"),
    "MODEL.GEN.DIM": (16, "gen.dim"),
    "MODEL.GEN.N_DOWNSAMPLE": (2, "gen.n_downsample"),
    "MODEL.GEN.N_RES": (4, "gen.n_res"),
    "MODEL.GEN.MLP_DIM": (512, "gen.mlp_dim"),
    "MODEL.GEN.ASPP_DILATIONS": ((3, 6, 9), "networks.py ContentEncoder ASPP"),
    "MODEL.DIS.DIM": (32, "dis.dim"),
    "MODEL.DIS.N_LAYER": (2, "dis.n_layer"),
    "MODEL.DIS.N_RES": (4, "dis.n_res"),
    "MODEL.DIS.NUM_SCALES": (3, "dis.num_scales"),
    "MODEL.DIS.GRAD_PENALTY": (0.01, "dis.LAMBDA"),
    "MODEL.TEACHER.TRAIN_BN": (True, "train_bn: true"),
    "MODEL.TEACHER.DROPOUT_AFTER": (5000, "image_display_iter 5000: sample() -> train()"),
    "INPUT.SIZE_TRAIN": ((256, 128), "crop_image_height / width"),
    "INPUT.SIZE_TEST": ((256, 128), "utils.py test transform Resize"),
    "INPUT.FLIP_PROB": (0.5, "utils.py RandomHorizontalFlip()"),
    "INPUT.PADDING": (10, "utils.py Pad(10, padding_mode='edge')"),
    "INPUT.PADDING_MODE": ("edge", "utils.py Pad(10, padding_mode='edge')"),
    "INPUT.REA.PROB": (0.5, "erasing_p: 0.5"),
    "SOLVER.IMS_PER_BATCH": (8, "batch_size: 8"),
    "SOLVER.MAX_ITER": (100000, "max_iter"),
    "SOLVER.STEPS": ((60000, 90000, 105000), "utils.py get_scheduler multistep, step_size 60000"),
    "SOLVER.GAMMA": (0.1, "gamma"),
    "SOLVER.REID_GAMMA": (0.1, "gamma2"),
    "SOLVER.GEN.LR": (1e-4, "lr_g"),
    "SOLVER.DIS.LR": (1e-4, "lr_d"),
    "SOLVER.GEN.BETAS": ((0.0, 0.999), "beta1, beta2"),
    "SOLVER.DIS.BETAS": ((0.0, 0.999), "beta1, beta2"),
    "SOLVER.GEN.WEIGHT_DECAY": (5e-4, "weight_decay"),
    "SOLVER.DIS.WEIGHT_DECAY": (5e-4, "weight_decay"),
    "SOLVER.REID.BASE_LR": (0.002, "lr2"),
    "SOLVER.REID.HEADS_LR_FACTOR": (10.0, "trainer.py classifier1/2 at lr2 * 10"),
    "SOLVER.REID.MOMENTUM": (0.9, "trainer.py SGD momentum=0.9"),
    "SOLVER.REID.NESTEROV": (True, "trainer.py SGD nesterov=True"),
    "SOLVER.REID.WEIGHT_DECAY": (5e-4, "weight_decay"),
    "SOLVER.AMP": ("off", "apex: false"),
    "LOSS.RECON_X": (5.0, "recon_x_w"),
    "LOSS.RECON_XP": (5.0, "recon_xp_w"),
    "LOSS.ID": (1.0, "id_w"),
    "LOSS.ID_POS": (1.0, "pid_w"),
    "LOSS.RECON_ID": (0.5, "recon_id_w"),
    "LOSS.GAN": (1.0, "gan_w"),
    "LOSS.RECON_CODE_MAX": (1.0, "max_w"),
    "LOSS.CYCLE_MAX": (2.0, "max_cyc_w"),
    "LOSS.TEACHER_MAX": (2.0, "max_teacher_w"),
    "LOSS.FINE": (0.2, "B_w"),
    "LOSS.WARM_ITER": (30000, "warm_iter"),
    "LOSS.WARM_TEACHER_ITER": (30000, "warm_teacher_iter"),
    "LOSS.WARM_SCALE": (0.0005, "warm_scale"),
    "LOSS.STRUCTURE_ENCODER_AGAIN": (0.5, "use_encoder_again"),
    "LOSS.RECON_F_GRAD": (False, "reIDmodel.py ft_netAB f.detach()"),
    "TEST.ALPHA": (0.5, "reid_eval/test_2label.py alpha 0.5 (query side)"),
    "TEST.FLIP": (True, "reid_eval/test_2label.py: original + flipped features"),
    "VIS.NUM_IMAGES": (16, "display_size: 16"),
}


def test_dgnet_recipe_values_are_the_released_ones():
    from conftest import REPO

    from dgnet_plugin.config import load_cfg_file

    cfg = load_cfg_file(str(REPO / "configs" / "dgnet_r50.yml"))

    def get(key):
        node = cfg
        for part in key.split("."):
            node = node[part]
        return tuple(node) if isinstance(node, list | tuple) else node

    wrong = {
        k: (get(k), v, src) for k, (v, src) in DGNET_RELEASED.items() if get(k) != pytest.approx(v)
    }
    assert not wrong, wrong
