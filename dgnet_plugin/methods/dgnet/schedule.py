"""Loss weights of DG-Net as pure functions of the iteration (warm-up ramps, section 4.1)."""

from __future__ import annotations

#: Every generator-step loss term of DG-Net, in the order they are logged.
DGNET_LOSS_TERMS = (
    "gan",  # L_adv
    "recon_x",  # L_img1
    "recon_xp",  # L_img2
    "recon_f",  # L_code1
    "recon_s",  # L_code2
    "cycle",  # cycle reconstruction (official code)
    "recon_id",  # L_id^c on generated images, through the frozen Ea
    "id",  # L_id^s primary head, real (erased) images
    "id_fine",  # fine-grained head on real images
    "id_pos",  # primary head on the (erased) positive images
    "teacher_kl",  # L_prim
    "fine",  # L_fine, the structure provider's identity
)


def warmup_ramp(iteration: int, start: int, scale: float, maximum: float) -> float:
    """``min(maximum, max(0, iteration - start) * scale)``.

    The official code adds ``scale`` to the weight on every iteration after ``start``; this is
    that weight after ``iteration`` iterations (0-based), without mutating any state.
    """
    return min(maximum, max(0, iteration - start) * scale)


def dgnet_loss_weights(loss_cfg, iteration: int) -> dict[str, float]:
    """Weight of every term of :data:`DGNET_LOSS_TERMS` at ``iteration``, as the official
    ``gen_update`` (NVlabs/DG-Net ``trainer.py``) applies them.

    ``loss_cfg`` is ``cfg.LOSS``. With the official values: recon_f / recon_s ramp from 0 at
    30k by 5e-4 per iteration to 1 (32k); the cycle weight to 2 (34k); the teacher weight
    ``lambda_prim`` to 2 (34k), and ``lambda_fine = 0.2 * lambda_prim`` (on generated images
    and on the fine-grained head of real images).

    The official order within an iteration: the ramped terms are computed only when their
    weight *before* this iteration's increment is > 0 (``... if recon_s_w > 0 else 0``,
    ``if teacher_w > 0``), the fine-grained ID term of the real images is weighted with that
    earlier ``teacher_w`` (``weight_B``), then the weights are incremented and the total uses
    the incremented ones. So a ramped term enters one iteration after its weight leaves 0, and
    ``id_fine`` lags the teacher weight by one iteration (both differ from the plain ramp by
    one ``WARM_SCALE`` step, 5e-4).
    """
    c = loss_cfg

    def ramped(start: float, maximum: float) -> tuple[float, float]:
        before = warmup_ramp(iteration - 1, start, c.WARM_SCALE, maximum)
        after = warmup_ramp(iteration, start, c.WARM_SCALE, maximum)
        return before, (after if before > 0 else 0.0)

    _, code = ramped(c.WARM_ITER, c.RECON_CODE_MAX)
    _, cycle = ramped(c.WARM_ITER, c.CYCLE_MAX)
    teacher_before, teacher = ramped(c.WARM_TEACHER_ITER, c.TEACHER_MAX)
    return {
        "gan": c.GAN,
        "recon_x": c.RECON_X,
        "recon_xp": c.RECON_XP,
        "recon_f": code,
        "recon_s": code,
        "cycle": cycle,
        "recon_id": c.RECON_ID,
        "id": c.ID,
        "id_fine": c.ID * teacher_before * c.FINE,
        "id_pos": c.ID_POS,
        "teacher_kl": teacher,
        "fine": teacher * c.FINE,
    }
