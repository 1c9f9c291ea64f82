"""Stop a run whose losses blow up before they turn NaN: a bound and a growth factor."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from ..errors import UserError


class LossDivergedError(UserError, FloatingPointError):
    """A loss exceeded its bound, grew too fast, or became NaN/Inf (a user error: the message
    names the term, the value and the config key to change)."""


class DivergenceGuard:
    """Decide from the loss means of each log period whether training diverged.

    Feed it the means of one log period (the same on every rank: all-reduced) with
    :meth:`check`, which returns ``None`` to go on or a one-line message to stop with
    (raise :class:`LossDivergedError` with it, or call :meth:`raise_if_diverged`).

    Stops when a term:

    * is NaN or Inf;
    * exceeds ``max_loss`` (when ``max_loss > 0``);
    * is more than ``growth_factor`` times its value ``window`` log periods earlier (when
      ``growth_factor > 0`` and that earlier value is > 0; terms that can be negative or
      zero, such as some adversarial losses, are skipped while they are).

    Args:
        max_loss: upper bound of every term; 0 turns the bound off.
        growth_factor: allowed growth over ``window`` log periods (> 1); 0 turns it off.
        window: number of log periods the growth is measured over (>= 1).
        max_loss_key, growth_key: the config keys named in messages.

    Raises:
        ValueError: a negative ``max_loss``, a ``growth_factor`` in (0, 1], or ``window < 1``.
    """

    def __init__(
        self,
        max_loss: float = 0.0,
        growth_factor: float = 0.0,
        window: int = 10,
        max_loss_key: str = "SOLVER.DIVERGENCE.MAX_LOSS",
        growth_key: str = "SOLVER.DIVERGENCE.GROWTH_FACTOR",
    ):
        if max_loss < 0:
            raise ValueError(f"{max_loss_key} must be >= 0 (0 = off), got {max_loss}")
        if growth_factor < 0 or 0 < growth_factor <= 1:
            raise ValueError(f"{growth_key} must be > 1 or 0 (off), got {growth_factor}")
        if window < 1:
            raise ValueError(f"the divergence window must be >= 1 log period, got {window}")
        self.max_loss = float(max_loss)
        self.growth_factor = float(growth_factor)
        self.window = int(window)
        self.max_loss_key = max_loss_key
        self.growth_key = growth_key
        self._history: dict[str, deque[float]] = {}

    def check(self, means: Mapping[str, float], iteration: int | None = None) -> str | None:
        """Record one log period's loss ``means``; a message when training must stop."""
        at = f" at iteration {iteration}" if iteration is not None else ""
        for name, value in means.items():
            value = float(value)
            if not math.isfinite(value):
                return (
                    f"loss '{name}' is {value}{at}; lower the learning rates or check the "
                    "data, then --resume from the last checkpoint"
                )
            if self.max_loss > 0 and value > self.max_loss:
                return (
                    f"loss '{name}' = {value:.4g}{at} exceeds {self.max_loss_key} = "
                    f"{self.max_loss:g}; lower the learning rates and --resume, or raise "
                    f"{self.max_loss_key} (0 = off)"
                )
            history = self._history.setdefault(name, deque(maxlen=self.window))
            if self.growth_factor > 0 and len(history) == self.window:
                before = history[0]
                if before > 0 and value > self.growth_factor * before:
                    return (
                        f"loss '{name}' grew from {before:.4g} to {value:.4g}{at} "
                        f"({value / before:.1f}x in {self.window} log periods, more than "
                        f"{self.growth_key} = {self.growth_factor:g}); lower the learning "
                        f"rates and --resume, or raise {self.growth_key} (0 = off)"
                    )
            history.append(value)
        return None

    def raise_if_diverged(self, means: Mapping[str, float], iteration: int | None = None) -> None:
        """:meth:`check`, raising :class:`LossDivergedError` with its message."""
        msg = self.check(means, iteration)
        if msg is not None:
            raise LossDivergedError(msg)

    def state_dict(self) -> dict:
        """The recent history (to checkpoint it, so a resumed run keeps its window)."""
        return {k: list(v) for k, v in self._history.items()}

    def load_state_dict(self, state: dict) -> None:
        self._history = {k: deque(v, maxlen=self.window) for k, v in state.items()}
