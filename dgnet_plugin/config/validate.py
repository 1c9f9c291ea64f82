"""Check config values before any work, and compare the solver of a resumed run.

:func:`validate_config` applies :data:`CORE_RULES` (keys every method shares) plus a method's
own rules. A rule is ``(key, predicate, allowed)``: ``predicate(value, cfg)`` returns whether
``value`` (the value of ``key`` in ``cfg``) is allowed, and ``allowed`` says in words what
is. Keys missing from the config are skipped, so one rule list fits configs with and without
a method's keys. A method adds rules like::

    DGNET_RULES = (
        positive("LOSS.WARM_SCALE", integer=False),
        less_than("LOSS.WARM_ITER", "SOLVER.MAX_ITER", what="the warm-up"),
    )
    validate_config(cfg, extra_rules=DGNET_RULES)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .config import CfgNode, ConfigError

_MISSING = object()  # a key absent from the config
_REQUIRED = object()  # lookup without a default


class Rule(NamedTuple):
    """``predicate(value, cfg) -> bool`` for the value of ``key``; ``allowed`` describes the
    allowed values ("an integer > 0")."""

    key: str
    predicate: Callable[[Any, CfgNode], bool]
    allowed: str


def lookup(cfg: CfgNode, key: str, default=_REQUIRED):
    """The value of dotted ``key`` in ``cfg`` (``default`` when missing; raises ``KeyError``
    without a default)."""
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is _REQUIRED:
                raise KeyError(key)
            return default
        node = node[part]
    return node


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


# ---------------------------------------------------------------------------- rule makers
def positive(key: str, integer: bool = True) -> Rule:
    """``key`` > 0 (an integer unless ``integer=False``)."""
    if integer:
        return Rule(key, lambda v, cfg: _is_int(v) and v > 0, "an integer > 0")
    return Rule(key, lambda v, cfg: _is_number(v) and v > 0, "a finite number > 0")


def non_negative(key: str, integer: bool = True, note: str = "") -> Rule:
    """``key`` >= 0 (an integer unless ``integer=False``); ``note`` explains 0."""
    kind = "an integer" if integer else "a finite number"
    check = _is_int if integer else _is_number
    return Rule(key, lambda v, cfg: check(v) and v >= 0, f"{kind} >= 0{note}")


def probability(key: str) -> Rule:
    """``key`` in [0, 1]."""
    return Rule(key, lambda v, cfg: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]")


def positive_size(key: str) -> Rule:
    """``key`` is ``(H, W)`` with two integers > 0."""
    return Rule(
        key,
        lambda v, cfg: (
            isinstance(v, list | tuple) and len(v) == 2 and all(_is_int(x) and x > 0 for x in v)
        ),
        "(H, W): two integers > 0",
    )


def increasing_positive(key: str) -> Rule:
    """``key`` is a (possibly empty) strictly increasing sequence of integers > 0."""

    def ok(v, cfg):
        if not isinstance(v, list | tuple) or not all(_is_int(x) and x > 0 for x in v):
            return False
        return all(a < b for a, b in zip(v, v[1:]))

    return Rule(key, ok, "strictly increasing integers > 0, e.g. (60000, 90000)")


def less_than(key: str, bound_key: str, what: str = "") -> Rule:
    """``key`` < the value of ``bound_key`` (e.g. a warm-up shorter than the run); passes
    when ``bound_key`` is missing."""

    def ok(v, cfg):
        bound = lookup(cfg, bound_key, None)
        return bound is None or (_is_number(v) and v < bound)

    label = f"{what} must be shorter than the run: " if what else ""
    return Rule(key, ok, f"{label}< {bound_key}")


def one_of(key: str, choices: Iterable) -> Rule:
    choices = tuple(choices)
    return Rule(key, lambda v, cfg: v in choices, "one of " + " | ".join(map(str, choices)))


#: Keys of every method (the training core). Methods add theirs with ``extra_rules``.
CORE_RULES: tuple[Rule, ...] = (
    positive("SOLVER.IMS_PER_BATCH"),
    non_negative("DATALOADER.NUM_WORKERS", note=" (0 = load in the main process)"),
    positive("SOLVER.MAX_ITER"),
    non_negative("SOLVER.CHECKPOINT_PERIOD", note=" (0 = only the final checkpoint)"),
    non_negative("SOLVER.CHECKPOINT_KEEP", note=" (0 = keep all checkpoints)"),
    positive("SOLVER.REID.BASE_LR", integer=False),
    increasing_positive("SOLVER.STEPS"),
    positive("TEST.IMS_PER_BATCH"),
    positive_size("INPUT.SIZE_TRAIN"),
    positive_size("INPUT.SIZE_TEST"),
    non_negative("INPUT.PADDING"),
    probability("INPUT.FLIP_PROB"),
    probability("INPUT.REA.PROB"),
    non_negative("LOG_PERIOD", note=" (0 = only at the end)"),
    non_negative("VIS.PERIOD", note=" (0 = only at the end)"),
    non_negative("TEST.EVAL_PERIOD", note=" (0 = only at the end)"),
    Rule(
        "SOLVER.DIVERGENCE.MAX_LOSS",
        lambda v, cfg: _is_number(v) and v >= 0,
        "a number >= 0 (0 = off)",
    ),
    Rule(
        "SOLVER.DIVERGENCE.GROWTH_FACTOR",
        lambda v, cfg: _is_number(v) and (v == 0 or v > 1),
        "0 (off) or a number > 1",
    ),
    positive("SOLVER.DIVERGENCE.WINDOW"),
    one_of("DATASETS.SCAN", ("quick", "full", "off")),
    positive_size("DATASETS.MIN_IMAGE_SIZE"),
)


def validate_config(cfg: CfgNode, extra_rules: Iterable = ()) -> None:
    """Check ``cfg`` against :data:`CORE_RULES` and ``extra_rules`` (``Rule`` or plain
    ``(key, predicate, allowed)`` tuples) before any data is read or network built.

    Every violated rule is reported, in one line: ``KEY = VALUE is not allowed (ALLOWED)``,
    joined by ``; `` when there are several. Keys missing from ``cfg`` are skipped.

    Raises:
        ConfigError: one or more values are out of range.
    """
    problems = []
    for rule in (*CORE_RULES, *extra_rules):
        key, predicate, allowed = rule
        value = lookup(cfg, key, _MISSING)
        if value is _MISSING:
            continue
        try:
            ok = bool(predicate(value, cfg))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            problems.append(f"{key} = {value!r} is not allowed ({allowed})")
    if problems:
        raise ConfigError(
            "invalid config: " + "; ".join(problems) + ". Fix the YAML file or the KEY VALUE "
            "override"
        )


# ---------------------------------------------------------------------------- resume
def key_under(key: str, prefixes) -> bool:
    """Whether the dotted ``key`` is one of ``prefixes`` or lies under one of them
    (``"SOLVER.GEN.LR"`` is under ``"SOLVER.GEN"``, not under ``"SOLVER.G"``)."""
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def flatten(cfg: CfgNode, prefix: str = "") -> dict[str, Any]:
    """``{"SOLVER.MAX_ITER": 100000, ...}``: the leaves of ``cfg`` under dotted keys."""
    out = {}
    for k, v in cfg.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def diff_solver(old_cfg: CfgNode, new_cfg: CfgNode, section: str = "SOLVER") -> list[tuple]:
    """``[(key, old, new)]`` for every key under ``section`` whose value differs between the
    config the checkpoint was written with and the new one, sorted by key. A key present in
    only one of them has ``None`` on the other side. Lists and tuples compare equal when
    their items do (YAML loads tuples as lists)."""
    old = flatten(lookup(old_cfg, section, {}) or {}, section)
    new = flatten(lookup(new_cfg, section, {}) or {}, section)

    def norm(v):
        return tuple(norm(x) for x in v) if isinstance(v, list | tuple) else v

    return [
        (k, old.get(k), new.get(k))
        for k in sorted(set(old) | set(new))
        if norm(old.get(k)) != norm(new.get(k))
    ]


def format_diff(diffs: list[tuple]) -> str:
    """``SOLVER.BASE_LR: 0.002 -> 0.001, ...`` (one line) for a log message."""
    return ", ".join(f"{k}: {o!r} -> {n!r}" for k, o, n in diffs)


def read_run_config(output_dir: str) -> CfgNode | None:
    """The ``OUTPUT_DIR/config.yaml`` a previous run wrote (read as it is, without defaults),
    or ``None`` when there is none. Read it before the new run overwrites the file.

    Raises:
        ConfigError: the file exists but is not valid YAML.
    """
    path = os.path.join(output_dir, "config.yaml")
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return CfgNode.load_cfg(f)
    except Exception as e:
        raise ConfigError(
            f"cannot read the previous run's config '{path}' ({type(e).__name__}: {e}); "
            "restore or delete it"
        ) from None
