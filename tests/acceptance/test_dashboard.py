"""The dashboard in a real browser: ``herd serve`` (uvicorn, a subprocess on a loopback port), a
``herd worker`` on the same store, Debian's chromium driven by Playwright (tests/browser.py).

A workflow is submitted into the served store; the page, opened before the worker starts, turns its
tasks green from the event stream alone (no reload); a click on the failed task in the DAG opens
its panel with the exit code and the tail of its log. Screenshots go to the test's tmp folder (the
path is printed). The O2DPG workflow of 1,406 tasks must open grouped by stage within a bound.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests import browser
from tests.httpserver import Server, call, running

pytestmark = pytest.mark.slow

SPEC = """\
name: board
limits: {cpu: 2}
tasks:
  - name: prep
    cmd: sleep 0.3
  - name: sim_{i}
    foreach: {i: "1:4"}
    needs: [prep]
    cmd: sleep 0.2
  - name: broken
    needs: [prep]
    cmd: "echo 'boom: the detector is on fire' >&2; exit 3"
  - name: merge
    needs: ["sim_{i}", broken]
    cmd: "true"
"""

#: seconds the page may take to show what the store holds (events come every 0.5 s, redraws at
#: most once a second; the machine is shared)
LIVE = 30_000
#: the O2DPG page must be drawn within this many seconds
O2DPG_BOUND = 30.0

STATE = """name => {
  const g = window.herdGraph;
  const n = g && g.cy.nodes().filter((n) => n.data('name') === name);
  return n && n.length ? n.data('state') : null;
}"""


def herd(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "herd.cli", *args], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """A server over a new SQLite store (reads public), and the store."""
    store = str(tmp_path / ".herd" / "herd.db")
    with running(store, tmp_path, "--public-read") as srv:
        yield srv, store


@pytest.fixture
def page() -> Iterator[Page]:
    with browser.chromium() as b:
        context = b.new_context(viewport={"width": 1400, "height": 900})
        opened = context.new_page()
        errors: list[str] = []
        opened.on("pageerror", lambda e: errors.append(str(e)))
        yield opened
        assert not errors, f"the page raised: {errors}"


def submit(srv: Server, store: str, spec: Path) -> dict[str, Any]:
    """``herd submit`` into the server's store (tokens, and so submissions through the API, are
    not there yet); what the API says of the workflow."""
    out = herd("submit", str(spec), "--store", store, "-C", str(srv.log.parent), timeout=120)
    name = out.split("'")[1]  # herd: submitted 'NAME' (workflow 1, run #1): ...
    answer = call("GET", f"{srv.api}/workflows/{name}")
    assert answer.status == 200, answer.body
    assert isinstance(answer.body, dict)
    return answer.body


def click_node(page: Page, name: str) -> None:
    """A real mouse click on the node of task (or stage) ``name``, centred first."""
    x, y = page.evaluate(
        """name => {
          const cy = window.herdGraph.cy;
          const n = cy.nodes().filter((n) => n.data('name') === name || n.data('stage') === name)[0];
          cy.center(n);
          const p = n.renderedPosition();
          return [p.x, p.y];
        }""",
        name,
    )
    box = page.locator("#graph").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x, box["y"] + y)


def test_tasks_turn_green_live_and_a_failure_shows_its_log(
    server: tuple[Server, str], page: Page, tmp_path: Path
) -> None:
    srv, store = server
    page.goto(srv.url + "/")
    page.wait_for_selector("text=No workflow yet")
    spec = tmp_path / "board.yaml"
    spec.write_text(SPEC)
    submit(srv, store, spec)
    # the list follows the event stream: the new workflow appears without a reload
    page.wait_for_selector("#workflows tr[data-workflow='board']", timeout=LIVE)

    page.click("#workflows tr[data-workflow='board'] a")
    page.wait_for_selector("#graph[data-ready]")
    assert page.evaluate(STATE, "prep") == "ready"
    assert page.evaluate(STATE, "sim_1") == "waiting"

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "herd.cli",
            "worker",
            "--store",
            store,
            "-C",
            str(tmp_path),
            "--cpus",
            "2",
            "--idle-exit",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for name in ("prep", "sim_1", "sim_2", "sim_3", "sim_4"):
            page.wait_for_function(f"() => ({STATE})('{name}') === 'succeeded'", timeout=LIVE)
        page.wait_for_function(f"() => ({STATE})('broken') === 'failed'", timeout=LIVE)
        page.wait_for_function(f"() => ({STATE})('merge') === 'cancelled'", timeout=LIVE)
    finally:
        assert worker.wait(60) == 0
    green = page.evaluate(
        "() => window.herdGraph.cy.nodes().filter((n) => n.data('name') === 'sim_1')"
        ".style('background-color')"
    )
    assert green == "rgb(140,233,154)"  # --succeeded in app.css

    click_node(page, "broken")
    page.wait_for_selector("#panel pre.log-stderr")
    assert "boom: the detector is on fire" in page.inner_text("#panel pre.log-stderr")
    assert page.inner_text("#panel dd.exit-code") == "3"
    shot = tmp_path / "dashboard-graph.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")

    page.goto(srv.url + "/#/workflows/board/chart")
    page.wait_for_function("() => window.herdChart && window.herdChart.bars >= 6")
    page.screenshot(path=str(tmp_path / "dashboard-chart.png"))

    page.goto(srv.url + "/#/workflows/board/failures")
    row = page.locator("#failures tr[data-task='broken']")
    assert "exit 3" in row.inner_text()

    page.goto(srv.url + "/#/workers")
    page.wait_for_selector("#workers tr[data-worker]")
    assert page.locator("#workers td.held").first.inner_text() == "0"
    print(f"screenshots: {tmp_path}")


def test_o2dpg_1400_tasks_open_grouped_without_freezing(
    server: tuple[Server, str], page: Page, shared_data: Path, tmp_path: Path
) -> None:
    srv, store = server
    done = submit(srv, store, shared_data / "o2dpg" / "o2dpg_pp_20tf_qc_ana.json")
    assert done["tasks"] > 1400
    # the longest time the page's main thread was busy in one go (a frozen page: a long one)
    page.add_init_script(
        """window.herdLongest = 0;
        new PerformanceObserver((list) => { for (const e of list.getEntries())
          window.herdLongest = Math.max(window.herdLongest, e.duration); })
          .observe({ type: 'longtask', buffered: true });"""
    )
    started = time.perf_counter()
    page.goto(srv.url + f"/#/workflows/{done['name']}/graph")
    page.wait_for_selector("#graph[data-ready]", timeout=O2DPG_BOUND * 1000)
    took = time.perf_counter() - started
    drawn = page.evaluate(
        "() => ({nodes: window.herdGraph.nodes, drawMs: window.herdGraph.drawMs})"
    )
    assert drawn["nodes"] < 200, drawn  # grouped by stage, not 1,406 nodes
    # the page still answers at once, and a stage opens into its 20 tasks on a click
    click_node(page, "tpcdigi")
    page.wait_for_function(f"() => window.herdGraph.nodes > {drawn['nodes']}")
    opened = page.evaluate("() => window.herdGraph.nodes")
    assert opened == drawn["nodes"] - 1 + 20
    longest = page.evaluate("() => window.herdLongest")
    page.screenshot(path=str(tmp_path / "dashboard-o2dpg.png"))
    print(
        f"\nO2DPG {done['tasks']} tasks: page drawn in {took:.2f} s (graph {drawn['drawMs']:.0f}"
        f" ms, {drawn['nodes']} nodes), longest main-thread task {longest:.0f} ms; {tmp_path}"
    )
    assert took < O2DPG_BOUND
    page.goto(srv.url + f"/#/workflows/{done['name']}/tasks")
    page.wait_for_selector("#tasks tr[data-task]")
    assert page.locator("#tasks tr[data-task]").count() == 100  # a page, not 1,406 rows


def test_the_page_follows_a_server_that_restarts(tmp_path: Path, page: Page) -> None:
    """The server goes away while the page is open: the page says so (``polling``), keeps what it
    showed, and once the server is back it reconnects and catches up on what changed meanwhile."""
    store = str(tmp_path / ".herd" / "herd.db")
    spec = tmp_path / "board.yaml"
    spec.write_text(SPEC)
    with running(store, tmp_path, "--public-read") as srv:
        submit(srv, store, spec)
        page.goto(srv.url + "/#/workflows/board/graph")
        page.wait_for_selector("#graph[data-ready]")
        page.wait_for_selector("#live.on", timeout=LIVE)
    page.wait_for_selector("#live.off", timeout=LIVE)
    assert page.evaluate(STATE, "sim_1") == "waiting"
    herd("worker", "--store", store, "-C", str(tmp_path), "--cpus", "2", "--idle-exit", "1")
    port = int(srv.url.rsplit(":", 1)[1])
    with running(store, tmp_path, "--public-read", port=port):
        page.wait_for_selector("#live.on", timeout=LIVE)
        page.wait_for_function(f"() => ({STATE})('sim_1') === 'succeeded'", timeout=LIVE)
        page.wait_for_function(f"() => ({STATE})('broken') === 'failed'", timeout=LIVE)
