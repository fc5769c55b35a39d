#!/usr/bin/env python3
"""Sends bodies a node must refuse, CONCURRENT at a time, ROUNDS times, to
POST /v1/index/studies as a hospital: a gzip bomb (200 MB of zeros in 200 KB, past the
64 MiB decompression limit), a chunked body that never ends before the 16 MiB body limit,
and a Content-Length of a terabyte. Every answer must be 413; the node's RSS is sampled
from /proc every 0.2 s. Prints one JSON object: statuses, RSS before, at most during,
and after a settling pause. Standard library only. Not a test: abuse-bench.sh runs it."""
import argparse
import gzip
import json
import os
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def connect(a):
    context = ssl.create_default_context(cafile=a.ca)
    context.load_cert_chain(a.cert, a.key)
    raw = socket.create_connection(("127.0.0.1", a.port), timeout=60)
    return context.wrap_socket(raw, server_hostname="localhost")


def status_of(sock):
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def head(extra):
    return (b"POST /v1/index/studies HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-ndjson\r\n"
            + extra + b"\r\n")


def send_all(sock, data):
    """The node may answer and close before it has read everything: that is a refusal."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        pass


def bomb(a, payload):
    with connect(a) as s:
        send_all(s, head(b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(payload)) + payload)
        return status_of(s)


def endless_chunks(a):
    chunk = b"x" * 65536
    with connect(a) as s:
        send_all(s, head(b"Transfer-Encoding: chunked\r\n"))
        try:
            for _ in range(20 * 1024 * 1024 // len(chunk)):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        return status_of(s)


def terabyte(a):
    with connect(a) as s:
        send_all(s, head(b"Content-Length: 1099511627776\r\n") + b"{")
        return status_of(s)


def main():
    p = argparse.ArgumentParser()
    for name in ("ca", "cert", "key"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--concurrent", type=int, default=8)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    payload = gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)
    before = rss_kib(a.pid)
    peak = [before]
    done = threading.Event()

    def sampler():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(a.pid))
            time.sleep(0.2)

    threading.Thread(target=sampler, daemon=True).start()
    statuses = {}
    kinds = [("gzip-bomb", lambda: bomb(a, payload)), ("endless-chunked", lambda: endless_chunks(a)),
             ("terabyte-length", lambda: terabyte(a))]
    with ThreadPoolExecutor(a.concurrent) as pool:
        for _ in range(a.rounds):
            for name, send in kinds:
                for status in pool.map(lambda _: send(), range(a.concurrent)):
                    statuses.setdefault(name, {}).setdefault(str(status), 0)
                    statuses[name][str(status)] += 1
    time.sleep(5)
    done.set()
    print(json.dumps({"statuses": statuses, "rssKiB": {"before": before, "max": peak[0], "after": rss_kib(a.pid)}}))


if __name__ == "__main__":
    main()
