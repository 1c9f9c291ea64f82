"""Convert the official NVlabs DG-Net release (and its teacher) into dgnet_plugin checkpoints.

    python -m dgnet_plugin.methods.dgnet.convert_cli \\
        --checkpoint-dir outputs/E0.5new_reid0.5_w30000/checkpoints --iteration 100000 \\
        --teacher models/best/net_last.pth \\
        --output output/official/dgnet_r50/converted.pth \\
        --teacher-output output/official/teacher_r50/model_final.pth

    python tools/train_net.py --config-file configs/dgnet_r50.yml --eval-only \\
        MODEL.WEIGHTS output/official/dgnet_r50/converted.pth

--output receives {"model": DGNet state dict, "iteration", "converted_from"}; --teacher-output
the same for the IDEBaseline teacher plus a config.yaml next to it (ResNet-50, avg pooling,
last stride from --teacher-stride or the opts.yaml beside net_last.pth, default 2), so
MODEL.TEACHER.WEIGHTS can point at it. The release's extra tensors (non-local blocks, AdaIN
dummy buffers, the backbone's ImageNet fc) are dropped and listed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from ...config import load_cfg_file
from ...engine.loading import read_weights_file
from ...utils.checkpoint import atomic_torch_save, atomic_write_text
from ...utils.cli import run_cli
from .convert import (
    convert_official_dgnet,
    convert_official_teacher,
    default_dgnet_cfg,
    official_teacher_cfg,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    g = p.add_argument_group("official DG-Net snapshot (either the three files or a folder)")
    g.add_argument("--gen", metavar="PT", help="gen_XXXXXXXX.pt ({'a': AdaINGen state dict})")
    g.add_argument("--id", metavar="PT", help="id_XXXXXXXX.pt ({'a': ft_netAB state dict})")
    g.add_argument("--dis", metavar="PT", help="dis_XXXXXXXX.pt ({'a': MsImageDis state dict})")
    g.add_argument("--checkpoint-dir", metavar="DIR", help="folder holding the three files")
    g.add_argument("--iteration", type=int, default=100000, help="snapshot in --checkpoint-dir")
    p.add_argument("--teacher", metavar="PTH", help="official teacher models/best/net_last.pth")
    p.add_argument(
        "--teacher-stride",
        type=int,
        default=None,
        help="teacher last stride (default: 'stride' of opts.yaml next to --teacher, else 2)",
    )
    p.add_argument(
        "--num-classes", type=int, default=None, help="identities (default: classifier rows)"
    )
    p.add_argument(
        "--config-file",
        metavar="YAML",
        default="",
        help="DG-Net config to convert to (default: the package defaults = configs/dgnet_r50.yml)",
    )
    p.add_argument("--output", metavar="PTH", help="converted DG-Net checkpoint")
    p.add_argument(
        "--teacher-output",
        metavar="PTH",
        help="converted teacher checkpoint (default: <--output folder>/teacher/model_final.pth)",
    )
    return p


def load_official(path: str) -> dict:
    """An official file, tensors only, on CPU (:func:`~dgnet_plugin.engine.loading.
    read_weights_file`); errors name the file in one line (exit status 2)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"official checkpoint '{path}' does not exist")
    return read_weights_file(path, "a tensor-only PyTorch checkpoint of the official release")


def teacher_stride(args) -> int:
    """``--teacher-stride``, else ``stride`` of the official ``opts.yaml``, else 2."""
    if args.teacher_stride is not None:
        return args.teacher_stride
    opts = os.path.join(os.path.dirname(os.path.abspath(args.teacher)), "opts.yaml")
    if os.path.isfile(opts):
        import yaml

        try:
            with open(opts) as f:
                data = yaml.safe_load(f) or {}
            if isinstance(data, dict) and "stride" in data:
                return int(data["stride"])
        except (yaml.YAMLError, TypeError, ValueError) as e:
            print(f"warning: cannot read 'stride' from {opts} ({e}); using 2", file=sys.stderr)
    return 2


def snapshot_paths(args) -> tuple[str, str, str] | None:
    files = (args.gen, args.id, args.dis)
    if args.checkpoint_dir:
        if any(files):
            raise ValueError("give either --checkpoint-dir or --gen/--id/--dis, not both")
        folder = args.checkpoint_dir
        if not os.path.isfile(os.path.join(folder, f"gen_{args.iteration:08d}.pt")):
            if os.path.isdir(os.path.join(folder, "checkpoints")):  # outputs/<name>/ given
                folder = os.path.join(folder, "checkpoints")
        return tuple(
            os.path.join(folder, f"{n}_{args.iteration:08d}.pt") for n in ("gen", "id", "dis")
        )
    if any(files):
        if not all(files):
            raise ValueError("--gen, --id and --dis must be given together")
        return files
    return None


def snapshot_iteration(args, gen_path: str) -> int:
    if args.checkpoint_dir:
        return args.iteration
    m = re.search(r"(\d+)\.pt$", os.path.basename(gen_path))
    return int(m.group(1)) if m else 0


def convert_dgnet(args, paths) -> int:
    cfg = load_cfg_file(args.config_file, freeze=False) if args.config_file else default_dgnet_cfg()
    gen, id_, dis = (load_official(p) for p in paths)
    state, report = convert_official_dgnet(gen, id_, dis, cfg, args.num_classes)
    num_classes = state["reid.classifier.classifier.weight"].shape[0]
    data = {
        "model": state,
        "iteration": snapshot_iteration(args, paths[0]),
        "converted_from": [os.path.abspath(p) for p in paths],
    }
    atomic_torch_save(data, args.output)
    print(f"DG-Net ({num_classes} identities) -> {args.output}\n{report.format()}")
    return num_classes


def convert_teacher(args, teacher_output: str) -> None:
    stride = teacher_stride(args)
    cfg = official_teacher_cfg(stride)
    state, report = convert_official_teacher(load_official(args.teacher), cfg, args.num_classes)
    data = {"model": state, "iteration": 0, "converted_from": [os.path.abspath(args.teacher)]}
    atomic_torch_save(data, teacher_output)
    config_path = os.path.join(os.path.dirname(os.path.abspath(teacher_output)), "config.yaml")
    atomic_write_text(cfg.dump(), config_path)
    n = state["classifier.classifier.weight"].shape[0]
    print(
        f"teacher (IDEBaseline, ResNet-50, last stride {stride}, {n} identities) -> "
        f"{teacher_output} (+ {config_path})\n{report.format()}"
    )


def run(args) -> None:
    paths = snapshot_paths(args)
    if paths is None and not args.teacher:
        raise ValueError(
            "nothing to convert: give --checkpoint-dir (or --gen/--id/--dis), --teacher"
        )
    if paths is not None and not args.output:
        raise ValueError("--output is required to convert the DG-Net snapshot")
    teacher_output = args.teacher_output
    if args.teacher and not teacher_output:
        if not args.output:
            raise ValueError("--teacher-output is required to convert the teacher alone")
        teacher_output = os.path.join(
            os.path.dirname(os.path.abspath(args.output)), "teacher", "model_final.pth"
        )
    if (
        paths is not None
        and teacher_output
        and os.path.dirname(os.path.abspath(teacher_output))
        == os.path.dirname(os.path.abspath(args.output))
    ):
        raise ValueError(
            "--teacher-output must be in another folder than --output: the teacher's config.yaml "
            "would otherwise be read as the DG-Net config (FeatureExtractor, tools/export.py)"
        )
    if paths is not None:
        convert_dgnet(args, paths)
    if args.teacher:
        convert_teacher(args, teacher_output)
    if paths is not None:
        print(
            "evaluate with: python tools/train_net.py --config-file configs/dgnet_r50.yml "
            f"--eval-only MODEL.WEIGHTS {args.output}"
        )


def main(argv=None) -> int:
    # ValueError: a tensor whose shape or name does not fit (the message names both keys)
    return run_cli(run, build_parser().parse_args(argv), extra_errors=(ValueError,))


if __name__ == "__main__":  # `python -m` imports dgnet_plugin first: every method is registered
    sys.exit(main())
