"""One table over split trials: the mean ± standard deviation of the last evaluation of
several OUTPUT_DIRs, one model per trial (RegDB's protocol: 10 random half splits, each
trained and tested on its own split, ``DATASETS.NAMES/TESTS ('regdb_trial_<t>',)``), with the
published numbers beside them labelled "(reported)".

    python tools/trials_table.py output/regdb/d2rl_t{1..10} [--model D2RL] [-o TABLE.md]

Settings are matched across runs with the trial dropped from their name
(``regdb_trial_3@RegDB visible->thermal`` -> ``regdb@RegDB visible->thermal``); only settings
every run evaluated are shown.
"""

from __future__ import annotations

import argparse
import sys

from dgnet_plugin.evaluation.cross_modality import (
    aggregate_trials,
    format_cross_modality_table,
)
from dgnet_plugin.utils.cli import run_cli

from .leaderboard import emit, last_evaluation, method_title


def trials_table(output_dirs: list[str], model: str | None = None) -> str:
    """The pipe table (:func:`format_cross_modality_table`) of :func:`aggregate_trials` over
    the last evaluations of ``output_dirs``; ``model``: the row name (default: the method's
    title from the first run's ``config.yaml``, "(ours)").

    Raises:
        FileNotFoundError: a directory without ``metrics.json`` / ``config.yaml``.
        ValueError: a run without evaluation, or no setting common to all runs.
    """
    runs, cfg = [], None
    for d in output_dirs:
        c, per_ds = last_evaluation(d)
        cfg = cfg or c
        runs.append(per_ds)
    name = model or f"{method_title(cfg)} (ours)"
    return format_cross_modality_table({name: aggregate_trials(runs)})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("output_dirs", nargs="+", help="OUTPUT_DIRs, one per trial (train_net.py)")
    ap.add_argument("--model", help="row name (default: the method's title, '(ours)')")
    ap.add_argument("-o", "--output", help="write the table to this Markdown file as well")
    args = ap.parse_args(argv)
    return run_cli(
        lambda a: emit(trials_table(a.output_dirs, a.model) + "\n", a.output),
        args,
        extra_errors=(ValueError,),
    )


if __name__ == "__main__":
    sys.exit(main())
