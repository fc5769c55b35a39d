#!/usr/bin/env python3
"""Holds slow and idle connections open against a node for --seconds: --slowloris
connections that complete TLS and then send a request head one byte every few seconds,
and --idle connections that open TCP, send half a TLS ClientHello and wait. A connection
the node closes is opened again, so the pressure stays constant. The slowloris
connections first open evenly over --ramp seconds: when the ramp is as long as the node's
header timeout, their reopenings are spread as evenly from then on, as from many
attackers, instead of coming in one wave every timeout. Every second it prints the node's
open descriptors and RSS (from /proc) and the counts so far as JSON lines. Standard
library only. Not a test: Benchmarks/abuse-bench.sh runs it beside a normal client."""
import argparse
import asyncio
import json
import os
import resource
import ssl
import time

HEAD = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 4000


def sample(pid):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return fds, rss


async def slowloris(port, context, start, until, counts):
    await asyncio.sleep(max(0, start - time.time()))
    while time.time() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
            counts["slow_open"] += 1
            counts["slow_opened"] += 1
            try:
                for byte in HEAD:
                    if time.time() >= until:
                        break
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(3)
            finally:
                counts["slow_open"] -= 1
                writer.close()
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            counts["slow_reopened"] += 1
            await asyncio.sleep(0.05)


async def idle_handshake(port, until, counts):
    # The start of a ClientHello (record header, handshake header, version, random): a
    # handshake that never finishes.
    partial = bytes.fromhex("160301012c010001280303") + bytes(32)
    while time.time() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            counts["idle_open"] += 1
            try:
                writer.write(partial)
                await writer.drain()
                await asyncio.wait_for(reader.read(1), timeout=max(0.1, until - time.time()))
            except asyncio.TimeoutError:
                pass
            finally:
                counts["idle_open"] -= 1
                writer.close()
            counts["idle_reopened"] += 1
        except OSError:
            await asyncio.sleep(0.05)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--slowloris", type=int, default=2000)
    p.add_argument("--idle", type=int, default=200)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--ramp", type=float, default=1)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.slowloris + a.idle + 1024), hard))
    context = ssl.create_default_context(cafile=a.ca)
    until = time.time() + a.seconds
    counts = {"slow_open": 0, "slow_opened": 0, "slow_reopened": 0, "idle_open": 0, "idle_reopened": 0}
    tasks = [asyncio.create_task(idle_handshake(a.port, until, counts)) for _ in range(a.idle)]
    began = time.time()
    for i in range(a.slowloris):
        start = began + a.ramp * i / a.slowloris
        tasks.append(asyncio.create_task(slowloris(a.port, context, start, until, counts)))
    while time.time() < until:
        fds, rss = sample(a.pid)
        print(json.dumps({"t": round(time.time(), 1), "fds": fds, "rssKiB": rss, **counts}), flush=True)
        await asyncio.sleep(1)
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
