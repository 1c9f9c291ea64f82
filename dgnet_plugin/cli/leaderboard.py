"""Gather the last evaluation of several OUTPUT_DIRs into a Markdown table (fastreid's
MODEL_ZOO.md style): method, config, dataset, Rank-1, mAP, mINP.

    python tools/leaderboard.py output/market1501/dgnet_r50 output/market1501/teacher_r50 \
        [-o LEADERBOARD.md]
"""

from __future__ import annotations

import argparse
import os
import sys

import yaml

import dgnet_plugin  # noqa: F401 (registers every method)
from dgnet_plugin.config import ConfigError, method_of_engine
from dgnet_plugin.utils.events import read_json_lines


def method_title(cfg: dict) -> str:
    """The title of the method a saved ``config.yaml`` belongs to (its ``ENGINE.NAME``), or
    the engine name itself when no registered method owns it."""
    engine = (cfg.get("ENGINE") or {}).get("NAME", "?")
    try:
        return method_of_engine(engine).title
    except ConfigError:
        return engine


def last_evaluation(output_dir: str) -> tuple[dict, dict]:
    """``(config dict, {dataset: {metric: value}})`` of the last evaluation in ``output_dir``.

    Raises ``FileNotFoundError`` naming the missing ``metrics.json`` / ``config.yaml`` and
    ``ValueError`` when ``metrics.json`` holds no evaluation.
    """
    paths = {n: os.path.join(output_dir, n) for n in ("metrics.json", "config.yaml")}
    for p in paths.values():
        if not os.path.isfile(p):
            raise FileNotFoundError(
                f"'{p}' not found: is '{output_dir}' an OUTPUT_DIR of train_net.py?"
            )
    with open(paths["config.yaml"]) as f:
        cfg = yaml.safe_load(f)
    evals = [r for r in read_json_lines(paths["metrics.json"]) if any("/Rank-1" in k for k in r)]
    if not evals:
        raise ValueError(f"'{paths['metrics.json']}' holds no evaluation yet")
    per_ds: dict[str, dict] = {}
    for k, v in evals[-1].items():
        if "/" in k:
            ds, metric = k.rsplit("/", 1)
            per_ds.setdefault(ds, {})[metric] = v
    return cfg, per_ds


def leaderboard(output_dirs: list[str]) -> str:
    rows = ["| Method | Config | Dataset | Rank-1 | mAP | mINP |", "|---|---|---|---|---|---|"]
    for d in output_dirs:
        cfg, per_ds = last_evaluation(d)
        backbone = cfg.get("MODEL", {}).get("BACKBONE", {}).get("NAME", "?")
        method = f"{method_title(cfg)} ({backbone})"
        for ds, m in sorted(per_ds.items()):
            rows.append(
                f"| {method} | {os.path.basename(os.path.normpath(d))} | {ds} | "
                f"{m.get('Rank-1', float('nan')):.2f} | {m.get('mAP', float('nan')):.2f} | "
                f"{m.get('mINP', float('nan')):.2f} |"
            )
    return "\n".join(rows) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("output_dirs", nargs="+", help="OUTPUT_DIRs written by tools/train_net.py")
    ap.add_argument("-o", "--output", help="write the table to this Markdown file as well")
    args = ap.parse_args(argv)
    emit(leaderboard(args.output_dirs), args.output)
    return 0


def emit(table: str, output: str | None) -> None:
    """Print ``table`` (ending in a newline); also write it to the Markdown file ``output``."""
    print(table, end="")
    if output:
        with open(output, "w") as f:
            f.write(table)


if __name__ == "__main__":
    sys.exit(main())
