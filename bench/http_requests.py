"""The server's CPU per request of the two hot routes: a status poll and a worker's heartbeat.

Usage: python bench/http_requests.py [-n 4000] [--baseline /work/base/.venv/bin/python]

Starts ``herd serve`` (SQLite, a workflow of 5,000 tasks) under this Python, or under each of
this one and ``--baseline`` in turn (``--repeat`` times, alternating), then sends ``n`` requests
from 20 keep-alive connections (asyncio + httpx, another process) of each kind:
``GET /api/v1/workflows/load`` (a read token: what a dashboard polls, answered from the kept
summary: nothing changes meanwhile) and ``POST /api/v1/queue/workers/{id}/heartbeat`` (a worker
token: a write transaction). Prints the server's CPU milliseconds per request (``/proc``), the
requests per second and the latencies. CPU per request is what to compare on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# run as a script, this file's folder comes first on sys.path, where http.py would shadow the
# standard library's http package, which httpx imports
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import httpx


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def herd(python: str, *args: str, cwd: Path) -> str:
    argv = [python, "-m", "herd.cli", *args]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True).stdout


async def fire(
    url: str, token: str, method: str, path: str, body: bytes | None, n: int, conns: int = 20
) -> list[float]:
    """``n`` requests over ``conns`` connections; their latencies, sorted."""
    lat: list[float] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    made = [httpx.AsyncClient(base_url=url, headers=headers, verify=False) for _ in range(conns)]

    async def one(c: httpx.AsyncClient) -> None:
        async with c:
            for _ in range(n // conns):
                t0 = time.perf_counter()
                r = await c.request(method, path, content=body)
                if r.status_code != 200:
                    raise SystemExit(f"{method} {path}: HTTP {r.status_code}: {r.text[:200]}")
                lat.append(time.perf_counter() - t0)

    await asyncio.gather(*(one(c) for c in made))
    return sorted(lat)


def measure(python: str, n: int) -> dict[str, tuple[float, float, float, float]]:
    """Per route: server CPU ms per request, requests/s, p50 and p99 ms."""
    with tempfile.TemporaryDirectory(prefix="herd-bench-requests-") as d:
        tmp = Path(d)
        tasks = [{"name": f"t{i}", "cmd": "true"} for i in range(5000)]
        (tmp / "wf.json").write_text(json.dumps({"name": "load", "tasks": tasks}))
        herd(python, "submit", "wf.json", "--store", "s.db", cwd=tmp)
        read = herd(python, "token", "create", "--scope", "read", "--store", "s.db", cwd=tmp)
        work = herd(python, "token", "create", "--scope", "worker", "--store", "s.db", cwd=tmp)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        argv = [python, "-m", "herd.cli", "serve", "--store", "s.db", "-C", d]
        server = subprocess.Popen(
            [*argv, "--bind", f"127.0.0.1:{port}"],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(url + "/api/v1/openapi.json")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            rt, wt = read.split()[-1], work.split()[-1]
            who = {"host": "h", "pid": 1, "user": "u", "resources": {"cpu": 1}, "lease": 60}
            got = httpx.post(
                url + "/api/v1/queue/workers", headers={"Authorization": f"Bearer {wt}"}, json=who
            )
            beat = f"/api/v1/queue/workers/{got.json()['id']}/heartbeat"
            out = {}
            for name, token, method, path, body in (
                ("poll", rt, "GET", "/api/v1/workflows/load", None),
                ("heartbeat", wt, "POST", beat, b'{"lease": 60}'),
            ):
                asyncio.run(fire(url, token, method, path, body, 200))  # warm
                c0, t0 = cpu_of(server.pid), time.perf_counter()
                lat = asyncio.run(fire(url, token, method, path, body, n))
                wall, cpu = time.perf_counter() - t0, cpu_of(server.pid) - c0
                p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
                out[name] = (1000 * cpu / len(lat), len(lat) / wall, 1000 * p50, 1000 * p99)
        finally:
            server.terminate()
            server.wait(15)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=4000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--baseline", help="another Python with its own herd, measured in turn")
    args = p.parse_args()
    pythons = [("this", sys.executable)]
    if args.baseline:
        pythons.append(("baseline", args.baseline))
    for r in range(args.repeat):
        for tag, python in pythons if r % 2 == 0 else pythons[::-1]:
            for name, (cpu, rate, p50, p99) in measure(python, args.n).items():
                print(
                    f"repeat {r + 1} {tag:8s} {name:9s}: server {cpu:.2f} ms CPU/request, "
                    f"{rate:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
