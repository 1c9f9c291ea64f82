"""D2RL in a torchreid script (see docs/torchreid.md).

    python examples/torchreid_d2rl.py DATA_ROOT [KEY VALUE ...]

DATA_ROOT holds ``SYSU-MM01/`` (the plugin registers torchreid's ``sysu_mm01`` and ``regdb``
datasets); KEY VALUE pairs override the D2RL config. Environment: REID_CONFIG (default the
packaged ``d2rl_r50_sysu.yml``), REID_SOURCE (``sysu_mm01``), REID_SIZE (``288x144``),
REID_BATCH (64), REID_INSTANCES (8), REID_EPOCHS (60), REID_PRINT_FREQ (10), REID_SAVE_DIR.
"""

import os
import sys

import torchreid

from dgnet_plugin.torchreid import ImageD2RLEngine, build_d2rl

env = os.environ.get
height, width = (int(v) for v in env("REID_SIZE", "288x144").split("x"))
datamanager = torchreid.data.ImageDataManager(
    root=sys.argv[1] if len(sys.argv) > 1 else "reid-data",
    sources=env("REID_SOURCE", "sysu_mm01"),  # a visible-infrared dataset of the plugin
    height=height,
    width=width,
    transforms=["random_flip", "random_crop"],
    batch_size_train=int(env("REID_BATCH", "64")),
    train_sampler="RandomIdentitySampler",  # visible and infrared images of each identity
    num_instances=int(env("REID_INSTANCES", "8")),
    workers=int(env("REID_WORKERS", "4")),
)
model = build_d2rl(
    datamanager.num_train_pids, env("REID_CONFIG", "d2rl_r50_sysu.yml"), sys.argv[2:]
)
engine = ImageD2RLEngine(datamanager, model)  # optimisers and schedules: model.cfg SOLVER
engine.run(
    save_dir=env("REID_SAVE_DIR", "log/d2rl"),
    max_epoch=int(env("REID_EPOCHS", "60")),
    eval_freq=10,
    print_freq=int(env("REID_PRINT_FREQ", "10")),
)
