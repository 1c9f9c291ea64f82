"""The training loop and its hooks (the detectron2 / fastreid ``HookBase`` shape).

``TrainerBase.train`` is only the loop: ``before_train``, then per iteration ``before_step``,
``run_step`` (one iteration of a method's algorithm, implemented by its engine) and
``after_step``, then ``after_train``. Every periodic action (LR schedule, logging and the
non-finite-loss stop, checkpoints, sample grids, evaluation) is a hook
(:mod:`dgnet_plugin.engine.hooks`); a method adds one by appending to ``build_hooks()``
instead of rewriting the loop.
"""

from __future__ import annotations

import weakref


class HookBase:
    """A hook: every method is a no-op by default; ``self.trainer`` is the trainer (set by
    :meth:`TrainerBase.register_hooks`). At ``after_step``, ``trainer.iter`` is the number
    of iterations done (1 after the first) and ``trainer.step_outputs`` the losses that
    ``run_step`` returned."""

    trainer: TrainerBase

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        """Called after the loop, also when it raised (``trainer.completed`` tells)."""

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def before_checkpoint(self) -> None:
        """Called before every checkpoint is written (checks that must pass before a save)."""


class TrainerBase:
    """The iteration loop with hooks. Subclasses implement :meth:`run_step`.

    Attributes: ``iter`` (iterations done), ``start_iter``, ``max_iter``, ``completed``
    (the loop reached ``max_iter``), ``step_outputs`` (the last ``run_step`` result) and the
    registered ``hooks``.
    """

    def __init__(self) -> None:
        self.hooks: list[HookBase] = []
        self.iter = 0
        self.start_iter = 0
        self.max_iter = 0
        self.completed = False
        self.step_outputs: dict = {}

    def register_hooks(self, hooks) -> None:
        """Append ``hooks`` (``None`` entries are skipped); they run in the order given. A
        hook holds a weak reference to the trainer (no reference cycle)."""
        for h in hooks:
            if h is None:
                continue
            h.trainer = weakref.proxy(self)
            self.hooks.append(h)

    def run_step(self, iteration: int) -> dict:
        """One iteration (0-based ``iteration``); returns the losses to log (tensors)."""
        raise NotImplementedError

    def train(self, start_iter: int, max_iter: int) -> None:
        """Run iterations ``start_iter .. max_iter - 1``."""
        self.iter = self.start_iter = start_iter
        self.max_iter = max_iter
        self.completed = False
        try:
            self.before_train()
            while self.iter < self.max_iter:
                self.before_step()
                self.step_outputs = self.run_step(self.iter)
                self.iter += 1
                self.after_step()
            self.completed = True
        finally:
            self.after_train()

    def before_train(self) -> None:
        for h in self.hooks:
            h.before_train()

    def after_train(self) -> None:
        for h in self.hooks:
            h.after_train()

    def before_step(self) -> None:
        for h in self.hooks:
            h.before_step()

    def after_step(self) -> None:
        for h in self.hooks:
            h.after_step()

    def before_checkpoint(self) -> None:
        for h in self.hooks:
            h.before_checkpoint()
