"""DG-Net in a torchreid script (see docs/torchreid.md).

    python examples/torchreid_dgnet.py DATA_ROOT [KEY VALUE ...]

DATA_ROOT holds torchreid's ``market1501/``; KEY VALUE pairs override the DG-Net config.
Environment: REID_CONFIG (default the packaged ``dgnet_r50.yml``), REID_TEACHER (a
``resnet50`` checkpoint of torchreid's ImageSoftmaxEngine; REID_TEACHER_NAME another model
name), REID_SIZE (``256x128``), REID_BATCH (16), REID_EPOCHS (60), REID_PRINT_FREQ (10),
REID_SAVE_DIR.
"""

import os
import sys

import torchreid

from dgnet_plugin.torchreid import ImageDGNetEngine, build_dgnet

env = os.environ.get
height, width = (int(v) for v in env("REID_SIZE", "256x128").split("x"))
datamanager = torchreid.data.ImageDataManager(
    root=sys.argv[1] if len(sys.argv) > 1 else "reid-data",
    sources="market1501",
    height=height,
    width=width,
    transforms=["random_flip", "random_crop"],
    batch_size_train=int(env("REID_BATCH", "16")),
    train_sampler="RandomIdentitySampler",  # DG-Net's positives come from the same batch
    num_instances=4,
    workers=int(env("REID_WORKERS", "4")),
)
model = build_dgnet(datamanager.num_train_pids, env("REID_CONFIG", "dgnet_r50.yml"), sys.argv[2:])
engine = ImageDGNetEngine(
    datamanager,
    model,  # optimisers and LR schedules: the DG-Net recipe's (model.cfg SOLVER)
    teacher=env("REID_TEACHER", "log/resnet50/model/model.pth.tar-60"),
    teacher_name=env("REID_TEACHER_NAME", "resnet50"),
)
engine.run(
    save_dir=env("REID_SAVE_DIR", "log/dgnet"),
    max_epoch=int(env("REID_EPOCHS", "60")),
    eval_freq=10,
    print_freq=int(env("REID_PRINT_FREQ", "10")),
)
