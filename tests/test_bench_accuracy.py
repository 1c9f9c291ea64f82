"""The accuracy benchmarks' own parts (benchmarks/budget.py, bench_ide_vs_torchreid.py): the
ImageNet weights in torchreid's MobileNetV2, the schedule scaling, the time guard. The
benchmarks themselves are not run here (minutes of training)."""

import pytest
import torch
from conftest import MOBILENET_WEIGHTS, REPO, import_benchmark

from dgnet_plugin.engine.train_loop import TrainerBase
from dgnet_plugin.modeling.backbones.mobilenetv2 import mobilenetv2
from dgnet_plugin.utils import torchreid_compat as tr

bench = import_benchmark("bench_ide_vs_torchreid")
budget = import_benchmark("budget")


@pytest.fixture(scope="module")
def ours():
    if not MOBILENET_WEIGHTS.is_file():  # the real data is required, as for every e2e test
        raise FileNotFoundError(
            f"no ImageNet MobileNetV2 weights at {MOBILENET_WEIGHTS}; put ../shared/data next "
            "to the repository or set DGNET_SHARED_DATA"
        )
    return mobilenetv2(last_stride=2, pretrained=True, pretrain_path=str(MOBILENET_WEIGHTS)).eval()


def test_torchreid_mobilenetv2_computes_our_imagenet_backbone(ours):
    model = tr.models.build_model("mobilenetv2_x1_0", num_classes=5, pretrained=False)
    bench.load_imagenet_mobilenetv2(model, str(MOBILENET_WEIGHTS), "identity")
    model.eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        theirs, mine = model.featuremaps(x), ours(x)
    assert theirs.shape == mine.shape == (2, 1280, 2, 1)
    torch.testing.assert_close(theirs, mine, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        assert model(x).shape == (2, 1280)  # eval: the pooled feature the benchmark ranks


def test_random_first_expansion_keeps_torchreid_block_and_loads_the_rest(ours):
    model = tr.models.build_model("mobilenetv2_x1_0", num_classes=5, pretrained=False)
    init = model.conv2[0].conv1.conv.weight.detach().clone()
    bench.load_imagenet_mobilenetv2(model, str(MOBILENET_WEIGHTS), "random")
    assert torch.equal(model.conv2[0].conv1.conv.weight, init)  # no counterpart: untouched
    assert torch.equal(model.conv9.conv.weight, ours.features[18][0].weight)
    assert torch.equal(model.conv1.bn.running_var, ours.features[0][1].running_var)


def test_scaled_schedule_keeps_fractions_of_the_run():
    cfg = str(REPO / "configs" / "dgnet_cuhk03_cpu_demo.yml")
    opts = ["SOLVER.MAX_ITER", 200, "SOLVER.STEPS", (160,), "LOSS.WARM_ITER", 100]
    opts += ["LOSS.WARM_TEACHER_ITER", 50]
    keys = ("SOLVER.STEPS", "LOSS.WARM_ITER", "LOSS.WARM_TEACHER_ITER")
    assert budget.scaled_schedule(cfg, opts, 1000, keys) == [
        "SOLVER.MAX_ITER", 1000, "SOLVER.STEPS", (800,), "LOSS.WARM_ITER", 500,
        "LOSS.WARM_TEACHER_ITER", 250,
    ]  # fmt: skip
    # tiny runs: every scaled iteration stays inside [1, MAX_ITER - 1]
    assert budget.scaled_schedule(cfg, opts, 2, keys)[3::2] == [(1,), 1, 1]
    # keys a config does not have (the IDE has no warm-up) are skipped
    ide = str(REPO / "configs" / "teacher_cuhk03_cpu_demo.yml")
    out = budget.scaled_schedule(ide, ["SOLVER.MAX_ITER", 300, "SOLVER.STEPS", (250,)], 600, keys)
    assert out == ["SOLVER.MAX_ITER", 600, "SOLVER.STEPS", (500,)]


def test_iterations_for_subtracts_start_up():
    assert budget.iterations_for(100.0, 2.0, startup=10.0) == 45
    assert budget.iterations_for(1.0, 2.0) == 2  # at least min_iter


class _Clocked(TrainerBase):
    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def run_step(self, iteration):
        self.clock[0] += 1.0  # one second per iteration
        return {}


def test_time_budget_ends_the_run_as_completed(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(budget.time, "perf_counter", lambda: clock[0])
    guard = budget.TimeBudget(2.5)
    trainer = _Clocked(clock)
    trainer.register_hooks([guard])
    trainer.train(0, 10)
    assert (trainer.iter, trainer.max_iter, trainer.completed) == (3, 3, True)
    assert (guard.iterations, guard.seconds_used, guard.cut) == (3, 3.0, True)


def test_time_budget_zero_never_cuts(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(budget.time, "perf_counter", lambda: clock[0])
    guard = budget.TimeBudget(0)
    trainer = _Clocked(clock)
    trainer.register_hooks([guard])
    trainer.train(0, 4)
    assert (trainer.iter, guard.cut, guard.iterations) == (4, False, 4)


def test_until_deadline_stops_handing_out_batches(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    loader = bench.UntilDeadline(range(10))
    loader.deadline = 3.0
    got = []
    for b in loader:
        got.append(b)
        clock[0] += 1.0
    assert got == [0, 1, 2] and loader.batches == 3 and len(loader) == 10
