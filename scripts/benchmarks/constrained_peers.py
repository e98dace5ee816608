#!/usr/bin/env python3
"""The peers of `autotune-bench constrained`: Optuna's random, TPE and GP samplers (constraints_func given; a
crashed trial is told as FAIL, as Optuna's docs recommend) on the same constrained problems with the same crash
regions, 10 seeds x 50 evaluations: the median regret of the best feasible point after 10, 20, 30 and 50
evaluations, and the shares of trials that crashed or broke a constraint.

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install optuna torch
    OMP_NUM_THREADS=1 /tmp/peers/bin/python scripts/benchmarks/constrained_peers.py [seeds] [minimums...] \
        [--parallel 1,4,8] [--peers "Optuna TPE,Optuna GPSampler"] [--problems Decoy-SLO]

With `--parallel` the peers run on the schedule of `autotune-bench time-to-target`: N trials at a time, each
taking 1 to 3 units (seeded), a freed slot refilled at once, the running trials RUNNING to the sampler (TPE with
`constant_liar=True`, GPSampler with its q-LogEI over running trials).

The true minima (the best feasible, non-crashing value) are printed by `autotune-bench constrained-minima`; give
them in the order Gardner, Gramacy, Branin-disk, Decoy-SLO.
"""
import math
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def branin(x1, x2):
    b = 5.1 / (4 * math.pi ** 2)
    return (x2 - b * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


PROBLEMS = {
    "Gardner": (
        [(0.0, 6.0), (0.0, 6.0)],
        lambda x: math.cos(2 * x[0]) * math.cos(x[1]) + math.sin(x[0]),
        lambda x: [math.cos(x[0]) * math.cos(x[1]) - math.sin(x[0]) * math.sin(x[1]) - 0.5],
        lambda u: u[0] + u[1] > 1.55,
    ),
    "Gramacy": (
        [(0.0, 1.0), (0.0, 1.0)],
        lambda x: x[0] + x[1],
        lambda x: [1.5 - x[0] - 2 * x[1] - 0.5 * math.sin(2 * math.pi * (x[0] ** 2 - 2 * x[1])),
                   x[0] ** 2 + x[1] ** 2 - 1.5],
        lambda u: u[0] < 0.12,
    ),
    "Branin-disk": (
        [(-5.0, 10.0), (0.0, 15.0)],
        lambda x: branin(x[0], x[1]),
        lambda x: [(x[0] - 2.5) ** 2 + (x[1] - 7.5) ** 2 - 50],
        lambda u: u[1] > 0.85,
    ),
    "Decoy-SLO": (
        [(0.0, 1.0), (0.0, 1.0)],
        lambda x: -(0.7 * math.exp(-((x[0] - 0.25) ** 2 + (x[1] - 0.3) ** 2) / 0.05)
                    + math.exp(-((x[0] - 0.78) ** 2 + (x[1] - 0.62) ** 2) / 0.012)),
        lambda x: [x[0] + 0.6 * x[1] - 1.1],
        lambda u: u[0] > 0.9 and u[1] < 0.35,
    ),
}
CHECKPOINTS = [10, 20, 30, 50]


def worst(problem):
    bounds, f, c, crash = problem
    values = []
    for i in range(201):
        for j in range(201):
            u = [i / 200, j / 200]
            x = [lo + ui * (hi - lo) for ui, (lo, hi) in zip(u, bounds)]
            if not crash(u) and all(v <= 0 for v in c(x)):
                values.append(f(x))
    return max(values)


def run(sampler_name, problem, seed, parallel=1):
    """One study of 50 evaluations, `parallel` at a time; (feasible value or None, crashed) in finishing order."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bounds, f, c, crash = problem
    constraints = lambda trial: trial.user_attrs["constraints"]
    samplers = {
        "Optuna random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "Optuna TPE": lambda: optuna.samplers.TPESampler(
            seed=seed, constraints_func=constraints, constant_liar=parallel > 1),
        "Optuna GPSampler": lambda: optuna.samplers.GPSampler(seed=seed, constraints_func=constraints),
    }
    study = optuna.create_study(sampler=samplers[sampler_name]())
    durations = np.random.default_rng(seed + 77)
    running = []  # (ends, number, trial, x)
    trace, now, started = [], 0.0, 0
    while len(trace) < 50:
        while len(running) < parallel and started < 50:
            trial = study.ask()
            x = [trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]
            running.append((now + 1 + 2 * durations.random(), started, trial, x))
            started += 1
        running.sort(key=lambda entry: (entry[0], entry[1]))
        now, _, trial, x = running.pop(0)
        u = [(xi - lo) / (hi - lo) for xi, (lo, hi) in zip(x, bounds)]
        if crash(u):
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            trace.append((None, True))
            continue
        values = c(x)
        trial.set_user_attr("constraints", values)
        value = f(x)
        study.tell(trial, value)
        trace.append((value if all(v <= 0 for v in values) else None, False))
    return trace


def summary(values):
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    fmt = lambda v: "0" if v == 0 else (f"{v:.2g}" if abs(v) < 0.01 or abs(v) >= 1000 else f"{v:.3g}")
    return f"{fmt(med)} [{fmt(q1)}–{fmt(q3)}]"


def main():
    arguments = sys.argv[1:]
    options = {}
    for flag in ("--parallel", "--peers", "--problems"):
        if flag in arguments:
            index = arguments.index(flag)
            options[flag] = arguments[index + 1]
            del arguments[index:index + 2]
    seeds = int(arguments[0]) if arguments else 10
    minima = [float(v) for v in arguments[1:]]
    parallels = [int(p) for p in options.get("--parallel", "1").split(",")]
    peers = options.get("--peers", "Optuna random,Optuna TPE,Optuna GPSampler").split(",")
    only = options["--problems"].split(",") if "--problems" in options else None
    try:
        import torch  # noqa: F401  GPSampler needs it
    except ImportError:
        peers = [peer for peer in peers if peer != "Optuna GPSampler"]
        print("(torch is not installed: GPSampler left out)", file=sys.stderr)
    print("| problem | peer | parallel | regret@10 | regret@20 | regret@30 | regret@50 (median [IQR]) | crashed "
          "| broke the SLO |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for index, (name, problem) in enumerate(PROBLEMS.items()):
        if only is not None and name not in only:
            continue
        minimum = minima[index] if index < len(minima) else 0.0
        fallback = worst(problem)
        for peer in peers:
            for parallel in parallels if peer != "Optuna random" else [1]:
                regrets = [[] for _ in CHECKPOINTS]
                crashed = violated = total = 0
                for seed in range(seeds):
                    trace = run(peer, problem, seed, parallel)
                    for i, checkpoint in enumerate(CHECKPOINTS):
                        feasible = [v for v, _ in trace[:checkpoint] if v is not None]
                        regrets[i].append((min(feasible) if feasible else fallback) - minimum)
                    crashed += sum(1 for _, crash in trace if crash)
                    violated += sum(1 for v, crash in trace if not crash and v is None)
                    total += len(trace)
                cells = " | ".join(summary(r) for r in regrets)
                print(f"| {name} | {peer} | {parallel} | {cells} | {100 * crashed / total:.0f}% "
                      f"| {100 * violated / total:.0f}% |", flush=True)


if __name__ == "__main__":
    main()
