"""The progress display: redrawn in place on a terminal, plain lines elsewhere."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

SPEC = {
    "name": "live",
    "tasks": [{"name": f"t{i}", "cmd": "sleep 0.4", "resources": {"cpu": 1}} for i in range(6)],
}


def test_live_display_on_a_terminal(tmp_path: Path) -> None:
    spec = tmp_path / "wf.json"
    spec.write_text(json.dumps(SPEC))
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "herd.cli", "run", str(spec), "--cpu-limit", "2"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        cwd=tmp_path,
        close_fds=True,
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # EIO: the terminal closed with the process
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=60) == 0
    os.close(controller)
    screen = b"".join(chunks).decode(errors="replace")
    assert "\x1b[" in screen  # redrawn in place
    assert "elapsed" in screen and "cpu " in screen and "running t" in screen
    assert "eta " in screen
    assert "run succeeded" in screen


def test_plain_lines_when_not_a_terminal(tmp_path: Path) -> None:
    spec = tmp_path / "wf.json"
    spec.write_text(json.dumps(SPEC))
    r = subprocess.run(
        [sys.executable, "-m", "herd.cli", "run", str(spec), "--cpu-limit", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0
    assert "\x1b" not in r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "herd: workflow 'live': 6 task(s) to run, 0 done before"
    assert sum(" succeeded t" in line for line in lines) == 6
    assert lines[-1].startswith("herd: run succeeded in ")
