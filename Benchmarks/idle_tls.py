"""Opens N idle TLS connections to a server on loopback and reports its RSS cost per
connection, read from /proc/PID/status before and after. Not a test: a measurement."""
import argparse
import asyncio
import resource
import ssl


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--count", type=int, default=10000)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.count + 1024), hard))
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.check_hostname = False
    before = rss_kib(a.pid)
    conns = []
    sem = asyncio.Semaphore(200)

    async def one() -> None:
        async with sem:
            conns.append(await asyncio.open_connection("127.0.0.1", a.port, ssl=ctx))

    await asyncio.gather(*(one() for _ in range(a.count)))
    await asyncio.sleep(2)
    after = rss_kib(a.pid)
    per = (after - before) / a.count
    print(f"idle     {a.count} TLS connections: RSS {before} -> {after} KiB, {per:.1f} KiB each (target <= 32)")
    for _, w in conns:
        w.close()


asyncio.run(main())
