"""Where DG-Net follows the released code rather than the paper, and the named options that
give the other behaviour (docs/methods/dgnet.md): Ea's batch-norm statistics per
group of images, and the teacher's dropout after iteration 5,000."""

import copy

import pytest
import torch
from test_gradient_flow import K, batch, tiny_cfg

from dgnet_plugin.config import get_cfg
from dgnet_plugin.methods.dgnet.engine import teacher_dropout_on
from dgnet_plugin.methods.dgnet.schedule import DGNET_LOSS_TERMS
from dgnet_plugin.modeling import build_model
from dgnet_plugin.modeling.frozen import teacher_forward


def bn_state(module):
    return {
        k: v.clone()
        for k, v in module.state_dict().items()
        if "running" in k or "num_batches_tracked" in k
    }


def build(fused: bool):
    torch.manual_seed(0)
    cfg = tiny_cfg()
    cfg.MODEL.EA_FUSED_FORWARD = fused
    return build_model(cfg, K).train()


def test_ea_runs_once_per_group_as_the_official_trainer():
    """Default (MODEL.EA_FUSED_FORWARD False): after step 1 and the fine-grained term, Ea's BN
    running statistics equal those of sequential forwards on x_a, x_b, pos_a, pos_b, their
    erased copies, then x_ba and x_ab (the official id_a calls, in order); the fused forward
    gives other statistics."""
    model = build(fused=False)
    official = copy.deepcopy(model.reid)
    a, b = batch(21), batch(22)
    out = model(a, b)
    weights = {k: 0.0 for k in DGNET_LOSS_TERMS}
    model.generator_losses(out, {**weights, "fine": 1.0}, None)
    groups = [a["img"], b["img"], a["pos"], b["pos"]]
    groups += [a["img_erased"], b["img_erased"], a["pos_erased"], b["pos_erased"]]
    groups += [out["x_ba"].detach(), out["x_ab"].detach()]
    with torch.no_grad():
        for x in groups:
            official(x, return_all=True)
    want, got = bn_state(official), bn_state(model.reid)
    assert want.keys() == got.keys() and any("classifier" in k for k in want)
    for k, v in want.items():
        torch.testing.assert_close(got[k], v, rtol=1e-6, atol=1e-7, msg=k)
    assert int(got["classifier.bottleneck.1.num_batches_tracked"]) == 10

    fused = build(fused=True)
    out = fused(a, b)
    fused.generator_losses(out, {**weights, "fine": 1.0}, None)
    other = bn_state(fused.reid)
    assert not torch.allclose(
        other["classifier.bottleneck.1.running_var"], want["classifier.bottleneck.1.running_var"]
    )


def test_grouped_and_fused_ea_give_the_same_outputs_without_batch_statistics():
    """With BN on running statistics (eval), grouping changes nothing but the batch split."""
    grouped, fused = build(fused=False).eval(), build(fused=True).eval()
    xs = [batch(23)["img"], batch(24)["img"]]
    with torch.no_grad():
        g, f = grouped.encode_appearance(xs), fused.encode_appearance(xs)
    torch.testing.assert_close(g["code"], f["code"], rtol=1e-5, atol=1e-5)
    for lg, lf in zip(g["logits"], f["logits"]):
        torch.testing.assert_close(lg, lf, rtol=1e-5, atol=1e-5)


def test_teacher_dropout_switch():
    """MODEL.TEACHER.DROPOUT_AFTER: from that (0-based) iteration on the teacher's dropout is
    in train mode (official 5000); 0 or -1: never. Teacher BN keeps its train_bn mode and its
    running statistics, and the teacher's modes are restored afterwards."""
    cfg = get_cfg("dgnet")
    assert cfg.MODEL.TEACHER.DROPOUT_AFTER == 5000
    assert not teacher_dropout_on(cfg, 4999) and teacher_dropout_on(cfg, 5000)
    for never in (0, -1):
        cfg.MODEL.TEACHER.DROPOUT_AFTER = never
        assert not any(teacher_dropout_on(cfg, it) for it in (0, 5000, 10**6))

    torch.manual_seed(0)
    teacher = build_model(tiny_cfg("IDEBaseline"), K).eval()
    x = batch(25)["img"]
    before = bn_state(teacher)
    plain = [teacher_forward(teacher, x, train_bn=True) for _ in range(2)]
    torch.testing.assert_close(plain[0], plain[1])  # deterministic
    noisy = [teacher_forward(teacher, x, train_bn=True, train_dropout=True) for _ in range(2)]
    assert not torch.allclose(noisy[0], noisy[1])  # dropout drawn at each call
    assert not teacher.training and not any(m.training for m in teacher.modules())
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())


def test_engine_passes_the_teacher_dropout_switch(monkeypatch):
    """DGNet.generator_losses hands ``teacher_dropout`` to both teacher calls."""
    import dgnet_plugin.methods.dgnet.meta_arch as meta_arch

    model = build(fused=False)
    teacher = build_model(tiny_cfg("IDEBaseline"), K)
    seen = []
    real = meta_arch.teacher_forward

    def spy(module, x, train_bn=True, train_dropout=False):
        seen.append(train_dropout)
        return real(module, x, train_bn, train_dropout)

    monkeypatch.setattr(meta_arch, "teacher_forward", spy)
    weights = {k: 0.0 for k in DGNET_LOSS_TERMS}
    out = model(batch(26), batch(27))
    for flag in (False, True):
        model.generator_losses(out, {**weights, "teacher_kl": 1.0}, teacher, teacher_dropout=flag)
    # one teacher call per direction and per flip (official predict_label), 4 per call
    assert seen == [False] * 4 + [True] * 4


@pytest.mark.parametrize("fused", [False, True])
def test_every_parameter_gets_a_gradient_with_either_ea_forward(fused):
    """DDP without find_unused_parameters: with recon_f a constant (official) and Ea run per
    group or fused, every parameter of Ea, Es and G still gets a gradient with every term on."""
    model = build(fused)
    teacher = build_model(tiny_cfg("IDEBaseline"), K)
    out = model(batch(28), batch(29))
    L = model.generator_losses(out, {k: 1.0 for k in DGNET_LOSS_TERMS}, teacher, reencode=False)
    assert not L["recon_f"].requires_grad
    sum(L.values()).backward()
    for part in (model.reid, model.gen):
        missing = [n for n, p in part.named_parameters() if p.grad is None]
        assert not missing, missing


def test_init_ea_copies_the_teacher_into_both_heads_and_the_backbone():
    """MODEL.TEACHER.INIT_EA (a small-budget option, not the official recipe): Ea's backbone
    and both heads start as the teacher's (they differed before)."""
    from dgnet_plugin.methods.dgnet.teacher import init_appearance_encoder

    torch.manual_seed(1)
    model = build_model(tiny_cfg(), K)
    teacher = build_model(tiny_cfg("IDEBaseline"), K)
    pairs = [
        (model.reid.backbone, teacher.backbone),
        (model.reid.classifier, teacher.classifier),
        (model.reid.classifier_fine, teacher.classifier),
    ]

    def same(a, b):
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

    assert not any(same(a, b) for a, b in pairs)
    init_appearance_encoder(model.reid, teacher)
    assert all(same(a, b) for a, b in pairs)


def test_init_ea_refuses_a_teacher_of_another_shape():
    from dgnet_plugin.config import ConfigError
    from dgnet_plugin.methods.dgnet.teacher import init_appearance_encoder

    model = build_model(tiny_cfg(), K)
    other = tiny_cfg("IDEBaseline")
    other.MODEL.HEADS.EMBEDDING_DIM = 64
    with pytest.raises(ConfigError, match="INIT_EA.*EMBEDDING_DIM"):
        init_appearance_encoder(model.reid, build_model(other, K))


@pytest.mark.parametrize("norm", ["BN", "FrozenBN"])
def test_frozen_bn_keeps_the_teachers_statistics_in_ea(norm):
    """The CPU demo's MODEL.NORM FrozenBN with INIT_EA: after a training step (real, erased
    and generated images through Ea) Ea's BN running statistics are still the teacher's, and
    BN's affine weights still learn; with plain BN (official) the statistics move."""
    from dgnet_plugin.methods.dgnet.teacher import init_appearance_encoder
    from dgnet_plugin.modeling.norm import convert_norm

    torch.manual_seed(2)
    model = build(fused=True)
    teacher = build_model(tiny_cfg("IDEBaseline"), K)
    with torch.no_grad():  # a teacher with non-trivial statistics
        teacher.train()(batch(3)["img"])
    convert_norm(model.reid, norm, "cpu", 1)
    init_appearance_encoder(model.reid, teacher)
    model.train()
    a, b = batch(21), batch(22)
    out = model(a, b)
    weights = {k: 1.0 for k in DGNET_LOSS_TERMS}
    loss = model.generator_losses(out, weights, teacher.eval())
    sum(loss.values()).backward()
    want = bn_state(teacher.backbone)
    got = bn_state(model.reid.backbone)
    moved = [k for k in want if "running" in k and not torch.equal(got[k], want[k])]
    if norm == "FrozenBN":
        assert not moved
        bn_weights = [
            m.weight for m in model.reid.backbone.modules() if "BatchNorm" in type(m).__name__
        ]
        assert bn_weights and all(w.grad is not None for w in bn_weights)
    else:
        assert len(moved) == len([k for k in want if "running" in k])
