#!/usr/bin/env python3
"""numpy peers for `npm run bench`.

  peer.py score F_DIR G_DIR [--block B]   end to end: load the .npy layers, standardize
                                          (float64 -> float32), blocked |Zf Zg^T| with row
                                          and column max/argmax, as a numpy user would write it
  peer.py kernel --n N --m M [--block B]  the blocked step alone, on in-memory data (GFLOP/s)
  peer.py sgemm --n N --m M [--block B]   the sgemm ceiling: the same blocked a @ b, nothing else

Each prints one JSON object on stdout. Times are medians of --repeat runs (default 3).
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np


def load(path):
    """All layers of a .npy folder, neuron-major standardized float32 [N, M]."""
    blocks = []
    for f in sorted(glob.glob(os.path.join(path, "*.npy"))):
        a = np.load(f).astype(np.float64)
        a = a.reshape(a.shape[0], -1)
        a -= a.mean(axis=0)
        norm = np.linalg.norm(a, axis=0)
        norm[norm == 0] = 1.0
        blocks.append((a / norm).T.astype(np.float32))
    return np.ascontiguousarray(np.concatenate(blocks, axis=0))


def best_matches(zf, zg, block):
    """Row and column best |rho| and argmax, block by block."""
    nf, ng = zf.shape[0], zg.shape[0]
    row_best = np.full(nf, -1.0, np.float32)
    row_arg = np.zeros(nf, np.int64)
    col_best = np.full(ng, -1.0, np.float32)
    col_arg = np.zeros(ng, np.int64)
    buf = np.empty((block, block), np.float32)
    for i0 in range(0, nf, block):
        a = zf[i0 : i0 + block]
        for j0 in range(0, ng, block):
            b = zg[j0 : j0 + block]
            s = buf[: a.shape[0], : b.shape[0]]
            np.matmul(a, b.T, out=s)
            np.abs(s, out=s)
            ra = s.argmax(axis=1)
            rv = s[np.arange(s.shape[0]), ra]
            better = rv > row_best[i0 : i0 + block]
            row_best[i0 : i0 + block][better] = rv[better]
            row_arg[i0 : i0 + block][better] = ra[better] + j0
            ca = s.argmax(axis=0)
            cv = s[ca, np.arange(s.shape[1])]
            better = cv > col_best[j0 : j0 + block]
            col_best[j0 : j0 + block][better] = cv[better]
            col_arg[j0 : j0 + block][better] = ca[better] + i0
    return row_best, row_arg, col_best, col_arg


def sgemm(zf, zg, block):
    buf = np.empty((block, block), np.float32)
    for i0 in range(0, zf.shape[0], block):
        a = zf[i0 : i0 + block]
        for j0 in range(0, zg.shape[0], block):
            b = zg[j0 : j0 + block]
            np.matmul(a, b.T, out=buf[: a.shape[0], : b.shape[0]])


def median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2], times


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["score", "kernel", "sgemm", "info"])
    p.add_argument("paths", nargs="*")
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--m", type=int, default=64)
    p.add_argument("--block", type=int, default=4096)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    if args.mode == "info":
        print(json.dumps({"numpy": np.__version__, "python": sys.version.split()[0]}))
        return
    if args.mode == "score":
        # Timed inside, from load to result, like the CLI's wall time minus interpreter start.
        def run():
            zf, zg = load(args.paths[0]), load(args.paths[1])
            best_matches(zf, zg, args.block)

        median, times = median_time(run, args.repeat)
        print(json.dumps({"seconds": median, "times": times}))
        return
    rng = np.random.default_rng(0)
    zf = rng.standard_normal((args.n, args.m), dtype=np.float32)
    zg = rng.standard_normal((args.n, args.m), dtype=np.float32)
    fn = (lambda: best_matches(zf, zg, args.block)) if args.mode == "kernel" else (lambda: sgemm(zf, zg, args.block))
    fn()  # warm up BLAS threads
    median, times = median_time(fn, args.repeat)
    flops = 2.0 * args.n * args.n * args.m
    print(json.dumps({"seconds": median, "times": times, "gflops": flops / median / 1e9, "pairs_per_s": args.n * args.n / median}))


if __name__ == "__main__":
    main()
