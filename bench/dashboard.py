"""How fast the dashboard's pages open in a real browser (Debian's chromium, headless, driven by
Playwright): the time from navigation to the page drawn, and the longest stretch the page's main
thread was busy (a long one is a frozen page), as medians over a few loads.

    herd serve --store STORE --public-read --bind 127.0.0.1:8080 &
    python bench/dashboard.py http://127.0.0.1:8080 WORKFLOW [--repeat 5]

The figures are in docs/performance.md ("Dashboard"), with the load average at the time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import urllib.parse

from playwright.sync_api import Page, sync_playwright

LONGEST = """window.herdLongest = 0;
new PerformanceObserver((list) => { for (const e of list.getEntries())
  window.herdLongest = Math.max(window.herdLongest, e.duration); })
  .observe({ type: 'longtask', buffered: true });"""

#: each page, and what says it is drawn
PAGES = {
    "workflows": ("#/", "#workflows"),
    "graph": ("#/workflows/{w}/graph", "#graph[data-ready]"),
    "chart": ("#/workflows/{w}/chart", None),
    "failures": ("#/workflows/{w}/failures", "#failures, #no-failures"),
    "tasks": ("#/workflows/{w}/tasks", "#tasks tr[data-task]"),
}


def load(page: Page, url: str, ready: str | None) -> tuple[float, float]:
    started = time.perf_counter()
    page.goto(url)
    if ready is None:  # the chart: drawn on the frame after its option is set
        page.wait_for_function("() => window.herdChart", timeout=60_000)
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r()))")
    else:
        page.wait_for_selector(ready, timeout=60_000)
    took = time.perf_counter() - started
    page.wait_for_timeout(300)  # let a long task that is still running be counted
    return took, float(page.evaluate("() => window.herdLongest"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server")
    parser.add_argument("workflow")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    w = urllib.parse.quote(args.workflow)
    sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=sandbox)
        print(f"load average {os.getloadavg()[0]:.2f}; chromium {browser.version}")
        for name, (path, ready) in PAGES.items():
            times, longest = [], []
            for _ in range(args.repeat):
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.add_init_script(LONGEST)
                took, busy = load(page, f"{args.server}/{path.format(w=w)}", ready)
                times.append(took)
                longest.append(busy)
                if name == "graph":
                    drawn = page.evaluate("() => [window.herdGraph.nodes, window.herdGraph.drawMs]")
                page.close()
            extra = (
                f"  ({drawn[0]} nodes, layout+draw {drawn[1]:.0f} ms)" if name == "graph" else ""
            )
            print(
                f"{name:<10} drawn in {statistics.median(times):6.2f} s (median of {args.repeat}),"
                f" longest main-thread task {statistics.median(longest):5.0f} ms{extra}"
            )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.add_init_script(LONGEST)
        page.goto(f"{args.server}/#/workflows/{w}/graph")
        page.wait_for_selector("#graph[data-ready]", timeout=60_000)
        grouped = page.evaluate("() => [window.herdGraph.nodes, window.herdGraph.drawMs]")
        page.evaluate("() => { window.herdLongest = 0; }")
        started = time.perf_counter()
        page.click("#open-all")
        page.wait_for_function(f"() => window.herdGraph.nodes > {grouped[0]}", timeout=600_000)
        took = time.perf_counter() - started
        page.wait_for_timeout(300)
        every = page.evaluate("() => [window.herdGraph.nodes, window.herdGraph.drawMs]")
        print(
            f"all tasks  drawn in {took:6.2f} s ({every[0]} nodes, layout+draw {every[1]:.0f} ms,"
            f" longest main-thread task {page.evaluate('() => window.herdLongest'):.0f} ms)"
            f" — grouped: {grouped[0]} nodes in {grouped[1]:.0f} ms"
        )
        browser.close()
        print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
