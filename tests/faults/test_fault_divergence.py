"""DivergenceGuard: a bound, a growth factor over a window, NaN; messages name term, value, key."""

from __future__ import annotations

import math

import pytest

from dgnet_plugin.engine.divergence import DivergenceGuard, LossDivergedError
from dgnet_plugin.utils.cli import run_cli


def test_off_by_default_except_for_nan():
    g = DivergenceGuard()
    for v in (1.0, 1e6, 1e12):
        assert g.check({"loss_id": v}) is None
    msg = g.check({"loss_id": 1.0, "loss_gan": math.nan}, iteration=40)
    assert msg.startswith("loss 'loss_gan' is nan at iteration 40")
    assert "inf" in g.check({"x": math.inf})


def test_bound_names_term_value_and_key():
    g = DivergenceGuard(max_loss=100.0)
    assert g.check({"a": 99.9, "b": 100.0}) is None  # the bound itself is allowed
    msg = g.check({"a": 1.0, "b": 250.5}, iteration=1200)
    assert msg == (
        "loss 'b' = 250.5 at iteration 1200 exceeds SOLVER.DIVERGENCE.MAX_LOSS = 100; lower "
        "the learning rates and --resume, or raise SOLVER.DIVERGENCE.MAX_LOSS (0 = off)"
    )


def test_growth_is_measured_against_the_value_window_periods_earlier():
    g = DivergenceGuard(growth_factor=10.0, window=3, growth_key="LOSS.GROWTH")
    # periods: 1.0, 2.0, 4.0 fill the window; 9.9 <= 10 x 1.0 goes on
    for v in (1.0, 2.0, 4.0, 9.9):
        assert g.check({"l": v}) is None
    # now the value 3 periods earlier is 2.0: 20.0 is not more than 10x it
    assert g.check({"l": 20.0}) is None  # window now 4.0, 9.9, 20.0
    msg = g.check({"l": 40.1}, iteration=7)  # 40.1 > 10 x 4.0
    assert msg.startswith("loss 'l' grew from 4 to 40.1 at iteration 7 (10.0x in 3 log periods")
    assert "more than LOSS.GROWTH = 10" in msg and "raise LOSS.GROWTH (0 = off)" in msg


def test_growth_needs_a_full_window_and_a_positive_reference():
    g = DivergenceGuard(growth_factor=2.0, window=2)
    assert g.check({"l": 1.0}) is None
    assert g.check({"l": 50.0}) is None  # only one earlier period: not a full window
    g = DivergenceGuard(growth_factor=2.0, window=1)
    assert g.check({"adv": -1.0}) is None
    assert g.check({"adv": 5.0}) is None  # negative reference: skipped
    assert g.check({"adv": 0.0}) is None
    assert g.check({"adv": 1.0}) is None  # zero reference: skipped
    assert "grew from 1 to 2.5" in g.check({"adv": 2.5})


def test_terms_are_tracked_separately_and_state_survives_a_resume():
    g = DivergenceGuard(growth_factor=3.0, window=2)
    g.check({"a": 1.0, "b": 10.0})
    g.check({"a": 1.0, "b": 10.0})
    h = DivergenceGuard(growth_factor=3.0, window=2)
    h.load_state_dict(g.state_dict())
    assert h.state_dict() == {"a": [1.0, 1.0], "b": [10.0, 10.0]}
    assert h.check({"a": 2.9, "b": 29.0}) is None
    assert "'b' grew from 10 to 31" in h.check({"a": 1.0, "b": 31.0})


def test_raise_if_diverged_is_a_user_error():
    g = DivergenceGuard(max_loss=1.0)

    def main(_):
        g.raise_if_diverged({"l": 2.0})

    with pytest.raises(LossDivergedError, match="'l' = 2"):
        main(None)
    assert run_cli(main, None) == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_loss": -1.0}, "MAX_LOSS must be >= 0"),
        ({"growth_factor": 1.0}, "GROWTH_FACTOR must be > 1 or 0"),
        ({"growth_factor": -2.0}, "GROWTH_FACTOR must be > 1 or 0"),
        ({"window": 0}, "window must be >= 1"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DivergenceGuard(**kwargs)
