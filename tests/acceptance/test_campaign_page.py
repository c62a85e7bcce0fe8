"""The dashboard's campaign page in a real browser (Debian's chromium driven by Playwright,
tests/browser.py) over a real ``herd serve`` and ``herd worker``: the runs x tasks matrix,
coloured by status, newest runs first; a click on a failed cell opens the task's attempts and
log; a run injected while the page is open appears without a reload."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests import browser
from tests.httpserver import Server, running

pytestmark = pytest.mark.slow

TEMPLATE = """
name: ecal
tasks:
  - name: reco
    cmd: "if [ {run} = 2 ]; then echo 'boom: no calorimeter data for run {run}' >&2; exit 4; fi"
  - {name: calib, group_by: fill, needs: [reco], cmd: 'echo {runs}'}
  - {name: plots, run_types: [collisions], needs: [reco], cmd: 'echo {run}'}
"""
RUNS = [
    {"run": 1, "fill": 7, "run_type": "collisions"},
    {"run": 2, "fill": 7, "run_type": "collisions"},
    {"run": 3, "fill": 8, "run_type": "cosmics"},
]
#: milliseconds the page may take to show what the store holds (the machine is shared)
LIVE = 30_000


def herd(cwd: Path, store: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "herd.cli", *args, "--store", store],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, Path, str]]:
    store = str(tmp_path / ".herd" / "herd.db")
    (tmp_path / "ecal.yaml").write_text(TEMPLATE)
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RUNS))
    herd(tmp_path, store, "campaign", "create", "prompt", "--template", "ecal.yaml")
    herd(tmp_path, store, "campaign", "add-runs", "prompt", "runs.jsonl")
    herd(tmp_path, store, "worker", "--idle-exit", "1", "--cpus", "2", "--mem", "1000")
    with running(store, tmp_path, "--public-read") as srv:
        yield srv, tmp_path, store


@pytest.fixture
def page() -> Iterator[Page]:
    with browser.chromium() as b:
        opened = b.new_context(viewport={"width": 1400, "height": 900}).new_page()
        errors: list[str] = []
        opened.on("pageerror", lambda e: errors.append(str(e)))
        yield opened
        assert not errors, f"the page raised: {errors}"


def cell(run: int, task: str) -> str:
    return f"#matrix td[data-run='{run}'][data-task='{task}']"


def test_the_matrix_coloured_newest_first_and_a_click_to_the_log(
    served: tuple[Server, Path, str], page: Page, tmp_path: Path
) -> None:
    srv, root, store = served
    page.goto(srv.url + "/#/campaigns")
    page.click("#campaigns tr[data-campaign='prompt'] a")
    page.wait_for_selector("#matrix[data-ready]")
    runs = page.eval_on_selector_all("#matrix tr[data-run]", "rows => rows.map(r => r.dataset.run)")
    assert runs == ["3", "2", "1"]  # newest first
    statuses = page.eval_on_selector_all(
        "#matrix td.cell",
        "cells => cells.map(c => [c.dataset.run, c.dataset.task, c.dataset.status])",
    )
    assert sorted(map(tuple, statuses)) == sorted(
        [
            ("1", "reco", "done"), ("1", "calib", "failed"), ("1", "plots", "done"),
            ("2", "reco", "failed"), ("2", "calib", "merged"), ("2", "plots", "failed"),
            ("3", "reco", "done"), ("3", "calib", "new"), ("3", "plots", "skipped"),
        ]
    )  # fmt: skip
    colour = "el => getComputedStyle(el).backgroundColor"
    failed = page.eval_on_selector(cell(2, "reco"), colour)
    done = page.eval_on_selector(cell(1, "reco"), colour)
    assert (
        failed == "rgb(255, 135, 135)" and done == "rgb(140, 233, 154)"
    )  # app.css --failed, --succeeded
    page.screenshot(path=str(tmp_path / "campaign.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'campaign.png'}")

    page.click(cell(2, "reco"))  # a real click: the task's panel, its attempts and log
    page.wait_for_selector("#panel .exit-code")
    assert page.inner_text("#panel .exit-code") == "4"
    assert "boom: no calorimeter data for run 2" in page.inner_text("#panel pre.log-stderr")
    assert "exit 4" in page.inner_text("#panel table.attempts")

    # a run injected while the page is open appears without a reload
    herd(root, store, "campaign", "add-runs", "prompt", "--run", "9", "--field", "fill=9",
         "--field", "run_type=collisions")  # fmt: skip
    page.wait_for_selector(cell(9, "reco"), timeout=LIVE)
    first = page.eval_on_selector("#matrix tr[data-run]", "r => r.dataset.run")
    assert first == "9"
    assert page.get_attribute(cell(3, "calib"), "data-status") == "new"
