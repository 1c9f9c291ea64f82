import pytest
from conftest import REPO

from dgnet_plugin.config import ConfigError, get_cfg, load_cfg_file
from dgnet_plugin.config.config import CfgNode
from dgnet_plugin.methods.dgnet.config import add_dgnet_config


def test_defaults_are_the_official_market_recipe():
    c = get_cfg("dgnet")
    assert tuple(c.INPUT.SIZE_TRAIN) == (256, 128)
    assert c.MODEL.BACKBONE.LAST_STRIDE == 1 and c.MODEL.HEADS.NUM_PARTS == 4
    assert (c.LOSS.RECON_X, c.LOSS.RECON_XP, c.LOSS.RECON_ID, c.LOSS.GAN) == (5.0, 5.0, 0.5, 1.0)
    assert (c.LOSS.TEACHER_MAX, c.LOSS.FINE, c.LOSS.CYCLE_MAX) == (2.0, 0.2, 2.0)
    assert (c.LOSS.WARM_ITER, c.LOSS.WARM_TEACHER_ITER, c.LOSS.WARM_SCALE) == (30000, 30000, 0.0005)
    assert c.SOLVER.MAX_ITER == 100000 and tuple(c.SOLVER.STEPS) == (60000, 90000, 105000)
    assert (c.SOLVER.GEN.LR, tuple(c.SOLVER.GEN.BETAS)) == (1e-4, (0.0, 0.999))
    assert (c.SOLVER.REID.BASE_LR, c.SOLVER.REID.HEADS_LR_FACTOR) == (0.002, 10.0)
    assert c.SOLVER.IMS_PER_BATCH == 8 and c.TEST.ALPHA == 0.5
    assert c.MODEL.DIS.GRAD_PENALTY == 0.01 and c.INPUT.REA.PROB == 0.5


@pytest.mark.parametrize(
    "name",
    [
        "dgnet_r50",
        "dgnet_r50_bf16",
        "teacher_r50",
        "dgnet_cuhk03_cpu_demo",
        "teacher_cuhk03_cpu_demo",
    ],
)
def test_shipped_configs_load_with_base_inheritance(name):
    cfg = load_cfg_file(str(REPO / "configs" / f"{name}.yml"))
    assert cfg.OUTPUT_DIR.startswith("output/")
    if "teacher" in name:
        assert cfg.ENGINE.NAME == "IDEEngine" and cfg.MODEL.META_ARCHITECTURE == "IDEBaseline"
    else:
        assert cfg.ENGINE.NAME == "DGNetEngine" and cfg.MODEL.TEACHER.CONFIG


def test_official_config_equals_defaults_where_the_recipe_lives():
    cfg = load_cfg_file(str(REPO / "configs" / "dgnet_r50.yml"))
    d = get_cfg("dgnet")
    d.SOLVER.AMP = "off"  # the one exception: the recipe is float32, the core default bf16
    for key in ("LOSS", "SOLVER", "MODEL.GEN", "MODEL.DIS", "MODEL.HEADS", "INPUT"):
        a, b = cfg, d
        for part in key.split("."):
            a, b = a[part], b[part]
        assert a == b, key
    for key in ("EA_FUSED_FORWARD", "TEACHER.TRAIN_BN", "TEACHER.DROPOUT_AFTER"):
        a, b = cfg.MODEL, d.MODEL
        for part in key.split("."):
            a, b = a[part], b[part]
        assert a == b, key


def test_official_code_behaviour_is_the_default_and_the_paper_an_option():
    """docs/methods/dgnet.md: Ea once per group, recon_f without gradient, the
    teacher's dropout from iteration 5000, float32; the CPU demo keeps a deterministic
    teacher; dgnet_r50_bf16 differs from dgnet_r50 in precision only."""
    d = get_cfg("dgnet")
    assert d.MODEL.EA_FUSED_FORWARD is False and d.LOSS.RECON_F_GRAD is False
    assert d.MODEL.TEACHER.DROPOUT_AFTER == 5000
    r50 = load_cfg_file(str(REPO / "configs" / "dgnet_r50.yml"))
    assert r50.SOLVER.AMP == "off" and r50.MODEL.TEACHER.DROPOUT_AFTER == 5000
    demo = load_cfg_file(str(REPO / "configs" / "dgnet_cuhk03_cpu_demo.yml"))
    assert demo.MODEL.TEACHER.DROPOUT_AFTER == -1
    bf16 = load_cfg_file(str(REPO / "configs" / "dgnet_r50_bf16.yml"))
    assert bf16.SOLVER.AMP == "bf16"
    bf16.defrost()
    bf16.SOLVER.AMP, bf16.OUTPUT_DIR = r50.SOLVER.AMP, r50.OUTPUT_DIR
    assert bf16 == r50


def test_unknown_key_in_file_names_the_file_and_key(tmp_path):
    f = tmp_path / "bad.yml"
    f.write_text("ENGINE:\n  NAME: DGNetEngine\nSOLVER:\n  MAX_ITERS: 10\n")
    with pytest.raises(ConfigError, match=r"bad\.yml.*SOLVER\.MAX_ITERS"):
        load_cfg_file(str(f))


def test_a_config_without_or_with_an_unknown_engine_names_the_choices(tmp_path):
    f = tmp_path / "none.yml"
    f.write_text("SOLVER:\n  MAX_ITER: 10\n")
    with pytest.raises(ConfigError, match=r"none\.yml: ENGINE.NAME is empty.*DGNetEngine"):
        load_cfg_file(str(f))
    f.write_text("ENGINE:\n  NAME: NoSuchEngine\n")
    with pytest.raises(ConfigError, match=r"'NoSuchEngine' is unknown.*IDEEngine"):
        load_cfg_file(str(f))


def test_each_method_adds_only_its_own_keys():
    core, ide, dgnet = get_cfg(), get_cfg("ide"), get_cfg("dgnet")
    assert "RECON_X" not in core.LOSS and "TEACHER" not in core.MODEL
    assert "RECON_X" not in ide.LOSS and ide.LOSS.LABEL_SMOOTH == 0.0
    assert dgnet.LOSS.RECON_X == 5.0 and "LABEL_SMOOTH" not in dgnet.LOSS
    assert (core.ENGINE.NAME, ide.ENGINE.NAME, dgnet.ENGINE.NAME) == (
        "",
        "IDEEngine",
        "DGNetEngine",
    )


def test_a_config_saved_before_the_method_move_still_loads(tmp_path):
    """A teacher config.yaml of the old layout held every method's keys and the old names."""
    old = get_cfg("dgnet")
    old.LOSS.LABEL_SMOOTH = 0.0
    old.ENGINE.NAME, old.MODEL.META_ARCHITECTURE = "TeacherEngine", "IDEBaseline"
    old.MODEL.HEADS.NAME = "ClassBlock"
    text = old.dump().replace("ID_POS:", "PID:")
    f = tmp_path / "config.yaml"
    f.write_text(text)
    cfg = load_cfg_file(str(f))
    assert "RECON_X" not in cfg.LOSS and "TEACHER" not in cfg.MODEL
    assert cfg.ENGINE.NAME == "TeacherEngine"  # looked up as IDEEngine
    from dgnet_plugin.engine.build import ENGINE_REGISTRY
    from dgnet_plugin.modeling.heads import HEAD_REGISTRY
    from dgnet_plugin.utils.registry import lookup

    assert lookup(ENGINE_REGISTRY, cfg.ENGINE.NAME, "ENGINE.NAME").__name__ == "IDEEngine"
    assert lookup(HEAD_REGISTRY, "ClassBlock", "MODEL.HEADS.NAME").__name__ == "EmbeddingHead"
    d = load_cfg_file(str(f), ["ENGINE.NAME", "DGNetEngine", "MODEL.META_ARCHITECTURE", "DGNet"])
    assert d.LOSS.ID_POS == 1.0  # LOSS.PID read as its new name


def test_unknown_override_and_odd_overrides_are_errors():
    with pytest.raises(ConfigError, match="NOT_A_KEY"):
        load_cfg_file(str(REPO / "configs" / "dgnet_r50.yml"), ["NOT_A_KEY", "1"])
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        load_cfg_file(str(REPO / "configs" / "dgnet_r50.yml"), ["SOLVER.MAX_ITER"])


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_cfg_file("configs/nope.yml")


def test_add_dgnet_config_fills_a_foreign_cfg_without_overwriting():
    cfg = CfgNode()
    cfg.SOLVER = CfgNode()
    cfg.SOLVER.MAX_ITER = 7
    add_dgnet_config(cfg)
    assert cfg.SOLVER.MAX_ITER == 7 and cfg.LOSS.RECON_X == 5.0
    assert (cfg.ENGINE.NAME, cfg.MODEL.META_ARCHITECTURE) == ("DGNetEngine", "DGNet")


def test_an_integer_override_of_a_float_key_is_accepted():
    cfg = load_cfg_file(str(REPO / "configs" / "dgnet_r50.yml"), ["LOSS.TEACHER_MAX", "0"])
    assert cfg.LOSS.TEACHER_MAX == 0.0 and isinstance(cfg.LOSS.TEACHER_MAX, float)
    with pytest.raises(ConfigError, match="SOLVER.MAX_ITER"):
        load_cfg_file(str(REPO / "configs" / "dgnet_r50.yml"), ["SOLVER.MAX_ITER", "1.5"])


def test_fastreid_key_names_and_the_old_ones_still_load(tmp_path, caplog, monkeypatch):
    """SOLVER.IMS_PER_BATCH, MODEL.HEADS.EMBEDDING_DIM and DATALOADER.NUM_INSTANCE are the
    names (fastreid's); a saved config.yaml or an override with the old names loads into
    them with one warning line each."""
    import logging

    from dgnet_plugin.config import load_cfg_file

    monkeypatch.setattr(logging.getLogger("dgnet_plugin"), "propagate", True)
    old = tmp_path / "old.yaml"
    old.write_text(
        "_BASE_: " + str(REPO / "configs" / "teacher_cuhk03_cpu_demo.yml") + "\n"
        "DATALOADER:\n  IMS_PER_BATCH: 12\n  NUM_INSTANCES: 3\n"
        "MODEL:\n  HEADS:\n    EMBED_DIM: 64\n"
    )
    with caplog.at_level(logging.WARNING, logger="dgnet_plugin"):
        cfg = load_cfg_file(str(old), ["DATALOADER.IMS_PER_BATCH", "16"])
    assert cfg.SOLVER.IMS_PER_BATCH == 16 and cfg.DATALOADER.NUM_INSTANCE == 3
    assert cfg.MODEL.HEADS.EMBEDDING_DIM == 64
    assert "IMS_PER_BATCH" not in cfg.DATALOADER and "EMBED_DIM" not in cfg.MODEL.HEADS
    for old_key in (
        "DATALOADER.IMS_PER_BATCH",
        "DATALOADER.NUM_INSTANCES",
        "MODEL.HEADS.EMBED_DIM",
    ):
        assert old_key in caplog.text
