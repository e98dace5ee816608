#!/usr/bin/env python3
"""The peers of `autotune-bench pareto`: Optuna's NSGA-II, TPE and GPSampler in multi-objective mode on the same
two-objective problems (BraninCurrin, ZDT1 and DTLZ2 with d = 4, SRN with its two constraints through
`constraints_func`), 10 seeds x 50 evaluations, sequentially and with 4 trials running at once (random durations,
as Autotune's benchmark runs them; TPE with `constant_liar=True`). Prints the hypervolume of the feasible front
found after 20 and 50 evaluations as a ratio to the true front's, against the same reference points.

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install optuna torch
    OMP_NUM_THREADS=1 /tmp/peers/bin/python scripts/benchmarks/pareto_peers.py [SEEDS] [--parallel 1,4] \\
        [--peers "Optuna NSGA-II,Optuna TPE,Optuna GPSampler"] [--problems "BraninCurrin,DTLZ2"] \\
        $(.build/release/autotune-bench pareto-truth)

The true hypervolumes come last, in the order of PROBLEMS.

With `--decoy-family FILE` it runs the random two-objective problems of `autotune-bench pareto-decoy-family`
instead (a decoy front, a narrow true one, a crash corner told as FAIL), read from the JSON lines that
`autotune-bench pareto-decoy-family N --json > FILE` prints, and prints the hypervolume ratio at 50 and the studies
still on the decoy front, as that command does:

    OMP_NUM_THREADS=1 /tmp/peers/bin/python scripts/benchmarks/pareto_peers.py 1 --parallel 1,4 \\
        --peers "Optuna GPSampler" --decoy-family FILE
"""
import json
import math
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def branin(x1, x2):
    b = 5.1 / (4 * math.pi ** 2)
    return (x2 - b * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


def branin_currin(x):
    x0, x1 = x[0], max(x[1], 1e-12)
    currin = ((1 - math.exp(-1 / (2 * x1))) * (2300 * x0 ** 3 + 1900 * x0 ** 2 + 2092 * x0 + 60)
              / (100 * x0 ** 3 + 500 * x0 ** 2 + 4 * x0 + 20))
    return [branin(15 * x[0] - 5, 15 * x[1]), currin]


def zdt1(x):
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    return [x[0], g * (1 - math.sqrt(x[0] / g))]


def dtlz2(x):
    g = sum((v - 0.5) ** 2 for v in x[1:])
    return [(1 + g) * math.cos(x[0] * math.pi / 2), (1 + g) * math.sin(x[0] * math.pi / 2)]


def srn(x):
    return [2 + (x[0] - 2) ** 2 + (x[1] - 1) ** 2, 9 * x[0] - (x[1] - 1) ** 2]


def srn_constraints(x):
    return [x[0] ** 2 + x[1] ** 2 - 225, x[0] - 3 * x[1] + 10]


# name: (bounds, objectives, constraints or None, reference point)
PROBLEMS = {
    "BraninCurrin": ([(0.0, 1.0)] * 2, branin_currin, None, [18.0, 6.0]),
    "ZDT1": ([(0.0, 1.0)] * 4, zdt1, None, [1.1, 1.1]),
    "DTLZ2": ([(0.0, 1.0)] * 4, dtlz2, None, [1.1, 1.1]),
    "SRN (constrained)": ([(-20.0, 20.0)] * 2, srn, srn_constraints, [250.0, 0.0]),
}


def hypervolume(points, reference):
    inside = sorted(p for p in points if p[0] < reference[0] and p[1] < reference[1])
    volume, ceiling = 0.0, reference[1]
    for p in inside:
        if p[1] < ceiling:
            volume += (reference[0] - p[0]) * (ceiling - p[1])
            ceiling = p[1]
    return volume


class DecoyInstance:
    """One instance of `autotune-bench pareto-decoy-family` (its Swift type documents the shape)."""

    def __init__(self, fields):
        self.__dict__.update(fields)

    def depth(self, x):
        t = (x[1] - self.trueCentre[0]) ** 2 + (x[2] - self.trueCentre[1]) ** 2
        d = (x[1] - self.decoyCentre[0]) ** 2 + (x[2] - self.decoyCentre[1]) ** 2
        return 1 + min(t / self.trueWidth, self.decoyLevel + d / self.decoyWidth, 2)

    def objectives(self, x):
        g = self.depth(x)
        return [g * x[0], g * (1 - x[0] ** self.shape)]

    def crashes(self, x):
        return abs(x[1] - self.crashCorner[0]) < self.crashSize and abs(x[2] - self.crashCorner[1]) < self.crashSize


def run(peer, name, seed, parallel, instance=None):
    """One study of 50 evaluations, `parallel` at a time; the objective vectors in finishing order (None for
    an infeasible or crashed one; with a decoy instance, (vector, depth) pairs) and the sampler's own time."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if instance is not None:
        bounds, f, constraints = [(0.0, 1.0)] * 3, instance.objectives, None
    else:
        bounds, f, constraints, _ = PROBLEMS[name]
    constraints_func = (lambda t: t.user_attrs["c"]) if constraints else None
    samplers = {
        "Optuna NSGA-II": lambda: optuna.samplers.NSGAIISampler(seed=seed, constraints_func=constraints_func),
        "Optuna TPE": lambda: optuna.samplers.TPESampler(
            seed=seed, constraints_func=constraints_func, constant_liar=parallel > 1),
        "Optuna GPSampler": lambda: optuna.samplers.GPSampler(seed=seed, constraints_func=constraints_func),
        "Optuna random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=samplers[peer]())
    durations = np.random.default_rng(seed + 77)
    running, trace, spent, now, started = [], [], 0.0, 0.0, 0
    while len(trace) < 50:
        while len(running) < parallel and started < 50:
            start = time.perf_counter()
            trial = study.ask()
            x = [trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]
            spent += time.perf_counter() - start
            crashed = instance is not None and instance.crashes(x)
            values = None if crashed else f(x)
            if instance is not None and not crashed:
                values = (values, instance.depth(x))
            c = constraints(x) if constraints else []
            trial.set_user_attr("c", c)
            ends = now + (1.0 if parallel == 1 else 1 + 2 * durations.random())
            running.append((ends, started, trial, values, all(v <= 0 for v in c)))
            started += 1
        running.sort(key=lambda entry: (entry[0], entry[1]))
        now, _, trial, values, feasible = running.pop(0)
        start = time.perf_counter()
        if values is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, values[0] if instance is not None else values)
        spent += time.perf_counter() - start
        trace.append(values if feasible else None)
    return trace, spent


def summary(values):
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return f"{med:.3g} [{q1:.3g}–{q3:.3g}]"


def decoy_family(path, seeds, parallels, peers):
    instances = [DecoyInstance(json.loads(line)) for line in open(path) if line.strip()]
    print("| strategy | parallel | studies | HV ratio @50 (median [IQR]) | on the decoy | crashed |")
    print("| --- | --- | --- | --- | --- | --- |")
    for peer in peers:
        for parallel in parallels if peer != "Optuna random" else [1]:
            ratios, on_decoy, crashed = [], 0, 0
            for instance in instances:
                for seed in range(seeds):
                    trace, _ = run(peer, None, seed, parallel, instance)
                    measured = [entry for entry in trace if entry]
                    ratios.append(hypervolume([v for v, _ in measured], instance.reference)
                                  / instance.trueHypervolume)
                    if not any(depth < 1 + instance.decoyLevel - 1e-6 for _, depth in measured):
                        on_decoy += 1
                    crashed += sum(1 for entry in trace if entry is None)
            print(f"| {peer} | {parallel} | {len(ratios)} | {summary(ratios)} | {on_decoy} "
                  f"| {100 * crashed / (50 * len(ratios)):.0f}% |", flush=True)


def main():
    arguments = sys.argv[1:]
    seeds, parallels = 10, [1, 4]
    peers = ["Optuna random", "Optuna NSGA-II", "Optuna TPE", "Optuna GPSampler"]
    truths = []
    only = None
    family = None
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if argument == "--parallel":
            index += 1
            parallels = [int(p) for p in arguments[index].split(",")]
        elif argument == "--peers":
            index += 1
            peers = arguments[index].split(",")
        elif argument == "--decoy-family":
            index += 1
            family = arguments[index]
        elif argument == "--problems":
            index += 1
            only = arguments[index].split(",")
        elif "." in argument:
            truths.append(float(argument))
        else:
            seeds = int(argument)
        index += 1
    if family is not None:
        decoy_family(family, seeds, parallels, peers)
        return
    if len(truths) != len(PROBLEMS):
        sys.exit("give the true hypervolumes: $(.build/release/autotune-bench pareto-truth)")
    print("| problem | strategy | parallel | HV ratio @20 | HV ratio @50 (median [IQR]) | worst seed @50 | infeasible "
          "| optimiser time per run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for (name, (_, _, _, reference)), truth in zip(PROBLEMS.items(), truths):
        if only is not None and name not in only:
            continue
        for peer in peers:
            for parallel in parallels if peer != "Optuna random" else [1]:
                at20, at50, infeasible, times = [], [], 0, []
                for seed in range(seeds):
                    trace, spent = run(peer, name, seed, parallel)
                    at20.append(hypervolume([p for p in trace[:20] if p], reference) / truth)
                    at50.append(hypervolume([p for p in trace if p], reference) / truth)
                    infeasible += sum(1 for p in trace if p is None)
                    times.append(spent)
                print(f"| {name} | {peer} | {parallel} | {summary(at20)} | {summary(at50)} | {min(at50):.3g} "
                      f"| {100 * infeasible / (50 * seeds):.0f}% | {np.median(times):.3g} s |", flush=True)


if __name__ == "__main__":
    main()
