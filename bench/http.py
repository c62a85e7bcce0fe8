"""HTTP workers under load, beside database workers, on loopback.

Usage: python bench/http.py [--store URL] [-n 5000] [--workers 4] [--clients 50] [--repeat 2]

Per repeat, in alternating order (the machine is shared: compare within a pair):

- ``db``: ``herd submit`` of ``n`` independent ``true`` tasks (cpu 1 each), then ``--workers``
  ``herd worker --cpus 1 --store S`` processes; the rate counts from their start to the last
  one's exit (when the workflow is finished).
- ``http``: the same workload through ``herd serve`` (uvicorn, loopback): ``--workers`` ``herd
  worker --cpus 1 --server URL`` processes with a worker token, while ``--clients`` clients (one
  process, asyncio + httpx, each with its own connection) poll ``GET /api/v1/workflows/{name}``
  (counts and progress: what a dashboard polls) every ``--interval`` seconds. Prints the rate,
  the polls' latency (p50, p99, max) and how many polls were answered per second.

Prints the ratio of the HTTP workers' rate to the database workers' (target >= 0.5), the CPU
seconds of the workers (with their tasks), the server and the pollers, and the load average. ``--store`` is an SQLite file (default: a fresh one per measurement) or a PostgreSQL
URL (its schema emptied before each measurement).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERD = [sys.executable, "-m", "herd.cli"]

# run as a script, this file's folder comes first on sys.path, and this file (http.py) would
# shadow the standard library's http package, which httpx imports
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]


@contextmanager
def store_for(base: str | None, tmp: Path, tag: str) -> Iterator[str]:
    """A fresh store: a new SQLite file, or the PostgreSQL database emptied."""
    if base is None or not base.startswith(("postgresql://", "postgres://")):
        yield str(tmp / f"{tag}.db")
        return
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    yield base


def spec(tmp: Path, n: int) -> Path:
    path = tmp / "wf.json"
    tasks = [{"name": f"t{i}", "cmd": "true", "resources": {"cpu": 1}} for i in range(n)]
    path.write_text(json.dumps({"name": "load", "tasks": tasks}))
    return path


def herd(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [*HERD, *args], cwd=cwd, capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0:
        raise SystemExit(f"herd {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_workers(argv: list[str], count: int, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """The wall time of ``count`` workers, and the CPU seconds they and their tasks used."""
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL) for _ in range(count)
    ]
    cpu = 0.0
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
        if p.returncode != 0:
            raise SystemExit(f"a worker exited {p.returncode}: {' '.join(argv)}")
    return time.perf_counter() - t0, cpu


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) the live process ``pid`` used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def db_run(base: str | None, tmp: Path, n: int, workers: int) -> dict[str, float]:
    with store_for(base, tmp, "db") as store:
        herd("submit", str(spec(tmp, n)), "--store", store, cwd=tmp)
        argv = [*HERD, "worker", "--store", store, "--cpus", "1", "--mem", "1000"]
        wall, cpu = run_workers(argv, workers, tmp, dict(os.environ))
    return {"rate": n / wall, "wall": wall, "workers_cpu_s": cpu}


@contextmanager
def serving(store: str, tmp: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    argv = [*HERD, "serve", "--store", store, "-C", str(tmp), "--bind", f"127.0.0.1:{port}"]
    log = (tmp / "serve.log").open("ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/api/v1/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("herd serve did not start: see serve.log") from None
                time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        log.close()


async def poll(url: str, token: str, clients: int, interval: float, stop: Path) -> list[float]:
    """``clients`` pollers until the file ``stop`` exists; the latencies of their answers."""
    import httpx

    latencies: list[float] = []
    failures = 0

    async def client(c: httpx.AsyncClient) -> None:
        nonlocal failures
        async with c:
            while not stop.exists():
                t0 = time.perf_counter()
                r = await c.get("/api/v1/workflows/load")
                latencies.append(time.perf_counter() - t0)
                failures += r.status_code != 200
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - t0)))

    # every client made before the first poll: making one with the CA bundle took 45 ms of this
    # loop, and the first polls of the others were timed through all of it (p99 3 s). Plain
    # HTTP needs no bundle (as herd.store.remote.tls_for): 2 ms, 2 s less CPU for 50 clients
    import ssl

    headers = {"Authorization": f"Bearer {token}"}
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # trusts no one: never used on http://
    made = [
        httpx.AsyncClient(base_url=url, headers=headers, timeout=30, verify=bare)
        for _ in range(clients)
    ]
    await asyncio.gather(*(client(c) for c in made))
    if failures:
        raise SystemExit(f"{failures} status polls failed")
    return latencies


def http_run(
    base: str | None, tmp: Path, n: int, workers: int, clients: int, interval: float
) -> dict[str, float]:
    with store_for(base, tmp, "http") as store:
        herd("submit", str(spec(tmp, n)), "--store", store, cwd=tmp)
        worker_token = herd("token", "create", "--scope", "worker", "--store", store, cwd=tmp)
        read_token = herd("token", "create", "--scope", "read", "--store", store, cwd=tmp)
        with serving(store, tmp) as (url, server):
            server_cpu = cpu_of(server)
            stop, lat_file = tmp / "stop", tmp / "latencies.json"
            stop.unlink(missing_ok=True)
            pollers = None
            if clients:
                pollers = subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--poll",
                        url,
                        "--clients",
                        str(clients),
                        "--interval",
                        str(interval),
                        "--stop",
                        str(stop),
                        "--out",
                        str(lat_file),
                    ],
                    env={**os.environ, "HERD_TOKEN": read_token.strip().splitlines()[-1]},
                )
            env = {**os.environ, "HERD_TOKEN": worker_token.strip().splitlines()[-1]}
            env.pop("HERD_STORE", None)
            argv = [*HERD, "worker", "--server", url, "--cpus", "1", "--mem", "1000"]
            wall, cpu = run_workers(argv, workers, tmp, env)
            server_cpu = cpu_of(server) - server_cpu
            stop.touch()
            out: dict[str, float] = {"rate": n / wall, "wall": wall, "workers_cpu_s": cpu}
            out["server_cpu_s"] = server_cpu
            if pollers is not None:
                _, _, usage = os.wait4(pollers.pid, 0)
                out["pollers_cpu_s"] = usage.ru_utime + usage.ru_stime
                lat = sorted(json.loads(lat_file.read_text()))
                out["polls_per_s"] = len(lat) / wall
                out["p50_ms"] = 1000 * lat[len(lat) // 2]
                out["p99_ms"] = 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))]
                out["max_ms"] = 1000 * lat[-1]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store")
    p.add_argument("-n", type=int, default=5000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--interval", type=float, default=0.5)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--poll", help=argparse.SUPPRESS)
    p.add_argument("--stop", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.poll:  # the pollers' own process
        lat = asyncio.run(
            poll(args.poll, os.environ["HERD_TOKEN"], args.clients, args.interval, Path(args.stop))
        )
        Path(args.out).write_text(json.dumps(lat))
        return
    rows: list[tuple[str, dict[str, float]]] = []
    for r in range(args.repeat):
        kinds = ["db", "http"] if r % 2 == 0 else ["http", "db"]
        for kind in kinds:
            with tempfile.TemporaryDirectory(prefix=f"herd-bench-{kind}-") as d:
                tmp = Path(d)
                if kind == "db":
                    got = db_run(args.store, tmp, args.n, args.workers)
                else:
                    got = http_run(
                        args.store, tmp, args.n, args.workers, args.clients, args.interval
                    )
            load = os.getloadavg()[0]
            rows.append((kind, got))
            extra = "".join(f"  {k} {v:.1f}" for k, v in got.items() if k not in ("rate", "wall"))
            print(
                f"repeat {r + 1} {kind:4s}: {got['rate']:7.1f} tasks/s ({got['wall']:.1f} s)"
                f"{extra}  load {load:.1f}",
                flush=True,
            )
    db = statistics.median(g["rate"] for k, g in rows if k == "db")
    http = statistics.median(g["rate"] for k, g in rows if k == "http")
    ratios = [
        h["rate"] / d["rate"]
        for (_, d), (_, h) in (
            (sorted(rows[i : i + 2], key=lambda x: x[0])) for i in range(0, len(rows), 2)
        )
    ]
    p99s = [g["p99_ms"] for k, g in rows if k == "http" and "p99_ms" in g]
    polls = f" (poll p99 {statistics.median(p99s):.0f} ms)" if p99s else ""
    print(
        f"median: db {db:.1f} tasks/s, http {http:.1f} tasks/s with {args.clients} pollers"
        f"{polls}; http/db per pair {', '.join(f'{x:.2f}' for x in ratios)} "
        f"(target >= 0.5); load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
