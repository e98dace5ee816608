#!/usr/bin/env python3
"""The peers of `autotune-bench noisy`: Optuna's TPE and GP samplers (constraints_func given; a configuration that
does not start is told as FAIL) on the same noisy serving-like problems, 10 seeds x 50 sequential evaluations.
Each recommends what Optuna offers a user: the best measured trial among the feasible ones. The recommendation is
judged against the truth: its true throughput's regret against the true constrained optimum (in % of it; 100 when
it truly breaks the SLO or does not start) and whether its true p99 breaks the SLO.

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install optuna torch scipy
    OMP_NUM_THREADS=1 /tmp/peers/bin/python scripts/benchmarks/noisy_peers.py [seeds] [evaluations]

The problems and their noise (5% on the throughput, 8% on the p99, one standard deviation, multiplicative) are
those of Sources/autotune-bench/NoisyBenchmark.swift; the optima are computed the same way.
"""
import math
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def boundary_tps(x):
    return 1000 * (0.3 + 1.2 * x[0] - 0.5 * x[0] ** 2) * (0.9 + 0.2 * x[1])


def boundary_p99(x):
    return 150 + 1600 * x[0] ** 3 + 250 * x[1]


def decoy_tps(x):
    hill = 700 * math.exp(-((x[0] - 0.3) ** 2 + (x[1] - 0.3) ** 2) / 0.08)
    ridge = 1000 * x[0] * math.exp(-((x[1] - 0.85) ** 2) / 0.03) * (1 - 0.5 * x[2])
    return 200 + hill + ridge


def decoy_p99(x):
    return 200 + 1500 * x[0] ** 2 + 300 * x[2]


PROBLEMS = {
    "SLO boundary": (2, boundary_tps, boundary_p99, 1000, lambda x: x[0] + 0.6 * x[1] > 1.35),
    "Decoy": (3, decoy_tps, decoy_p99, 1200, lambda x: x[1] > 0.95 and x[2] > 0.5),
}


def feasible(problem, x):
    _, _, p99, limit, crashes = problem
    return not crashes(x) and p99(x) <= limit


def optimum(problem):
    dimension, tps, _, _, _ = problem
    steps = 400 if dimension == 2 else 40
    best = None
    for index in np.ndindex(*([steps + 1] * dimension)):
        x = [i / steps for i in index]
        if feasible(problem, x) and (best is None or tps(x) > best[1]):
            best = (x, tps(x))
    x, value = best
    radius = 1 / steps
    while radius > 1e-7:
        moved = False
        for c in range(dimension):
            for direction in (-1, 1):
                candidate = list(x)
                candidate[c] = min(max(candidate[c] + direction * radius, 0), 1)
                if feasible(problem, candidate) and tps(candidate) > value:
                    x, value, moved = candidate, tps(candidate), True
        if not moved:
            radius /= 2
    return value


def run(sampler_name, problem, seed, evaluations):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dimension, tps, p99, limit, crashes = problem
    constraints = lambda trial: trial.user_attrs["constraints"]
    samplers = {
        "Optuna TPE": lambda: optuna.samplers.TPESampler(seed=seed, constraints_func=constraints),
        "Optuna GPSampler": lambda: optuna.samplers.GPSampler(seed=seed, constraints_func=constraints),
    }
    study = optuna.create_study(direction="maximize", sampler=samplers[sampler_name]())
    noise = np.random.default_rng(seed * 7919 + 17)
    measured = []
    for _ in range(evaluations):
        trial = study.ask()
        x = [trial.suggest_float(f"x{i + 1}", 0, 1) for i in range(dimension)]
        if crashes(x):
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        t = tps(x) * (1 + 0.05 * noise.standard_normal())
        p = p99(x) * (1 + 0.08 * noise.standard_normal())
        trial.set_user_attr("constraints", [p - limit])
        study.tell(trial, t)
        if p <= limit:
            measured.append((t, x))
    # What a user of Optuna deploys: the best measured trial that met the constraint.
    return max(measured)[1] if measured else None


def main():
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    evaluations = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    print(f"| problem | method | true regret @{evaluations} (median [IQR], % of optimum) | truly broke the SLO |")
    print("| --- | --- | --- | --- |")
    for name, problem in PROBLEMS.items():
        best = optimum(problem)
        for sampler in ["Optuna TPE", "Optuna GPSampler"]:
            regrets, broke = [], 0
            for seed in range(seeds):
                x = run(sampler, problem, seed, evaluations)
                if x is None or not feasible(problem, x):
                    regrets.append(100.0)
                    broke += x is not None
                else:
                    regrets.append((best - problem[1](x)) / best * 100)
            q = np.quantile(regrets, [0.5, 0.25, 0.75])
            print(f"| {name} | {sampler} | {q[0]:.3g} [{q[1]:.3g}–{q[2]:.3g}] | {broke} of {seeds} |")


if __name__ == "__main__":
    main()
