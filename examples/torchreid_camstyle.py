"""CamStyle's re-ID stage (real + camera-style images) in a torchreid script (see
docs/torchreid.md). The generated folder is one written by the generation stage
(``tools/train_net.py --config-file configs/camstyle_r50.yml``: ``OUTPUT_DIR/generated``).

    python examples/torchreid_camstyle.py DATA_ROOT GENERATED_DIR [KEY VALUE ...]

DATA_ROOT holds torchreid's ``market1501/``; KEY VALUE pairs override the config.
Environment: REID_CONFIG (default the packaged ``camstyle_r50.yml``; ``lsro_r50.yml``,
``spgan_r50.yml``, ... train with their own label rules), REID_SIZE (``256x128``), REID_BATCH
(128), REID_EPOCHS (50), REID_PRINT_FREQ (10), REID_SAVE_DIR.
"""

import os
import sys

import torchreid

from dgnet_plugin.torchreid import (
    ImageGeneratedEngine,
    build_generated_reid,
    register_generated_dataset,
)

env = os.environ.get
register_generated_dataset("market1501_camstyle", sys.argv[2], real="market1501")
height, width = (int(v) for v in env("REID_SIZE", "256x128").split("x"))
datamanager = torchreid.data.ImageDataManager(
    root=sys.argv[1],
    sources="market1501_camstyle",  # real training images + the generated folder
    targets="market1501",
    height=height,
    width=width,
    transforms=["random_flip", "random_crop"],
    batch_size_train=int(env("REID_BATCH", "128")),
    workers=int(env("REID_WORKERS", "4")),
)
model = build_generated_reid(
    datamanager.num_train_pids, env("REID_CONFIG", "camstyle_r50.yml"), sys.argv[3:]
)
engine = ImageGeneratedEngine(datamanager, model)  # optimiser and schedule: model.cfg SOLVER
engine.run(
    save_dir=env("REID_SAVE_DIR", "log/camstyle"),
    max_epoch=int(env("REID_EPOCHS", "50")),
    eval_freq=10,
    print_freq=int(env("REID_PRINT_FREQ", "10")),
)
