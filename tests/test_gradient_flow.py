"""Which networks each DG-Net loss term may and may not update (paper section 3; porting notes)."""

import pytest
import torch

from dgnet_plugin.config import get_cfg
from dgnet_plugin.methods.dgnet.meta_arch import ALWAYS_COMPUTED
from dgnet_plugin.methods.dgnet.schedule import DGNET_LOSS_TERMS, dgnet_loss_weights
from dgnet_plugin.modeling import build_model

N, H, W, K = 3, 64, 32, 6


def tiny_cfg(arch="DGNet"):
    c = get_cfg("dgnet")
    c.MODEL.META_ARCHITECTURE = arch
    c.MODEL.BACKBONE.NAME = "mobilenetv2"
    c.MODEL.BACKBONE.PRETRAIN = False
    c.MODEL.GEN.DIM = 4
    c.MODEL.GEN.MLP_DIM = 32
    c.MODEL.GEN.ASPP_DILATIONS = (1, 2, 3)
    c.MODEL.DIS.DIM = 8
    c.MODEL.DIS.N_RES = 1
    return c


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    model = build_model(tiny_cfg(), K).train()
    teacher = build_model(tiny_cfg("IDEBaseline"), K)
    return model, teacher


def batch(seed):
    g = torch.Generator().manual_seed(seed)
    mk = lambda: torch.randn(N, 3, H, W, generator=g)  # noqa: E731
    return {
        "img": mk(),
        "pos": mk(),
        "img_erased": mk(),
        "pos_erased": mk(),
        "pid": torch.randint(0, K, (N,), generator=g),
    }


GROUPS = {
    "Ea": lambda m: m.reid,
    "Es": lambda m: m.gen.encoder,
    "G": lambda m: m.gen.decoder,
    "MLP": lambda m: torch.nn.ModuleList([m.gen.mlp_w, m.gen.mlp_b]),
    "D": lambda m: m.dis,
}


def reached(loss, model, teacher) -> set[str]:
    """Names of the parameter groups that ``loss`` sends a non-zero gradient to."""
    if not loss.requires_grad:  # e.g. recon_f in the official variant: a logged constant
        return set()
    groups = {
        **{g: list(f(model).parameters()) for g, f in GROUPS.items()},
        "teacher": list(teacher.parameters()),
    }
    flat = [p for ps in groups.values() for p in ps]
    grads = torch.autograd.grad(loss, flat, retain_graph=True, allow_unused=True)
    hit, k = set(), 0
    for g, ps in groups.items():
        if any(gr is not None and gr.abs().sum() > 0 for gr in grads[k : k + len(ps)]):
            hit.add(g)
        k += len(ps)
    return hit


# term -> groups that must receive gradient; every other group (and the teacher) must not.
EXPECTED = {
    "gan": {"Es", "G", "MLP"},
    "recon_x": {"Es", "G", "MLP"},
    "recon_xp": {"Es", "G", "MLP"},
    "recon_f": set(),  # official: Ea' 's code is detached (LOSS.RECON_F_GRAD False)
    "recon_s": {"Es", "G", "MLP"},
    "cycle": {"Es", "G", "MLP"},
    "recon_id": {"Es", "G", "MLP"},
    "id": {"Ea"},
    "id_fine": {"Ea"},
    "id_pos": {"Ea"},
    "teacher_kl": {"Ea"},
    "fine": {"Ea"},
}


@pytest.fixture(scope="module", params=[0.0, 0.99], ids=["trainable_Es", "frozen_Es"])
def losses(request, nets):
    """Every term at weight 1. ``recon_s`` draws the trainable Es on the detached image
    (draw < 0.5) or the frozen Es on the generated image: both branches are checked."""
    model, teacher = nets
    out = model(batch(1), batch(2))
    weights = {k: 1.0 for k in DGNET_LOSS_TERMS}
    L = model.generator_losses(out, weights, teacher, reencode=request.param < 0.5)
    return request.param, L


@pytest.mark.parametrize("term", DGNET_LOSS_TERMS)
def test_each_generator_step_term_updates_only_its_networks(nets, losses, term):
    model, teacher = nets
    draw, L = losses
    assert set(L) == set(DGNET_LOSS_TERMS)
    expected = EXPECTED[term]
    if term == "recon_s" and draw < 0.5:  # trainable Es on the detached image: Es only
        expected = {"Es"}
    assert reached(L[term], model, teacher) == expected


def test_generation_terms_never_reach_ea_through_the_appearance_code(nets):
    model, teacher = nets
    out = model(batch(3), batch(4))
    assert out["x_ba"].grad_fn is not None
    gen_terms = [k for k, v in EXPECTED.items() if "Ea" not in v]
    L = model.generator_losses(out, {k: 1.0 for k in DGNET_LOSS_TERMS}, teacher)
    assert "Ea" not in reached(sum(L[k] for k in gen_terms), model, teacher)


def test_discriminator_losses_update_only_d(nets):
    model, teacher = nets
    out = model(batch(5), batch(6))
    d = model.discriminator_losses(out)
    assert set(d) == {"dis_adv", "dis_reg"} and d["dis_reg"].item() >= 0
    assert reached(sum(d.values()), model, teacher) == {"D"}


def test_frozen_ea_and_teacher_leave_batchnorm_statistics_untouched(nets):
    model, teacher = nets
    out = model(batch(7), batch(8))
    running = lambda m: {k: v.clone() for k, v in m.state_dict().items() if "running" in k}  # noqa: E731
    bn_reid, bn_teacher = running(model.reid), running(teacher)
    weights = {k: 0.0 for k in DGNET_LOSS_TERMS}
    model.generator_losses(out, {**weights, "recon_id": 1.0, "recon_f": 1.0}, teacher)  # frozen Ea
    assert all(torch.equal(v, model.reid.state_dict()[k]) for k, v in bn_reid.items())
    model.generator_losses(out, {**weights, "teacher_kl": 1.0}, teacher)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in bn_teacher.items())


def test_zero_weight_terms_are_skipped_but_those_of_the_shared_forward(nets):
    model, teacher = nets
    out = model(batch(9), batch(10))
    weights = {k: 0.0 for k in DGNET_LOSS_TERMS}
    weights.update(recon_x=5.0, gan=1.0)
    assert set(model.generator_losses(out, weights, None)) == {"gan", *ALWAYS_COMPUTED}


def test_every_trainable_parameter_gets_a_gradient_during_the_warm_up(nets):
    """DDP without find_unused_parameters needs every parameter of a phase to get a gradient
    at every iteration: at iteration 0 of the official schedule (code, cycle, teacher and
    fine-grained terms off), the G + Ea total reaches every parameter of Ea, Es and G (the
    fine-grained head through id_fine with weight 0: a zero gradient, as in the official
    code), and the D losses every parameter of D."""
    model, teacher = nets
    weights = dgnet_loss_weights(get_cfg("dgnet").LOSS, 0)
    assert weights["id_fine"] == weights["fine"] == weights["recon_f"] == 0.0
    model.zero_grad(set_to_none=True)
    out = model(batch(11), batch(12))
    L = model.generator_losses(out, weights, None, reencode=False)
    sum(weights[k] * v for k, v in L.items()).backward()
    for part in (model.reid, model.gen):
        missing = [n for n, p in part.named_parameters() if p.grad is None]
        assert not missing, missing
    fine = [p.grad for n, p in model.reid.named_parameters() if "classifier_fine" in n]
    assert fine and all(torch.count_nonzero(g) == 0 for g in fine)  # weight 0: zero gradient
    assert all(p.grad is None for p in model.dis.parameters())  # D: frozen in this phase
    sum(model.discriminator_losses(out).values()).backward()
    assert all(p.grad is not None for p in model.dis.parameters())


def test_recon_s_never_trains_the_real_images_structure_code(nets):
    """The official reconstruction criterion detaches its target: with the trainable Es on
    the detached generated images, recon_s sends no gradient to s_a, s_b (the structure codes
    of the real images), so none to Es through them."""
    model, teacher = nets
    out = model(batch(13), batch(14))
    L = model.generator_losses(out, {k: 1.0 for k in DGNET_LOSS_TERMS}, teacher, reencode=True)
    grads = torch.autograd.grad(L["recon_s"], [out["s_a"], out["s_b"]], allow_unused=True)
    assert all(g is None for g in grads)
    assert L["recon_s"].requires_grad  # it still trains Es through the re-encoded images


@pytest.mark.parametrize("paper", [False, True], ids=["official", "paper"])
def test_recon_f_trains_g_only_in_the_paper_variant(nets, paper):
    """LOSS.RECON_F_GRAD: official False (Ea detaches its code inside its forward, so L_code1
    sends no gradient anywhere); True, the paper's intent: G, the AdaIN MLPs and Es through
    the frozen Ea, never Ea itself."""
    model, teacher = nets
    mp = pytest.MonkeyPatch()
    mp.setattr(model, "recon_f_grad", paper)
    try:
        out = model(batch(15), batch(16))
        L = model.generator_losses(out, {k: 1.0 for k in DGNET_LOSS_TERMS}, teacher)
    finally:
        mp.undo()
    assert L["recon_f"].item() > 0  # computed and logged either way
    assert reached(L["recon_f"], model, teacher) == ({"Es", "G", "MLP"} if paper else set())
