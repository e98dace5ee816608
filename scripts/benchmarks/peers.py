#!/usr/bin/env python3
"""Measures the peers of `autotune-bench optimizers` with the same protocol: the same test functions and
bounds, 10 seeds x 50 evaluations, one thread, and the median [IQR] of the simple regret after 10, 20, 30 and
50 evaluations, plus the optimiser's own time per run.

With `--parallel 1,4,8` the peers run as Autotune's benchmark runs them: N trials at a time, each taking a random
time (1 to 3 units, seeded), a freed slot refilled at once through `study.ask()` while the others are still
running (Optuna sees them as RUNNING: TPE with `constant_liar=True`, GPSampler with its q-LogEI over running
trials). In sequence (parallel 1) every trial takes one unit.

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install optuna scikit-optimize torch
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 /tmp/peers/bin/python scripts/benchmarks/peers.py \
        [SEEDS] [--parallel 1,4,8] [--functions Branin,Mixed] [--peers "Optuna TPE,Optuna GPSampler"]
"""
import math
import os
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")

def branin(x1, x2):
    b = 5.1 / (4 * math.pi ** 2)
    return (x2 - b * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10

A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886], [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
     [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650], [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]
ALPHA = [1.0, 1.2, 3.0, 3.2]

def hartmann6(x):
    return -sum(ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j]) ** 2 for j in range(6))) for i in range(4))

def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))

def mixed(p):
    """Minimum 0 at x = 0.3, batch = 64, lr = 1e-3, kind = b, flag = true (the same as autotune-bench's)."""
    kinds = {"a": 0.5, "b": 0.0, "c": 0.3}
    return ((p["x"] - 0.3) ** 2 + (math.log2(p["batch"]) - 6) ** 2 / 25 + (math.log10(p["lr"]) + 3) ** 2 / 4
            + kinds[p["kind"]] + (0 if p["flag"] else 0.2))


def suggest_floats(bounds, f):
    def run(trial):
        return f([trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)])
    return run


def suggest_mixed(trial):
    return mixed({
        "x": trial.suggest_float("x", 0.0, 1.0),
        "batch": trial.suggest_int("batch", 1, 1024, log=True),
        "lr": trial.suggest_float("lr", 1e-5, 1e-1, log=True),
        "kind": trial.suggest_categorical("kind", ["a", "b", "c"]),
        "flag": trial.suggest_categorical("flag", [True, False]),
    })


FUNCTIONS = {
    "Branin": ([(-5.0, 10.0), (0.0, 15.0)], lambda x: branin(*x), 0.397887357729738),
    "Hartmann-6": ([(0.0, 1.0)] * 6, hartmann6, -3.322368011391339),
    "Rosenbrock-4": ([(-2.048, 2.048)] * 4, rosenbrock, 0.0),
    "Mixed": (None, None, 0.0),
}
CHECKPOINTS = [10, 20, 30, 50]

def run_optuna(sampler_name, name, seed, parallel):
    """One study of 50 evaluations, `parallel` at a time; returns the values in the order they finished and the
    sampler's own time (ask and tell)."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    samplers = {
        "Optuna random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "Optuna TPE": lambda: optuna.samplers.TPESampler(seed=seed, constant_liar=parallel > 1),
        "Optuna GPSampler": lambda: optuna.samplers.GPSampler(seed=seed),
    }
    bounds, f, _ = FUNCTIONS[name]
    objective = suggest_mixed if bounds is None else suggest_floats(bounds, f)
    study = optuna.create_study(sampler=samplers[sampler_name]())
    durations = np.random.default_rng(seed + 77)
    running = []  # (ends, trial, value)
    values, spent, now, started = [], 0.0, 0.0, 0
    while len(values) < 50:
        while len(running) < parallel and started < 50:
            start = time.perf_counter()
            trial = study.ask()
            value = objective(trial)  # suggest_* is the sampler's work; the function itself is negligible
            spent += time.perf_counter() - start
            running.append((now + (1.0 if parallel == 1 else 1 + 2 * durations.random()), started, trial, value))
            started += 1
        running.sort(key=lambda entry: (entry[0], entry[1]))
        now, _, trial, value = running.pop(0)
        start = time.perf_counter()
        study.tell(trial, value)
        spent += time.perf_counter() - start
        values.append(value)
    return values, spent

def run_skopt(bounds, f, seed):
    from skopt import gp_minimize
    values = []
    start = time.perf_counter()
    result = gp_minimize(lambda x: f(x), bounds, n_calls=50, random_state=seed)
    return list(result.func_vals), time.perf_counter() - start  # includes the (negligible) function time

def summary(values):
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    fmt = lambda v: "0" if v == 0 else (f"{v:.2g}" if abs(v) < 0.01 or abs(v) >= 1000 else f"{v:.3g}")
    return f"{fmt(med)} [{fmt(q1)}–{fmt(q3)}]"

def main():
    arguments = sys.argv[1:]
    seeds, parallels = 10, [1]
    names = list(FUNCTIONS)
    peers = ["Optuna random", "Optuna TPE", "Optuna GPSampler", "skopt gp_minimize"]
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if argument == "--parallel":
            index += 1
            parallels = [int(p) for p in arguments[index].split(",")]
        elif argument == "--functions":
            index += 1
            names = arguments[index].split(",")
        elif argument == "--peers":
            index += 1
            peers = arguments[index].split(",")
        else:
            seeds = int(argument)
        index += 1
    try:
        import torch  # noqa: F401  GPSampler needs it
    except ImportError:
        peers = [peer for peer in peers if peer != "Optuna GPSampler"]
    print("| function | peer | parallel | regret@10 | regret@20 | regret@30 | regret@50 (median [IQR]) "
          "| optimiser time per run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        bounds, f, minimum = FUNCTIONS[name]
        for peer in peers:
            # skopt has no asynchronous interface, and random search does not care about running trials.
            for parallel in parallels if peer in ("Optuna TPE", "Optuna GPSampler") else [1]:
                if peer.startswith("skopt") and bounds is None:
                    continue
                regrets = [[] for _ in CHECKPOINTS]
                times = []
                for seed in range(seeds):
                    if peer.startswith("skopt"):
                        values, spent = run_skopt(bounds, f, seed)
                    else:
                        values, spent = run_optuna(peer, name, seed, parallel)
                    for k, checkpoint in enumerate(CHECKPOINTS):
                        regrets[k].append(min(values[:checkpoint]) - minimum)
                    times.append(spent)
                cells = " | ".join(summary(r) for r in regrets)
                print(f"| {name} | {peer} | {parallel} | {cells} | {np.median(times):.3g} s |", flush=True)


if __name__ == "__main__":
    main()
