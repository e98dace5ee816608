#!/usr/bin/env python3
"""A plain Python aiohttp streaming client, the kind `vllm bench serve` is: closed loop at a concurrency, every
request streaming `/v1/completions`, every token timestamped (`time.perf_counter()` per SSE chunk, each chunk
parsed with json.loads). Prints one JSON line: requests, streamed tokens, wall seconds, CPU seconds of this
process, requests/s and streamed tokens/s. `autotune-bench generator` runs it beside Autotune's generator.

    stream_client.py URL CONCURRENCY REQUESTS OUTPUT_TOKENS
    stream_client.py URL --plan FILE ENDPOINT [CONCURRENCY]

With --plan it sends the requests in FILE (JSON lines from Autotune's `LoadGenerator.plannedRequests`: messages,
max_tokens and, for an open-loop level, each one's arrival `at`) to ENDPOINT (chat or completions): at their
arrival times when they have them, else closed loop at CONCURRENCY; it adds the send lag (seconds late against
the plan, p50 and p99) to what it prints.
"""
import asyncio
import json
import resource
import sys
import time

import aiohttp


async def token_times(response):
    """When each token of a streamed completion or chat answer arrived (one json.loads per SSE chunk)."""
    stamps = []
    async for line in response.content:
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            continue
        chunk = json.loads(payload)
        choices = chunk.get("choices") or [{}]
        if choices[0].get("text") or (choices[0].get("delta") or {}).get("content"):
            stamps.append(time.perf_counter())
    return stamps


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
            async with session.post(url + "/v1/completions", json=body) as response:
                stamps = await token_times(response)
            tokens += len(stamps)
            done += 1

    async def load(session, start):
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))

    wall, cpu_seconds = await timed(load)
    print(json.dumps({"requests": done, "tokens": tokens, "wall_s": wall, "cpu_s": cpu_seconds,
                      "requests_per_s": done / wall, "tokens_per_s": tokens / wall}))


async def timed(load):
    """Runs `load(session, start)` in one unlimited aiohttp session; its wall-clock and CPU seconds."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        await load(session, start)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
    return wall, (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)


async def replay(url, path, endpoint, concurrency):
    plan = [json.loads(line) for line in open(path) if line.strip()]
    tokens = 0
    done = 0
    lags = []
    target = url + ("/v1/chat/completions" if endpoint == "chat" else "/v1/completions")

    async def send(session, request):
        nonlocal tokens, done
        body = {"model": "sim", "max_tokens": request["max_tokens"], "stream": True, "ignore_eos": True,
                "temperature": 0}
        if endpoint == "chat":
            body["messages"] = request["messages"]
        else:
            body["prompt"] = "\n".join(m["content"] for m in request["messages"])
        async with session.post(target, json=body) as response:
            stamps = await token_times(response)
        tokens += len(stamps)
        done += 1

    async def load(session, start):
        if plan and plan[0].get("at") is not None:
            tasks = []
            for request in plan:
                wait = start + request["at"] - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                lags.append(time.perf_counter() - start - request["at"])
                tasks.append(asyncio.ensure_future(send(session, request)))
            await asyncio.gather(*tasks)
        else:
            queue = list(reversed(plan))

            async def worker():
                while queue:
                    await send(session, queue.pop())

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    wall, cpu_seconds = await timed(load)
    lags.sort()
    result = {"requests": done, "tokens": tokens, "wall_s": wall, "cpu_s": cpu_seconds,
              "requests_per_s": done / wall, "tokens_per_s": tokens / wall}
    if lags:
        result["lag_p50_s"] = lags[len(lags) // 2]
        result["lag_p99_s"] = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "--plan":
        asyncio.run(replay(sys.argv[1], sys.argv[3], sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 64))
    else:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
