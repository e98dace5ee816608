#!/usr/bin/env python3
"""Writes a reproducible, text-like file for the zstd example (8 MB of seeded random words)."""
import random
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "examples/zstd/sample.txt"
size = int(sys.argv[2]) if len(sys.argv) > 2 else 8_000_000
rng = random.Random(1)
letters = "abcdefghijklmnopqrstuvwxyz"
words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(3000)]
written = 0
with open(path, "w") as out:
    while written < size:
        line = " ".join(rng.choice(words) for _ in range(12)) + "\n"
        out.write(line)
        written += len(line)
