"""validate_config: every core rule names the key, the value and the allowed range; method
rules; diff_solver against the config.yaml of the checkpoint-time run."""

from __future__ import annotations

import pytest

from dgnet_plugin.config import ConfigError, get_cfg
from dgnet_plugin.config.config import CfgNode
from dgnet_plugin.config.validate import (
    CORE_RULES,
    Rule,
    diff_solver,
    format_diff,
    less_than,
    lookup,
    positive,
    read_run_config,
    validate_config,
)

# (key, a bad value, text of the allowed range): one case per core rule
BAD = [
    ("SOLVER.IMS_PER_BATCH", 0, "an integer > 0"),
    ("SOLVER.IMS_PER_BATCH", -8, "an integer > 0"),
    ("DATALOADER.NUM_WORKERS", -1, "an integer >= 0 (0 = load in the main process)"),
    ("SOLVER.MAX_ITER", 0, "an integer > 0"),
    ("SOLVER.CHECKPOINT_PERIOD", -5, "an integer >= 0 (0 = only the final checkpoint)"),
    ("SOLVER.REID.BASE_LR", 0.0, "a finite number > 0"),
    ("SOLVER.REID.BASE_LR", -0.1, "a finite number > 0"),
    ("SOLVER.REID.BASE_LR", float("nan"), "a finite number > 0"),
    ("SOLVER.STEPS", (90000, 60000), "strictly increasing integers > 0"),
    ("SOLVER.STEPS", (0, 10), "strictly increasing integers > 0"),
    ("SOLVER.STEPS", (10, 10), "strictly increasing integers > 0"),
    ("TEST.IMS_PER_BATCH", 0, "an integer > 0"),
    ("INPUT.SIZE_TRAIN", (256, 0), "(H, W): two integers > 0"),
    ("INPUT.SIZE_TEST", (-1, 128), "(H, W): two integers > 0"),
    ("INPUT.SIZE_TEST", (256,), "(H, W): two integers > 0"),
    ("INPUT.PADDING", -10, "an integer >= 0"),
    ("INPUT.FLIP_PROB", 1.5, "a number in [0, 1]"),
    ("INPUT.FLIP_PROB", -0.1, "a number in [0, 1]"),
    ("INPUT.REA.PROB", 2.0, "a number in [0, 1]"),
    ("LOG_PERIOD", -1, "an integer >= 0 (0 = only at the end)"),
    ("VIS.PERIOD", -1, "an integer >= 0 (0 = only at the end)"),
    ("TEST.EVAL_PERIOD", -100, "an integer >= 0 (0 = only at the end)"),
    ("SOLVER.CHECKPOINT_KEEP", -1, "an integer >= 0 (0 = keep all checkpoints)"),
    ("SOLVER.DIVERGENCE.MAX_LOSS", -1.0, "a number >= 0 (0 = off)"),
    ("SOLVER.DIVERGENCE.GROWTH_FACTOR", 0.5, "0 (off) or a number > 1"),
    ("SOLVER.DIVERGENCE.WINDOW", 0, "an integer > 0"),
    ("DATASETS.SCAN", "fast", "one of quick | full | off"),
    ("DATASETS.MIN_IMAGE_SIZE", (0, 8), "(H, W): two integers > 0"),
]


def _set(cfg, key, value):
    *parents, leaf = key.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[leaf] = value


def test_defaults_and_shipped_configs_are_valid():
    from conftest import REPO

    from dgnet_plugin.config import load_cfg_file

    validate_config(get_cfg())
    for path in sorted((REPO / "configs").glob("*.yml")):  # the runnable ones, not Base-*
        if not path.name.startswith("Base-"):
            validate_config(load_cfg_file(str(path)))


@pytest.mark.parametrize("key, value, allowed", BAD, ids=[f"{k}={v}" for k, v, _ in BAD])
def test_every_core_rule_names_key_value_and_range(key, value, allowed):
    cfg = get_cfg()
    _set(cfg, key, value)
    with pytest.raises(ConfigError) as e:
        validate_config(cfg)
    msg = str(e.value)
    assert f"{key} = {value!r} is not allowed ({allowed}" in msg
    assert "\n" not in msg and msg.count("is not allowed") == 1


def test_every_core_rule_is_exercised():
    tested = {k for k, _, _ in BAD}
    assert {r.key for r in CORE_RULES} == tested


def test_boundaries_are_allowed():
    cfg = get_cfg()
    for key, value in [
        ("DATALOADER.NUM_WORKERS", 0),
        ("SOLVER.CHECKPOINT_PERIOD", 0),
        ("SOLVER.STEPS", ()),
        ("INPUT.FLIP_PROB", 0.0),
        ("INPUT.REA.PROB", 1.0),
        ("LOG_PERIOD", 0),
        ("SOLVER.IMS_PER_BATCH", 1),
        ("SOLVER.REID.BASE_LR", 1e-9),
    ]:
        _set(cfg, key, value)
    validate_config(cfg)


def test_all_problems_in_one_line_and_missing_keys_skipped():
    cfg = get_cfg()
    _set(cfg, "SOLVER.MAX_ITER", 0)
    _set(cfg, "INPUT.FLIP_PROB", 3.0)
    del cfg["VIS"]  # a method without sample grids: its rule is skipped
    with pytest.raises(ConfigError) as e:
        validate_config(cfg)
    msg = str(e.value)
    assert msg.startswith("invalid config: ")
    assert "SOLVER.MAX_ITER = 0 is not allowed" in msg and "INPUT.FLIP_PROB = 3.0" in msg
    assert msg.count("; ") == 1 and "VIS" not in msg


def test_dgnet_warm_up_longer_than_the_run_is_refused_before_any_work(tmp_path):
    from conftest import REPO

    from dgnet_plugin.config import get_method, load_cfg_file

    cfg = load_cfg_file(
        str(REPO / "configs" / "dgnet_cuhk03_cpu_demo.yml"),
        ["SOLVER.MAX_ITER", "50", "LOSS.WARM_ITER", "100"],
    )
    with pytest.raises(ConfigError, match=r"LOSS.WARM_ITER = 100 is not allowed \(the warm-up"):
        validate_config(cfg, get_method("dgnet").config_rules)


def test_method_rules_warm_up_shorter_than_the_run():
    rules = (
        less_than("LOSS.WARM_ITER", "SOLVER.MAX_ITER", what="the warm-up"),
        positive("LOSS.WARM_SCALE", integer=False),
        ("LOSS.GAN", lambda v, cfg: v <= 10, "at most 10"),  # a plain tuple works too
        Rule("NOT.IN.CFG", lambda v, cfg: False, "never checked"),
    )
    cfg = get_cfg()
    cfg.SOLVER.MAX_ITER = 200
    cfg.LOSS.WARM_ITER = 100
    validate_config(cfg, extra_rules=rules)
    cfg.LOSS.WARM_ITER = 200
    cfg.LOSS.GAN = 11.0
    with pytest.raises(ConfigError) as e:
        validate_config(cfg, extra_rules=rules)
    msg = str(e.value)
    assert (
        "LOSS.WARM_ITER = 200 is not allowed (the warm-up must be shorter than the run: "
        "< SOLVER.MAX_ITER)" in msg
    )
    assert "LOSS.GAN = 11.0 is not allowed (at most 10)" in msg


def test_a_predicate_that_raises_counts_as_a_violation():
    cfg = get_cfg()
    validate_config(
        cfg, extra_rules=[Rule("SOLVER.AMP", lambda v, cfg: v in ("bf16", "fp16", "off"), "x")]
    )
    with pytest.raises(ConfigError, match="SOLVER.AMP = 'bf16' is not allowed"):
        validate_config(cfg, extra_rules=[Rule("SOLVER.AMP", lambda v, cfg: v > 0, "a number")])


def test_lookup():
    cfg = get_cfg()
    assert lookup(cfg, "SOLVER.REID.BASE_LR") == 0.002
    assert lookup(cfg, "SOLVER.NOPE", None) is None
    with pytest.raises(KeyError):
        lookup(cfg, "SOLVER.MAX_ITER.X")


# ------------------------------------------------------------------ resume
def test_diff_solver_against_the_written_config_yaml(tmp_path):
    old = get_cfg()
    old.SOLVER.MAX_ITER = 200
    old.SOLVER.STEPS = (160,)
    (tmp_path / "config.yaml").write_text(old.dump())
    written = read_run_config(str(tmp_path))
    new = get_cfg()
    new.SOLVER.MAX_ITER = 400
    new.SOLVER.STEPS = (160,)  # a tuple here, a list in the YAML: equal
    new.SOLVER.REID.BASE_LR = 0.001
    new.LOSS.GAN = 2.0  # not SOLVER: ignored
    new.SOLVER.NEW_KEY = 3
    diffs = diff_solver(written, new)
    assert diffs == [
        ("SOLVER.MAX_ITER", 200, 400),
        ("SOLVER.NEW_KEY", None, 3),
        ("SOLVER.REID.BASE_LR", 0.002, 0.001),
    ]
    assert format_diff(diffs) == (
        "SOLVER.MAX_ITER: 200 -> 400, SOLVER.NEW_KEY: None -> 3, "
        "SOLVER.REID.BASE_LR: 0.002 -> 0.001"
    )
    assert diff_solver(written, written) == []
    assert diff_solver(CfgNode(), new, "SOLVER")[0] == ("SOLVER.AMP", None, "bf16")


def test_read_run_config_missing_and_garbled(tmp_path):
    assert read_run_config(str(tmp_path)) is None
    (tmp_path / "config.yaml").write_text("SOLVER: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read the previous run's config '.*config.yaml'"):
        read_run_config(str(tmp_path))
