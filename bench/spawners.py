"""Ways to start a task from a busy Python process, side by side: what issue 18 could build on.

Usage: python bench/spawners.py [-n 4000] [-j 2] [--work-us 300] [--repeat 2]

Each mode is a loop in a fresh interpreter that imported herd (its footprint), J ``/bin/true`` in
flight, spending ``--work-us`` µs of Python CPU per task (half before the start, half after: what
herd's loop does around a spawn, ~300 µs here) and reaping with ``os.wait``:

- ``inline``: ``os.posix_spawn`` in the loop, as herd does (the GIL held through the vfork wait);
- ``py-thread``: a Python thread calls the C library's ``posix_spawn`` through ``ctypes`` (GIL
  released), the loop hands it prepared arguments through a ``queue.SimpleQueue``;
- ``py-pinned``: one such thread per vCPU, each pinned to its vCPU (a child inherits the affinity
  of the thread that starts it, so it starts where that thread is), the tasks dealt out in turn,
  each child's affinity widened to every vCPU right after its start;
- ``c-thread`` and ``c-pinned``: the same two with threads written in C (no GIL at all), built
  with the C compiler into a temporary folder; skipped, with the reason, where there is none.

It prints tasks a second and the loop's CPU time a task (threads included), each mode once per
repeat in turn. On this project's 2-vCPU guest (docs/performance.md, session 12) the C threads
pinned per vCPU make ~10 % more than ``inline``, the unpinned C thread 3-5 %, and the Python
threads less than ``inline``: their GIL hand-overs cost 80-110 µs of CPU a task, more than the
overlap saves.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MODES = ("inline", "py-thread", "py-pinned", "c-thread", "c-pinned")

C_SPAWNER = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdlib.h>
extern char **environ;
typedef struct {
  pthread_mutex_t m; pthread_cond_t c; int pending, cpu, null; cpu_set_t all; pthread_t t;
} spawner;
static void *loop(void *arg) {
  spawner *s = arg;
  if (s->cpu >= 0) {
    cpu_set_t one; CPU_ZERO(&one); CPU_SET(s->cpu, &one);
    pthread_setaffinity_np(pthread_self(), sizeof one, &one);
  }
  posix_spawn_file_actions_t fa; posix_spawn_file_actions_init(&fa);
  for (int fd = 0; fd < 3; fd++) posix_spawn_file_actions_adddup2(&fa, s->null, fd);
  posix_spawnattr_t at; posix_spawnattr_init(&at); posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
  char *argv[] = {"true", NULL};
  for (;;) {
    pthread_mutex_lock(&s->m);
    while (!s->pending) pthread_cond_wait(&s->c, &s->m);
    s->pending--;
    pthread_mutex_unlock(&s->m);
    pid_t pid;
    if (posix_spawn(&pid, "/bin/true", &fa, &at, argv, environ) == 0 && s->cpu >= 0)
      sched_setaffinity(pid, sizeof s->all, &s->all);
  }
  return NULL;
}
spawner *make(int cpu, int null) {
  spawner *s = calloc(1, sizeof *s);
  pthread_mutex_init(&s->m, NULL); pthread_cond_init(&s->c, NULL);
  s->cpu = cpu; s->null = null; sched_getaffinity(0, sizeof s->all, &s->all);
  pthread_create(&s->t, NULL, loop, s);
  return s;
}
void submit(spawner *s) {
  pthread_mutex_lock(&s->m); s->pending++; pthread_cond_signal(&s->c); pthread_mutex_unlock(&s->m);
}
"""

#: the loop, run as ``python -c LOOP n jobs mode work_seconds [library]``
LOOP = r"""
import ctypes, os, queue, sys, threading, time
import herd.cli, herd.run.local
n, jobs, mode, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
null, env = os.open(os.devnull, os.O_RDWR), dict(os.environ)
cpus = sorted(os.sched_getaffinity(0))
pinned = mode.endswith("pinned")
if mode.startswith("c-"):
    lib = ctypes.PyDLL(sys.argv[5])
    lib.make.restype, lib.make.argtypes = ctypes.c_void_p, [ctypes.c_int, ctypes.c_int]
    lib.submit.argtypes = [ctypes.c_void_p]
    spawners = [lib.make(c, null) for c in cpus] if pinned else [lib.make(-1, null)]
    submits = [lambda s=s: lib.submit(s) for s in spawners]
elif mode.startswith("py-"):
    libc, held = ctypes.CDLL(None, use_errno=True), ctypes.PyDLL(None)
    attr = ctypes.create_string_buffer(1024)
    libc.posix_spawnattr_init(attr)
    libc.posix_spawnattr_setflags(attr, ctypes.c_short(0x80))  # POSIX_SPAWN_SETSID
    def strings(items):
        encoded = [s.encode() for s in items]
        return (ctypes.c_char_p * (len(encoded) + 1))(*encoded, None)
    def serve(q, cpu):
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        pid = ctypes.c_int(0)
        while True:
            args = q.get()
            if libc.posix_spawn(ctypes.byref(pid), b"/bin/true", args[0], attr, *args[1:]) == 0:
                if cpu is not None:
                    try:
                        os.sched_setaffinity(pid.value, cpus)
                    except OSError:  # it is over already
                        pass
    submits = []
    for cpu in (cpus if pinned else [None]):
        q = queue.SimpleQueue()
        threading.Thread(target=serve, args=(q, cpu), daemon=True).start()
        def submit(q=q):
            actions = ctypes.create_string_buffer(1024)
            held.posix_spawn_file_actions_init(actions)
            for fd in (0, 1, 2):
                held.posix_spawn_file_actions_adddup2(actions, null, fd)
            q.put((actions, strings(["true"]), strings([f"{k}={v}" for k, v in env.items()])))
        submits.append(submit)
else:
    actions = [(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)]
    submits = [lambda: os.posix_spawn("/bin/true", ["true"], env, file_actions=actions, setsid=True)]
def burn(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
running = started = done = 0
t0 = last = time.perf_counter()
while done < n:
    while running < jobs and started < n:
        burn(work / 2)
        submits[started % len(submits)]()
        burn(work / 2)
        running, started = running + 1, started + 1
    while True:
        try:
            os.wait()
            break
        except ChildProcessError:  # a thread has not started it yet
            if time.perf_counter() - last > 10:
                sys.exit(f"{mode}: no task started for 10 s")
            time.sleep(0)
    last = time.perf_counter()
    running, done = running - 1, done + 1
times = os.times()
print(n / (time.perf_counter() - t0), (times.user + times.system) / n)
"""


def build(folder: Path) -> tuple[Path | None, str]:
    """The C spawners as a shared library, or None and why not."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler (cc, gcc) on PATH"
    source, library = folder / "spawner.c", folder / "libspawner.so"
    source.write_text(C_SPAWNER)
    done = subprocess.run(
        [cc, "-O2", "-shared", "-fPIC", "-o", str(library), str(source), "-lpthread"],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        return None, f"{cc} failed: {done.stderr.strip().splitlines()[-1:]}"
    return library, ""


def run(mode: str, n: int, jobs: int, work: float, library: Path | None) -> tuple[float, float]:
    argv = [sys.executable, "-c", LOOP, str(n), str(jobs), mode, str(work)]
    if library is not None:
        argv.append(str(library))
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        print(f"bench/spawners.py: the {mode} loop failed: {why}", file=sys.stderr)
        sys.exit(2)
    out = done.stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-n", type=int, default=4000)
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("--work-us", type=float, default=300.0, help="Python CPU a task, µs")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    if args.n < 1 or args.j < 1:
        ap.error("-n and -j must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        library, why = build(Path(tmp))
        modes = [m for m in MODES if library is not None or not m.startswith("c-")]
        print(
            f"{args.n} x /bin/true, {args.j} in flight, {args.work_us:g} µs of Python a task;"
            f" load {os.getloadavg()[0]:.2f}" + (f"; C modes skipped: {why}" if why else "")
        )
        rates: dict[str, list[float]] = {m: [] for m in modes}
        for k in range(1, args.repeat + 1):
            for mode in modes:
                lib = library if mode.startswith("c-") else None
                rate, cpu = run(mode, args.n, args.j, args.work_us / 1e6, lib)
                rates[mode].append(rate)
                print(f"  repeat {k}  {mode:9s} {rate:6.0f} /s  CPU {cpu * 1e6:4.0f} µs a task")
        inline = statistics.median(rates["inline"])
        print("median, and over inline:")
        for mode in modes:
            med = statistics.median(rates[mode])
            print(f"  {mode:9s} {med:6.0f} /s  {med / inline:.2f}")


if __name__ == "__main__":
    main()
