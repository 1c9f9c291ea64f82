"""A third-party use: torchreid's own data manager and engine train ``dgnet_r50``."""

import torch
from conftest import make_tiny_market

import dgnet_plugin  # noqa: F401 (registers market_layout and dgnet_r50 with torchreid)
from dgnet_plugin.methods.dgnet import AppearanceEncoder
from dgnet_plugin.utils import torchreid_compat as tr


def test_build_model_returns_the_appearance_encoder():
    m = tr.models.build_model("dgnet_r50", num_classes=751, pretrained=False)
    assert isinstance(m, AppearanceEncoder) and m.code_dim == 8192
    m.eval()
    with torch.no_grad():
        assert m(torch.randn(2, 3, 256, 128)).shape == (2, 1024)


def test_import_twice_is_harmless():
    import importlib

    importlib.reload(dgnet_plugin)
    assert "dgnet_r50" in tr.model_factory() and "market_layout" in tr.image_dataset_registry()


def test_image_softmax_engine_trains_dgnet_r50_on_real_cuhk03(tmp_path):
    # 12 test identities: torchreid's ranking needs >= 50 gallery images per query
    tiny_market = make_tiny_market(tmp_path / "market", n_train_ids=12, n_test_ids=12)
    torch.manual_seed(0)
    dm = tr.ImageDataManager(
        root=str(tiny_market),
        sources="market_layout",
        height=64,
        width=32,
        batch_size_train=8,
        batch_size_test=32,
        workers=0,
        use_gpu=False,
        transforms=["random_flip"],
    )
    assert dm.num_train_pids == 12
    model = tr.models.build_model("dgnet_r50", num_classes=dm.num_train_pids, pretrained=False)
    opt = tr.optim.build_optimizer(model, optim="adam", lr=3e-4)
    sched = tr.optim.build_lr_scheduler(opt, lr_scheduler="single_step", stepsize=10)
    engine = tr.engine.ImageSoftmaxEngine(
        dm, model, optimizer=opt, scheduler=sched, use_gpu=False, label_smooth=True
    )
    before = model.classifier.classifier.weight.detach().clone()
    engine.run(
        save_dir=str(tmp_path / "log"), max_epoch=1, eval_freq=1, print_freq=5, test_only=False
    )
    assert not torch.equal(before, model.classifier.classifier.weight)
    assert any(p.name.startswith("events") for p in (tmp_path / "log").iterdir())
    rank1 = engine.test(save_dir=str(tmp_path / "log"))
    assert 0.0 <= float(rank1) <= 1.0
