"""Losses against hand-computed numbers, and the warm-up schedule against the official one."""

import math

import pytest
import torch

from dgnet_plugin.config import get_cfg
from dgnet_plugin.losses import (
    id_loss,
    lsgan_dis_loss,
    lsgan_gen_loss,
    real_gradient_penalty,
    recon_l1_loss,
    soft_label_kl_loss,
    teacher_soft_label,
)
from dgnet_plugin.methods.dgnet.schedule import dgnet_loss_weights, warmup_ramp


def test_recon_l1_by_hand_and_shape_check():
    a = torch.tensor([[1.0, -2.0], [0.5, 4.0]])
    b = torch.tensor([[0.0, 0.0], [0.5, 1.0]])
    assert recon_l1_loss(a, b).item() == pytest.approx((1 + 2 + 0 + 3) / 4)
    with pytest.raises(ValueError, match="shapes differ"):
        recon_l1_loss(a, b[:1])


def test_lsgan_by_hand():
    fake = [torch.tensor([[0.5, 1.5]]), torch.tensor([[0.0]])]
    real = [torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0]])]
    # G: mean((f-1)^2) per scale, no method weighting: (0.25 + 0.25)/2 + 1
    assert lsgan_gen_loss(fake).item() == pytest.approx(0.25 + 1.0)
    # D: mean(f^2) + mean((r-1)^2) per scale: (0.25+2.25)/2 + (0+1)/2  +  0 + 1
    assert lsgan_dis_loss(fake, real).item() == pytest.approx(1.25 + 0.5 + 0.0 + 1.0)


def test_gradient_penalty_matches_the_analytic_gradient_of_a_linear_critic():
    w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    x = torch.randn(4, 3, requires_grad=True)
    outs = [x @ w, 2 * (x @ w)]  # d(sum D)/dx_n = w and 2w
    pen = real_gradient_penalty(outs, x)
    assert pen.item() == pytest.approx((w @ w).item() * (1 + 4))
    pen.backward()  # create_graph: the penalty trains D, d(5 |w|^2)/dw = 10 w
    assert torch.allclose(w.grad, 10 * w.detach())


def test_id_loss_is_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
    assert id_loss(logits, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-6)


def test_soft_label_and_kl_by_hand():
    t = torch.tensor([[0.0, 0.0]])
    tf = torch.tensor([[math.log(3.0), 0.0]])
    q = teacher_soft_label(t, tf)  # (0.5 + 0.75)/2, (0.5 + 0.25)/2
    assert torch.allclose(q, torch.tensor([[0.625, 0.375]]))
    s = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    q2 = torch.tensor([[0.625, 0.375], [0.5, 0.5]])
    kl = 0.625 * math.log(0.625 / 0.5) + 0.375 * math.log(0.375 / 0.5)
    assert soft_label_kl_loss(s, q2).item() == pytest.approx(kl / 2, rel=1e-5)
    with pytest.raises(ValueError, match="same identities"):
        soft_label_kl_loss(s, torch.ones(2, 3) / 3)


def _official_weights(it):
    """The official loop, run literally: += warm_scale each iteration after warm_iter."""
    f = s = cyc = t = 0.0
    for i in range(it + 1):
        if i > 30000:
            f = min(f + 0.0005, 1.0)
            cyc = min(cyc + 0.0005, 2.0)
        if i > 30000:
            t = min(t + 0.0005, 2.0)
    s = f
    return f, s, cyc, t


@pytest.mark.parametrize("it", [0, 29999, 30000, 30001, 31000, 32000, 33000, 34000, 50000])
def test_warmup_weights_equal_the_official_schedule(it):
    w = dgnet_loss_weights(get_cfg("dgnet").LOSS, it)
    f, s, cyc, t = _official_weights(it)
    assert w["recon_f"] == pytest.approx(f) and w["recon_s"] == pytest.approx(s)
    assert w["cycle"] == pytest.approx(cyc) and w["teacher_kl"] == pytest.approx(t)
    assert w["fine"] == pytest.approx(0.2 * t) and w["id_fine"] == pytest.approx(0.2 * t)
    assert (w["recon_x"], w["recon_xp"], w["recon_id"], w["gan"], w["id"], w["id_pos"]) == (
        5,
        5,
        0.5,
        1,
        1,
        1,
    )


def test_warmup_reference_points():
    c = get_cfg("dgnet").LOSS
    assert dgnet_loss_weights(c, 30000)["teacher_kl"] == 0.0
    assert dgnet_loss_weights(c, 32000)["recon_f"] == pytest.approx(1.0)
    assert dgnet_loss_weights(c, 34000)["teacher_kl"] == pytest.approx(2.0)
    assert dgnet_loss_weights(c, 34000)["fine"] == pytest.approx(0.4)
    assert warmup_ramp(10, 5, 0.5, 2.0) == 2.0 and warmup_ramp(6, 5, 0.5, 2.0) == 0.5
