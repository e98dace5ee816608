#!/usr/bin/env python3
"""A plain Python aiohttp streaming client, the kind `vllm bench serve` is: closed loop at a concurrency, every
request streaming `/v1/completions`, every token timestamped (`time.perf_counter()` per SSE chunk, each chunk
parsed with json.loads). Prints one JSON line: requests, streamed tokens, wall seconds, CPU seconds of this
process, requests/s and streamed tokens/s. `autotune-bench generator` runs it beside Autotune's generator.

    stream_client.py URL CONCURRENCY REQUESTS OUTPUT_TOKENS
"""
import asyncio
import json
import resource
import sys
import time

import aiohttp


async def main(url, concurrency, total, output_tokens):
    sent = 0
    tokens = 0
    done = 0
    body = {"model": "sim", "prompt": "the model serves many requests with short words and long answers",
            "max_tokens": output_tokens, "stream": True, "ignore_eos": True, "temperature": 0}

    async def worker(session):
        nonlocal sent, tokens, done
        while sent < total:
            sent += 1
            stamps = []
            async with session.post(url + "/v1/completions", json=body) as response:
                async for line in response.content:
                    line = line.strip()
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        continue
                    chunk = json.loads(payload)
                    if chunk.get("choices") and chunk["choices"][0].get("text"):
                        stamps.append(time.perf_counter())
            tokens += len(stamps)
            done += 1

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    print(json.dumps({"requests": done, "tokens": tokens, "wall_s": wall, "cpu_s": cpu_seconds,
                      "requests_per_s": done / wall, "tokens_per_s": tokens / wall}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
