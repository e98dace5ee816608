#!/usr/bin/env python3
"""A dependency-free Autotune strategy plug-in: seeded random search over the stdio protocol (version 2;
it answers version 1 to an Autotune that offers only that).

    strategy: {command: [python3, strategies/reference/random_search.py]}

Autotune writes one JSON request per line to stdin; the plug-in answers each with one JSON line on stdout.
Anything for a human goes to stderr. See strategies/README.md.
"""
import json, math, random, sys

rng, space, constraints, constants = random.Random(), [], [], {}

def holds(expression, values):
    """Evaluates a constraint or a `when` condition. Autotune's expression language (+ - * /, comparisons,
    and, or, not, parentheses, 'strings', true/false) is Python's once true/false are spelled its way; a name that
    is missing (an inactive parameter, an unknown constant) makes a constraint not apply."""
    names = dict(constants, true=True, false=False, **values)
    try:
        return bool(eval(expression, {"__builtins__": {}}, names))
    except NameError:
        return None

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
        global constraints, constants
        space = request["space"]["parameters"]
        constraints = request["space"].get("constraints", [])
        constants = request.get("constants", {})
        rng.seed(request["seed"])
        # Version 2 adds the objectives to hello and each trial's objective values to tell; random search reads
        # neither, so it speaks whichever version Autotune offers.
        return {"protocol": min(request.get("protocol", 1), 2), "name": "reference-random"}
    if kind == "ask":
        running = [json.dumps(t["configuration"], sort_keys=True) for t in request["running"]]
        proposals = []
        while len(proposals) < request["count"]:
            configuration = {}
            for p in space:  # a parameter whose `when` is false is inactive: left out
                if "when" not in p or holds(p["when"], configuration):
                    configuration[p["name"]] = draw(p)
            if any(holds(c, configuration) is False for c in constraints):
                continue  # breaks a known constraint: never proposed
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
