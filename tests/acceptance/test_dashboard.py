"""The dashboard in a real browser, the way a remote site and a person meet it: ``herd serve``
(uvicorn, a subprocess on a loopback port) that wants a token for every request, on SQLite and on
PostgreSQL; Debian's chromium driven by Playwright (tests/browser.py); tokens made with ``herd
token create``.

A page without a token asks for one (never a blank page); opened once with ``?token=`` (a ``read``
token) it keeps the token and takes it out of the address bar. A workflow is submitted through
the API (``POST /workflows`` with a ``submit`` token) and run by ``herd worker --server URL --token
T`` (a ``worker`` token): the page, opened before the worker starts, turns the tasks green from the
event stream alone (no reload); the workers view shows the worker holding the task it runs while
its heartbeats keep the lease past its length; with the log files gone (as on a site that shares no
disk with the server), a click on the failed task in the DAG shows its exit code and the tail of
its log that the worker sent with its finish. Screenshots go to the test's tmp folder (the path is
printed with ``pytest -s``). The O2DPG workflow of 1,406 tasks, submitted through the API, must open
grouped by stage within a bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests import browser
from tests.httpserver import Server, call, running, store_for, token

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
  - name: hold
    needs: [prep]
    cmd: "while [ ! -e release ]; do sleep 0.1; done"
  - name: merge
    needs: ["sim_{i}", broken]
    cmd: "true"
"""

#: milliseconds the page may take to show what the store holds (events come every 0.5 s, redraws
#: at most once a second; the machine is shared)
LIVE = 30_000
#: the O2DPG page must be drawn within this many seconds
O2DPG_BOUND = 30.0
#: nor keep the page's main thread busy in one go for this many ms: drawn by stage it took
#: 0.2-0.4 s at load 10-13, every task at once 10 s (docs/performance.md, "The dashboard")
FROZEN_MS = 4000
#: the HTTP worker's lease, seconds: ``hold`` runs for two of them on heartbeats alone (one
#: heartbeat every third of it; a starved worker may miss one under the suite's load)
LEASE = 2.5

STATE = """name => {
  const g = window.herdGraph;
  const n = g && g.cy.nodes().filter((n) => n.data('name') === name);
  return n && n.length ? n.data('state') : null;
}"""


@dataclass(frozen=True)
class Site:
    """A served store, where its workflows run, and a token of each scope a user hands out."""

    server: Server
    store: str
    workdir: Path
    read: str
    submit: str
    worker: str

    def get(self, path: str) -> Any:
        answer = call("GET", self.server.api + path, token=self.read)
        assert answer.status == 200, answer.body
        return answer.body

    def post(self, spec: bytes, filename: str) -> dict[str, Any]:
        """Submit ``spec`` through the API; what the API then says of the workflow."""
        url = f"{self.server.api}/workflows?filename={filename}"
        made = call("POST", url, token=self.submit, body=spec, timeout=120)
        assert made.status == 201, made.body
        found: dict[str, Any] = self.get(f"/workflows/{made.body['workflow']}")
        return found


@contextlib.contextmanager
def site_on(store: str, workdir: Path, port: int | None = None) -> Iterator[Site]:
    """``herd serve`` over ``store`` wanting tokens (no ``--public-read``), and its tokens (made
    once per store: a restarted server on ``port`` knows them)."""
    made = {s: token(store, workdir, s) for s in ("read", "submit", "worker")}
    with running(store, workdir, port=port) as server:
        yield Site(server, store, workdir, **made)


@pytest.fixture(params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    with contextlib.ExitStack() as stack:
        store = store_for(request, tmp_path, stack)
        yield stack.enter_context(site_on(store, tmp_path))


@pytest.fixture
def sqlite_site(tmp_path: Path) -> Iterator[Site]:
    with site_on(str(tmp_path / ".herd" / "herd.db"), tmp_path) as made:
        yield made


@pytest.fixture
def page() -> Iterator[Page]:
    with browser.chromium() as b:
        context = b.new_context(viewport={"width": 1400, "height": 900})
        opened = context.new_page()
        errors: list[str] = []
        opened.on("pageerror", lambda e: errors.append(str(e)))
        yield opened
        assert not errors, f"the page raised: {errors}"


def http_worker(site: Site, folder: Path, *args: str) -> subprocess.Popen[str]:
    """``herd worker --server URL --token T`` started in ``folder``, knowing no store."""
    folder.mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "herd.cli", "worker", "--server", site.server.url]
    argv += ["--token", site.worker, *args]
    out = (folder / "worker.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "HERD_STORE"}
    with out:
        return subprocess.Popen(argv, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)


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


def json_behind(page: Page) -> Any:
    """The document the view's JSON link opens in a new tab (the page fetches it with the token
    it keeps, which a plain link would not send, and shows it from a ``blob:``)."""
    with page.context.expect_page() as opened:
        page.click("a.json")
    shown = opened.value
    try:
        shown.wait_for_selector("pre")
        assert shown.url.startswith("blob:"), shown.url
        return json.loads(shown.inner_text("pre"))
    finally:
        shown.close()


def await_state(page: Page, task: str, state: str) -> None:
    page.wait_for_function(f"() => ({STATE})('{task}') === '{state}'", timeout=LIVE)


def test_submitted_through_the_api_run_over_http_and_watched_live(
    site: Site, page: Page, tmp_path: Path
) -> None:
    srv = site.server
    # no token: the page says what it needs and how to get it, rather than a blank page
    page.goto(srv.url + "/")
    prompt = page.wait_for_selector("#token-prompt")
    assert prompt is not None and "herd token create --scope read" in prompt.inner_text()
    assert page.inner_text("#live") == "no token"
    page.screenshot(path=str(tmp_path / "dashboard-no-token.png"))
    # given once in the address: kept by the browser, taken out of the address bar
    page.goto(srv.url + f"/?token={site.read}")
    page.wait_for_selector("text=No workflow yet")
    assert "token" not in page.url
    assert page.evaluate("() => localStorage.getItem('herd-token')") == site.read
    page.wait_for_selector("#live.on", timeout=LIVE)

    made = site.post(SPEC.encode(), "board.yaml")
    assert made["tasks"] == 8 and made["counts"]["ready"] == 1
    # the list follows the event stream: the new workflow appears without a reload
    page.wait_for_selector("#workflows tr[data-workflow='board']", timeout=LIVE)
    page.click("#workflows tr[data-workflow='board'] a")
    page.wait_for_selector("#graph[data-ready]")
    assert page.evaluate(STATE, "prep") == "ready"
    assert page.evaluate(STATE, "sim_1") == "waiting"

    remote = tmp_path / "site"
    worker = http_worker(site, remote, "--cpus", "2", "--lease", str(LEASE), "--idle-exit", "5")
    try:
        for name in ("prep", "sim_1", "sim_2", "sim_3", "sim_4"):
            await_state(page, name, "succeeded")
        await_state(page, "broken", "failed")
        await_state(page, "merge", "cancelled")
        await_state(page, "hold", "running")
        # hold outlives its lease twice over: only the worker's heartbeats keep it
        (attempt,) = site.get("/workflows/board/tasks/hold/attempts")["items"]
        time.sleep(max(0.0, attempt["start"] + 2 * LEASE - time.time()))
        page.goto(srv.url + "/#/workers")
        held = page.locator("#workers tr[data-worker] td.held")
        page.wait_for_function(
            "() => document.querySelector('#workers td.held')?.textContent === '1'", timeout=LIVE
        )
        assert held.count() == 1
        page.screenshot(path=str(tmp_path / "dashboard-workers.png"))
        (seen,) = site.get("/workers")["items"]
        assert seen["held"] == 1 and seen["heartbeat"] > attempt["start"] + LEASE, seen
        (still,) = site.get("/workflows/board/tasks/hold/attempts")["items"]
        assert still["state"] == "running" and still["end"] is None, still
        (site.workdir / "release").touch()
        assert worker.wait(60) == 0, (remote / "worker.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    said = (remote / "worker.log").read_text()
    assert "the workflows it serves are finished" in said and ", 0 lost" in said, said
    assert [a["state"] for a in site.get("/workflows/board/tasks/hold/attempts")["items"]] == [
        "succeeded"
    ]
    # the server's host does not hold the task's logs (a site that shares no disk with it)
    shutil.rmtree(site.workdir / ".herd" / "logs")

    page.goto(srv.url + "/#/workflows/board/graph")
    page.wait_for_selector("#graph[data-ready]")
    await_state(page, "hold", "succeeded")
    green = page.evaluate(
        "() => window.herdGraph.cy.nodes().filter((n) => n.data('name') === 'sim_1')"
        ".style('background-color')"
    )
    assert green == "rgb(140,233,154)"  # --succeeded in app.css
    click_node(page, "broken")
    page.wait_for_selector("#panel pre.log-stderr")
    assert "boom: the detector is on fire" in page.inner_text("#panel pre.log-stderr")
    assert page.inner_text("#panel dd.exit-code") == "3"
    page.screenshot(path=str(tmp_path / "dashboard-graph.png"), full_page=True)
    # each view's JSON, opened from its link: the same document a script gets with the token
    page.keyboard.press("Escape")
    assert json_behind(page) == site.get("/workflows/board/graph")

    page.goto(srv.url + "/#/workflows/board/chart")
    page.wait_for_function("() => window.herdChart && window.herdChart.bars >= 7")
    used = page.evaluate(
        "() => window.herdChart.chart.getOption().series"
        ".filter((s) => s.name.endsWith('used')).map((s) => Math.max(...s.data.map((p) => p[1])))"
    )
    assert len(used) == 2 and all(v > 0 for v in used), used  # cores, memory
    assert json_behind(page) == site.get("/workflows/board/chart")
    page.screenshot(path=str(tmp_path / "dashboard-chart.png"))

    page.goto(srv.url + "/#/workflows/board/failures")
    row = page.locator("#failures tr[data-task='broken']")
    assert "exit 3" in row.inner_text()
    page.click("#failures details summary")
    stored = page.locator("#failures pre.log-stored")
    assert "boom: the detector is on fire" in stored.inner_text()
    assert f"stored by the worker on {attempt['host']}" in page.inner_text("#failures summary")
    page.screenshot(path=str(tmp_path / "dashboard-failures.png"))
    assert json_behind(page) == site.get("/workflows/board/analyze")

    page.goto(srv.url + "/#/workers")
    page.wait_for_selector("#workers tr[data-worker] .w-stopped")
    assert page.locator("#workers td.held").first.inner_text() == "0"
    assert json_behind(page) == site.get("/workers")

    # retry the failed through the API: the page shows them queued again, live
    page.goto(srv.url + "/#/workflows/board/graph")
    page.wait_for_selector("#graph[data-ready]")
    again = call("POST", srv.api + "/workflows/board/retry", token=site.submit)
    assert again.status == 200 and again.body["queued"] == 2, again.body
    await_state(page, "broken", "ready")
    await_state(page, "merge", "waiting")
    assert page.evaluate(STATE, "sim_1") == "succeeded"
    print(f"\nscreenshots: {tmp_path}")


def test_a_refused_token_is_said_and_another_can_be_given(
    sqlite_site: Site, page: Page, tmp_path: Path
) -> None:
    site = sqlite_site
    revoked = token(site.store, site.workdir, "read")
    herd = [sys.executable, "-m", "herd.cli", "token", "revoke", revoked.split("_")[1]]
    done = subprocess.run([*herd, "--store", site.store], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    page.goto(site.server.url + f"/?token={revoked}#/workers")
    prompt = page.wait_for_selector("#token-prompt")
    assert prompt is not None
    said = prompt.inner_text()
    assert "refused this browser's token" in said and "expired or revoked" in said, said
    page.screenshot(path=str(tmp_path / "dashboard-refused.png"))
    page.fill("#token", site.read)
    page.click("text=Use this token")
    page.wait_for_selector("text=No worker has claimed", timeout=LIVE)
    page.wait_for_selector("#live.on", timeout=LIVE)
    assert page.evaluate("() => localStorage.getItem('herd-token')") == site.read


def test_o2dpg_1400_tasks_open_grouped_without_freezing(
    sqlite_site: Site, page: Page, shared_data: Path, tmp_path: Path
) -> None:
    site, srv = sqlite_site, sqlite_site.server
    spec = shared_data / "o2dpg" / "o2dpg_pp_20tf_qc_ana.json"
    done = site.post(spec.read_bytes(), spec.name)  # an O2DPG workflow.json, as it is
    assert done["format"] == "o2dpg" and done["tasks"] > 1400
    # the longest time the page's main thread was busy in one go (a frozen page: a long one)
    page.add_init_script(
        """window.herdLongest = 0;
        new PerformanceObserver((list) => { for (const e of list.getEntries())
          window.herdLongest = Math.max(window.herdLongest, e.duration); })
          .observe({ type: 'longtask', buffered: true });"""
    )
    started = time.perf_counter()
    page.goto(srv.url + f"/?token={site.read}#/workflows/{done['name']}/graph")
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
    assert took < O2DPG_BOUND and longest < FROZEN_MS
    page.goto(srv.url + f"/#/workflows/{done['name']}/tasks")
    page.wait_for_selector("#tasks tr[data-task]")
    assert page.locator("#tasks tr[data-task]").count() == 100  # a page, not 1,406 rows


def test_the_page_follows_a_server_that_restarts(tmp_path: Path, page: Page) -> None:
    """The server goes away while the page is open: the page says so (``polling``), keeps what it
    showed, and once the server is back it reconnects (with the token it keeps) and catches up on
    what changed meanwhile."""
    store = str(tmp_path / ".herd" / "herd.db")
    with site_on(store, tmp_path) as site:
        site.post(SPEC.replace("while [ ! -e release ]; do sleep 0.1; done", "true").encode(), "b")
        page.goto(site.server.url + f"/?token={site.read}#/workflows/board/graph")
        page.wait_for_selector("#graph[data-ready]")
        page.wait_for_selector("#live.on", timeout=LIVE)
    page.wait_for_selector("#live.off", timeout=LIVE)
    assert page.evaluate(STATE, "sim_1") == "waiting"
    worker = [sys.executable, "-m", "herd.cli", "worker", "--store", store, "-C", str(tmp_path)]
    ran = subprocess.run(
        [*worker, "--cpus", "2", "--idle-exit", "1"], capture_output=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    port = int(site.server.url.rsplit(":", 1)[1])
    with running(store, tmp_path, port=port):
        page.wait_for_selector("#live.on", timeout=LIVE)
        await_state(page, "sim_1", "succeeded")
        await_state(page, "broken", "failed")
