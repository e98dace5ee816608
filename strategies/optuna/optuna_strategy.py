#!/usr/bin/env python3
"""Autotune plug-in bridging Optuna's samplers (TPE, CMA-ES, GP, random) over the stdio protocol, version 1.

    pip install optuna            # plus torch for the GP sampler
    strategy: {command: [python3, strategies/optuna/optuna_strategy.py], sampler: tpe}

Options: `sampler` (tpe, cmaes, gp, random; default tpe), `startup_trials` (default 10).
Running trials are passed to Optuna as running trials, so its samplers see them (TPE with constant_liar).
The saved state is the list of finished trials, replayed into a fresh study on load: resume continues with
everything Optuna had learned, though its random draws differ from an uninterrupted run.
"""
import json
import math
import sys

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
study = None
distributions = {}
fixed = {}
told = []          # finished trials as saved: {"params": ..., "value": ... | None}
running = {}       # Autotune trial number -> Optuna trial


def make_distributions(parameters):
    result = {}
    for p in parameters:
        kind = p["type"]
        if kind == "int":
            result[p["name"]] = optuna.distributions.IntDistribution(
                p["min"], p["max"], step=1 if p["log"] else p["step"], log=p["log"])
        elif kind == "float":
            result[p["name"]] = optuna.distributions.FloatDistribution(p["min"], p["max"], log=p["log"])
        elif kind == "categorical":
            result[p["name"]] = optuna.distributions.CategoricalDistribution(p["values"])
        elif kind == "bool":
            result[p["name"]] = optuna.distributions.CategoricalDistribution([False, True])
        else:
            fixed[p["name"]] = p["value"]
    return result


def make_sampler(options, seed):
    name = options.get("sampler", "tpe")
    startup = int(options.get("startup_trials", 10))
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=startup)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)  # needs torch
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r} (tpe, cmaes, gp, random)")


def record(params, value):
    dist = {k: distributions[k] for k in params if k in distributions}
    clean = {k: v for k, v in params.items() if k in distributions}
    if value is None:
        trial = optuna.trial.create_trial(params=clean, distributions=dist, state=optuna.trial.TrialState.FAIL)
    else:
        trial = optuna.trial.create_trial(params=clean, distributions=dist, value=value)
    study.add_trial(trial)


def handle(request):
    global study, distributions
    kind = request["type"]
    if kind == "hello":
        distributions = make_distributions(request["space"]["parameters"])
        direction = "maximize" if request["direction"] == "maximize" else "minimize"
        study = optuna.create_study(direction=direction, sampler=make_sampler(request["options"], request["seed"]))
        return {"protocol": 1, "name": f"optuna-{request['options'].get('sampler', 'tpe')}"}
    if kind == "ask":
        proposals = []
        seen = {json.dumps(t["configuration"], sort_keys=True) for t in request["running"]}
        for _ in range(request["count"] * 5):
            if len(proposals) == request["count"]:
                break
            trial = study.ask(distributions)
            configuration = {**trial.params, **fixed}
            key = json.dumps(configuration, sort_keys=True)
            if key in seen:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            seen.add(key)
            proposals.append(configuration)
            running[request["trials"] + len(proposals) - 1] = trial
        return {"configurations": proposals}
    if kind == "tell":
        t = request["trial"]
        value = t.get("score") if t["state"] == "completed" else None
        if value is not None and not math.isfinite(value):
            value = None
        trial = running.pop(t["number"], None)
        if trial is not None:
            if value is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, value)
        else:
            record(t["configuration"], value)  # asked before a resume: Optuna learns it as a finished trial
        told.append({"params": t["configuration"], "value": value})
        return {}
    if kind == "save":
        return {"state": {"told": told}}
    if kind == "load":
        for item in request["state"]["told"]:
            record(item["params"], item["value"])
            told.append(item)
        return {}
    return {"error": f"unknown request type {kind!r}"}


for line in sys.stdin:
    try:
        reply = handle(json.loads(line))
    except Exception as error:
        reply = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(reply), flush=True)
