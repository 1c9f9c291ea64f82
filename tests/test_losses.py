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
    """The official loop (NVlabs/DG-Net trainer.py gen_update), run literally: each ramped
    term is computed only when its weight before this iteration's increment is > 0, the
    fine-grained ID term uses that earlier teacher_w (weight_B), then += warm_scale after
    warm_iter, and the total uses the incremented weights. Returns the effective weights."""
    f = cyc = t = 0.0
    for i in range(it + 1):
        on_f, on_cyc, on_t, weight_b = f > 0, cyc > 0, t > 0, t * 0.2
        if i > 30000:
            f = min(f + 0.0005, 1.0)
            cyc = min(cyc + 0.0005, 2.0)
        if i > 30000:
            t = min(t + 0.0005, 2.0)
    return f * on_f, f * on_f, cyc * on_cyc, t * on_t, weight_b


@pytest.mark.parametrize("it", [0, 29999, 30000, 30001, 30002, 31000, 32000, 33000, 34000, 50000])
def test_warmup_weights_equal_the_official_schedule(it):
    w = dgnet_loss_weights(get_cfg("dgnet").LOSS, it)
    f, s, cyc, t, weight_b = _official_weights(it)
    assert w["recon_f"] == pytest.approx(f) and w["recon_s"] == pytest.approx(s)
    assert w["cycle"] == pytest.approx(cyc) and w["teacher_kl"] == pytest.approx(t)
    assert w["fine"] == pytest.approx(0.2 * t) and w["id_fine"] == pytest.approx(weight_b)
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


def test_vanilla_gan_by_hand():
    from dgnet_plugin.losses import vanilla_gan_dis_loss, vanilla_gan_gen_loss

    def sig(v):
        return 1 / (1 + math.exp(-v))

    fake = [torch.tensor([[0.0, 2.0]]), torch.tensor([[-1.0]])]
    real = [torch.tensor([[1.0, 3.0]]), torch.tensor([[0.5]])]
    gen = (-math.log(sig(0)) - math.log(sig(2))) / 2 - math.log(sig(-1))
    assert vanilla_gan_gen_loss(fake).item() == pytest.approx(gen)
    dis = (
        (-math.log(1 - sig(0)) - math.log(1 - sig(2))) / 2
        - math.log(1 - sig(-1))
        + (-math.log(sig(1)) - math.log(sig(3))) / 2
        - math.log(sig(0.5))
    )
    assert vanilla_gan_dis_loss(fake, real).item() == pytest.approx(dis)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert vanilla_gan_gen_loss(fake[0]).item() == pytest.approx(
        bce(fake[0], torch.ones_like(fake[0])).item()
    )


def test_batch_hard_triplet_by_hand():
    from dgnet_plugin.losses import triplet_loss

    # points 0, 1 (pid 0) and 3, 7 (pid 1) on a line; only anchor 3 violates the margin:
    # hardest positive 7 (d=4), hardest negative 1 (d=2): 4 - 2 + 0.3
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    pids = torch.tensor([0, 0, 1, 1])
    assert triplet_loss(x, pids, 0.3).item() == pytest.approx(2.3 / 4)
    assert triplet_loss(x, pids, 3.5).item() == pytest.approx((1.5 + 2.5 + 5.5 + 1.5) / 4)


def test_contrastive_by_hand():
    from dgnet_plugin.losses import contrastive_loss

    x1 = torch.zeros(3, 2)
    x2 = torch.tensor([[3.0, 4.0], [0.0, 0.5], [0.0, 2.0]])
    same = torch.tensor([1, 0, 0])
    # d = 5, 0.5, 2: 25/2 (same), (1 - 0.5)^2 / 2, max(0, 1 - 2)^2 / 2 = 0
    assert contrastive_loss(x1, x2, same, 1.0).item() == pytest.approx((12.5 + 0.125) / 3)


def test_vae_kl_by_hand():
    from dgnet_plugin.losses import vae_kl_loss

    assert vae_kl_loss(torch.tensor([[1.0, 2.0], [3.0, 0.0]])).item() == pytest.approx(3.5)


def test_image_pool_fills_then_swaps_half_of_the_time():
    from dgnet_plugin.losses import ImagePool

    x = torch.arange(4.0).view(4, 1, 1, 1)
    assert ImagePool(0).query(x) is x
    pool = ImagePool(2, torch.Generator().manual_seed(0))
    assert torch.equal(pool.query(x[:2]), x[:2])  # filling: returned as they are
    replay = torch.Generator().manual_seed(0)
    stored, expected = [0.0, 1.0], []
    for v in (2.0, 3.0):  # CycleGAN's rule replayed with the same draws
        if torch.rand((), generator=replay).item() > 0.5:
            k = int(torch.randint(2, (), generator=replay))
            expected.append(stored[k])
            stored[k] = v
        else:
            expected.append(v)
    out = pool.query(x[2:].requires_grad_())
    assert out.flatten().tolist() == expected and not out.requires_grad
    assert [float(t) for t in pool.images] == stored
    other = ImagePool(2)
    other.load_state_dict(pool.state_dict())
    assert [float(t) for t in other.images] == stored
