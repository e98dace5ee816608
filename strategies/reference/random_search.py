#!/usr/bin/env python3
"""A dependency-free Autotune strategy plug-in: seeded random search over the stdio protocol (version 1).

    strategy: {command: [python3, strategies/reference/random_search.py]}

Autotune writes one JSON request per line to stdin; the plug-in answers each with one JSON line on stdout.
Anything for a human goes to stderr. See strategies/README.md.
"""
import json, math, random, sys

rng, space = random.Random(), []

def draw(p):
    kind = p["type"]
    if kind == "int" and p["log"]:
        return min(p["max"], max(p["min"], round(math.exp(rng.uniform(math.log(p["min"] - 0.5), math.log(p["max"] + 0.5))))))
    if kind == "int":
        return p["min"] + p["step"] * rng.randrange((p["max"] - p["min"]) // p["step"] + 1)
    if kind == "float":
        lo, hi = (math.log(p["min"]), math.log(p["max"])) if p["log"] else (p["min"], p["max"])
        value = rng.uniform(lo, hi)
        return math.exp(value) if p["log"] else value
    if kind == "categorical":
        return rng.choice(p["values"])
    if kind == "bool":
        return rng.random() < 0.5
    return p["value"]  # fixed

def handle(request):
    global space
    kind = request["type"]
    if kind == "hello":
        space = request["space"]["parameters"]
        rng.seed(request["seed"])
        return {"protocol": 1, "name": "reference-random"}
    if kind == "ask":
        running = [json.dumps(t["configuration"], sort_keys=True) for t in request["running"]]
        proposals = []
        while len(proposals) < request["count"]:
            configuration = {p["name"]: draw(p) for p in space}
            if json.dumps(configuration, sort_keys=True) not in running:
                proposals.append(configuration)
        return {"configurations": proposals}
    if kind == "tell":
        return {}  # random search learns nothing; a real strategy updates its model here
    if kind == "save":
        version, internal, gauss = rng.getstate()
        return {"state": [version, list(internal), gauss]}
    if kind == "load":
        version, internal, gauss = request["state"]
        rng.setstate((version, tuple(internal), gauss))
        return {}
    return {"error": f"unknown request type {kind!r}"}

for line in sys.stdin:
    try:
        reply = handle(json.loads(line))
    except Exception as error:  # report, don't die: Autotune shows the message with the trial's study
        reply = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(reply), flush=True)
