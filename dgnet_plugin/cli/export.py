"""Export the re-ID network of a dgnet_plugin checkpoint as a plain state dict.

    python tools/export.py --config-file configs/dgnet_r50.yml \\
        --weights output/market1501/dgnet_r50/model_final.pth --output dgnet_r50_market.pth

The output is ``{key: tensor}`` only (for DG-Net: the ``reid.`` part with the prefix
stripped; no generator, discriminator, optimiser or RNG state), which torchreid loads as is:

    import torchreid, dgnet_plugin
    model = torchreid.models.build_model("dgnet_r50", num_classes=751, pretrained=False)
    torchreid.utils.load_pretrained_weights(model, "dgnet_r50_market.pth")

``torchreid.utils.FeatureExtractor(model_name="dgnet_r50", model_path=...)`` loads it too (it
builds 1 class, so it drops the two classifiers; its own preprocessing, without DG-Net's
bicubic resize and flip averaging, gives slightly different features).
``dgnet_plugin.FeatureExtractor("dgnet_r50_market.pth")`` gives the evaluation's features.
"""

from __future__ import annotations

import argparse
import sys

import dgnet_plugin  # noqa: F401 (registers everything)
from dgnet_plugin.config import method_of_engine
from dgnet_plugin.feature_extractor import load_reid_model
from dgnet_plugin.utils.checkpoint import atomic_torch_save
from dgnet_plugin.utils.cli import run_cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--config-file",
        metavar="YAML",
        default="",
        help="config of the checkpoint (default: config.yaml next to --weights, else defaults)",
    )
    p.add_argument("--weights", required=True, metavar="PTH", help="dgnet_plugin checkpoint")
    p.add_argument("--output", required=True, metavar="PTH", help="plain re-ID state dict")
    return p


def export_reid(config_file: str, weights: str, output: str) -> dict:
    """Load ``weights`` strictly into the re-ID network of the config and write its state dict
    (CPU tensors) to ``output`` atomically. Returns the written dict."""
    model, cfg = load_reid_model(weights, config_file or None, "cpu")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_torch_save(state, output)
    num_classes = model.num_classes
    print(f"wrote {len(state)} tensors of {type(model).__name__} ({num_classes} ids) to {output}")
    export = method_of_engine(cfg.ENGINE.NAME).export
    name, differs = export(cfg, model) if export is not None else (None, [])
    if name:
        print(
            f"torchreid: build_model('{name}', num_classes={num_classes}, pretrained=False), "
            f"then torchreid.utils.load_pretrained_weights(model, '{output}')"
        )
        if differs:
            print(
                f"warning: torchreid's '{name}' is built with the package defaults, but this "
                f"config has {', '.join(differs)}: the weights load, the features differ; use "
                "dgnet_plugin.FeatureExtractor(weights, config_file=...) instead"
            )
    else:
        print(
            f"note: {type(model).__name__} is not a registered torchreid model; load the file "
            "with dgnet_plugin.FeatureExtractor(weights, config_file=...)"
        )
    return state


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(
        lambda a: export_reid(a.config_file, a.weights, a.output), args, extra_errors=(ValueError,)
    )


if __name__ == "__main__":
    sys.exit(main())
