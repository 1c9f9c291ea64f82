#!/usr/bin/env python
"""Ranking speed and memory: dgnet_plugin's chunked evaluator vs torchreid's ``evaluate_rank``.

Synthetic problems shaped like Market-1501 (3,368 queries x 15,913 gallery, 751 identities,
6 cameras) and MSMT17 (11,659 x 82,161, 3,060 identities, 15 cameras), 1024-d features
(identity centroid + noise, so the metrics are not trivial). For each problem, one run prints:
wall time including the distance computation (one-time library initialisation excluded for
both methods), peak resident memory of the process (each method
runs in its own subprocess), and the largest absolute difference of CMC (ranks 1-20) and mAP
between the two on the common queries.

torchreid 0.2.5 from PyPI has no Cython ranking, so its Python path is measured. It needs the
full distance matrix; on the MSMT17 shape it runs on a random subset of queries (--torchreid-
queries) and its time is scaled linearly to all queries, which the output says.

    python benchmarks/bench_ranking.py [--sizes market msmt] [--device cpu|cuda] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch

NOISE = 4.0  # feature noise vs unit-variance identity centroids: non-trivial metrics

SHAPES = {
    "market": dict(q=3368, g=15913, ids=751, cams=6),
    "msmt": dict(q=11659, g=82161, ids=3060, cams=15),
    "tiny": dict(q=300, g=2000, ids=100, cams=4),
}


def make_problem(shape: str, dim: int = 1024, seed: int = 0):
    s = SHAPES[shape]
    g = torch.Generator().manual_seed(seed)
    centroids = torch.randn(s["ids"], dim, generator=g)
    q_pids = torch.randint(0, s["ids"], (s["q"],), generator=g)
    g_pids = torch.cat(
        [torch.arange(s["ids"]), torch.randint(0, s["ids"], (s["g"] - s["ids"],), generator=g)]
    )
    qf = centroids[q_pids] + NOISE * torch.randn(s["q"], dim, generator=g)
    gf = centroids[g_pids] + NOISE * torch.randn(s["g"], dim, generator=g)
    q_cams = torch.randint(0, s["cams"], (s["q"],), generator=g)
    g_cams = torch.randint(0, s["cams"], (s["g"],), generator=g)
    return qf, gf, q_pids + 1, g_pids + 1, q_cams, g_cams


def run_ours(shape, device, query_idx=None):
    from dgnet_plugin.evaluation.ranking import evaluate_features

    qf, gf, qp, gp, qc, gc = make_problem(shape)
    if query_idx is not None:
        qf, qp, qc = qf[query_idx], qp[query_idx], qc[query_idx]
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    qf, gf = qf.to(device), gf.to(device)
    m = evaluate_features(qf, gf, qp, gp, qc, gc, metric="euclidean")
    if device == "cuda":
        torch.cuda.synchronize()
    sec = time.perf_counter() - t
    cmc = [m[f"Rank-{k}"] for k in (1, 5, 10, 20)]
    return {"sec": sec, "cmc": cmc, "mAP": m["mAP"]}


def run_torchreid(shape, query_idx=None):
    import warnings

    warnings.filterwarnings("ignore")
    from dgnet_plugin.utils import torchreid_compat as tr

    qf, gf, qp, gp, qc, gc = make_problem(shape)
    if query_idx is not None:
        qf, qp, qc = qf[query_idx], qp[query_idx], qc[query_idx]
    t = time.perf_counter()
    distmat = tr.metrics.compute_distance_matrix(qf, gf, metric="euclidean").numpy()
    cmc, mAP = tr.evaluate_rank(
        distmat, qp.numpy(), gp.numpy(), qc.numpy(), gc.numpy(), max_rank=20, use_cython=False
    )
    sec = time.perf_counter() - t
    return {"sec": sec, "cmc": [float(cmc[k - 1]) for k in (1, 5, 10, 20)], "mAP": float(mAP)}


def warm_up():
    """One small matrix product and sort, so one-time library initialisation (BLAS, thread
    pools) is not timed, for either method."""
    a = torch.randn(256, 1024)
    (a @ a.t()).sort(dim=1)
    np.argsort(np.random.rand(256, 256), axis=1)


def child(args):
    warm_up()
    idx = None
    if args.subset:
        idx = torch.from_numpy(
            np.random.default_rng(1).choice(SHAPES[args.shape]["q"], args.subset, replace=False)
        )
    out = (
        run_ours(args.shape, args.device, idx)
        if args.method == "ours"
        else run_torchreid(args.shape, idx)
    )
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print("RESULT " + json.dumps(out))


def spawn(method, shape, device, subset=0):
    cmd = [
        sys.executable,
        __file__,
        "--child",
        method,
        "--shape",
        shape,
        "--device",
        device,
        "--subset",
        str(subset),
    ]
    p = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if p.returncode or not line:
        raise RuntimeError(f"{method} on {shape} failed:\n{p.stderr[-3000:]}")
    return json.loads(line[0][7:])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["market", "msmt"], choices=sorted(SHAPES))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--torchreid-queries",
        type=int,
        default=1000,
        help="queries torchreid ranks on the MSMT17 shape (time scaled to all)",
    )
    ap.add_argument("--child", choices=["ours", "torchreid"])
    ap.add_argument("--shape", default="tiny")
    ap.add_argument("--subset", type=int, default=0)
    args = ap.parse_args()
    if args.child:
        args.method = args.child
        return child(args)

    print(f"device: {args.device}, torch {torch.__version__}, {os.cpu_count()} CPU cores")
    print(
        "| shape | method | queries ranked | wall s (all queries) | peak RSS GB "
        "| max abs diff CMC | abs diff mAP |"
    )
    print("|---|---|---|---|---|---|---|")
    for shape in args.sizes:
        nq = SHAPES[shape]["q"]
        subset = args.torchreid_queries if shape == "msmt" and args.torchreid_queries < nq else 0
        ours = spawn("ours", shape, args.device)
        ref = spawn("torchreid", shape, "cpu", subset)
        common = spawn("ours", shape, args.device, subset) if subset else ours
        d_cmc = max(abs(a - b) for a, b in zip(common["cmc"], ref["cmc"]))
        d_map = abs(common["mAP"] - ref["mAP"])
        scale = nq / subset if subset else 1.0
        note = f"{subset} random (time x{scale:.2f})" if subset else f"{nq} (all)"
        print(
            f"| {shape} | dgnet_plugin ({args.device}) | {nq} (all) | {ours['sec']:.2f} | "
            f"{ours['peak_rss_gb']:.2f} | {d_cmc:.1e} | {d_map:.1e} |"
        )
        print(
            f"| {shape} | torchreid evaluate_rank (Python) | {note} | {ref['sec'] * scale:.2f} | "
            f"{ref['peak_rss_gb']:.2f} | | |"
        )
        print(
            f"  {shape}: R1 ours {ours['cmc'][0]:.4f} mAP {ours['mAP']:.4f}; speed-up "
            f"{ref['sec'] * scale / ours['sec']:.1f}x"
        )


if __name__ == "__main__":
    main()
