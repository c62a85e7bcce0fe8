"""``herd plot``: a Gantt chart of a run with the CPU and memory it used, as PNG, SVG or HTML.

The chart has three panels on one time axis (seconds, minutes or hours from the run's start):

1. **Gantt**: one bar per attempt, from its start to its end, coloured by the task's first label
   (by the task name without its trailing number when no task has labels; past
   :data:`MAX_GROUPS` colours the smallest groups share a grey ``(other)``). Failed attempts are
   hatched with a red edge; retries are separate bars. Up to :data:`MAX_ROWS` tasks get one row
   each; beyond that attempts are packed into *lanes* (each attempt takes the lowest lane free at
   its start, as on a cluster's Gantt), so hundreds of tasks stay readable.
2. **CPU**: cores in use, summed over attempts; 3. **memory**: GB in use. For an attempt with
   monitoring samples, each sample's CPU holds from the previous sample (or the start) to it, and
   its RSS likewise; the last sample's values hold to the end. An attempt without samples (it ended
   before the first one) counts its declared ``cpu`` and ``mem`` over its whole duration. A dotted
   line shows what the attempts were *allocated* (their declared resources, which the scheduler
   keeps within the limits), and the run's limits are dashed lines.

:func:`chart_from_store` builds the chart of a recorded run; :func:`chart_from_schedule` that of a
schedule written by ``herd simulate --schedule`` (no samples there: declared resources). :func:`save`
writes it, choosing the format from the file's extension: ``.png`` or ``.svg`` through matplotlib
(imported only here, with no global backend change), ``.html`` as one self-contained file (the SVG
inline and a per-group table; nothing is fetched from elsewhere).
"""

from __future__ import annotations

import heapq
import html
import io
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herd.core.model import TaskState, Workflow
from herd.errors import HerdError, NotFoundError, UsageError
from herd.reports.stats import fmt_seconds, task_labels, workflow_record
from herd.store.base import AttemptRecord, RunRecord, Sample, Store

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: more tasks than this are packed into lanes instead of one row each
MAX_ROWS = 60
#: colours in the legend; smaller groups share "(other)"
MAX_GROUPS = 16
OTHER = "(other)"
_GREY = (0.62, 0.62, 0.62)
#: the tab20 pairs used for groups (each strong shade, then its light one)
_HUES = (0, 2, 4, 8, 10, 12, 16, 18)
FORMATS = (".png", ".svg", ".html")

_STEM = re.compile(r"[_\-.:]*(?:id)?\d+$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Bar:
    """One attempt on the chart; times in seconds from the chart's origin."""

    task: str
    attempt: int
    start: float
    end: float
    group: str
    failed: bool
    row: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    """A step function: ``cpu[i]`` cores and ``mem[i]`` bytes in use from ``times[i]`` on."""

    times: tuple[float, ...] = ()
    cpu: tuple[float, ...] = ()
    mem: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Chart:
    """Everything drawn: bars with their rows, the usage curves and the limits."""

    title: str
    bars: tuple[Bar, ...]
    rows: tuple[str, ...]  # row names, bottom to top: task names, or "lane N"
    lanes: bool
    usage: Usage
    #: what the attempts were given (declared resources); None when ``usage`` is that already
    allocated: Usage | None = None
    #: ``cpu`` in cores, ``mem`` in MB (as run limits are given)
    limits: Mapping[str, float] = field(default_factory=dict)
    #: what the colours mean: ``label`` or ``task``
    legend_title: str = "label"


def to_json(chart: Chart) -> dict[str, Any]:
    """The chart as JSON-ready data (the dashboard draws it): every field of :class:`Chart`;
    times in seconds from the run's start, memory in bytes, limits as runs give them."""
    return asdict(chart)


# --- building the chart ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Interval:
    """An attempt's use of cores and memory (bytes) over [start, end]."""

    start: float
    end: float
    cpu: float
    mem: float


def chart_from_store(
    store: Store,
    workflow_id: int,
    *,
    run_id: int | None = None,
    spec: Workflow | None = None,
    now: float | None = None,
) -> Chart:
    """The chart of run ``run_id`` of the workflow (default: its last run)."""
    wf = workflow_record(store, workflow_id)
    run = _pick_run(store.runs(workflow_id), run_id, wf.name)
    attempts = [a for a in store.attempts(workflow_id) if a.run_id == run.id]
    end_now = time.time() if now is None else now  # for attempts still running
    t0 = run.started
    groups, title = _groups(task_labels(store, wf, spec), [a.task for a in attempts])
    bars = [
        Bar(
            a.task,
            a.number,
            a.start - t0,
            (a.end if a.end is not None else end_now) - t0,
            groups[a.task],
            a.state is TaskState.FAILED,
        )
        for a in attempts
    ]
    intervals = [
        iv
        for a in attempts
        for iv in _attempt_intervals(a, store.samples(workflow_id, a.task, a.number), end_now)
    ]
    given = [_declared(a, end_now) for a in attempts]
    header = f"{wf.name}: run {run.id} ({run.status}) on {run.host}"
    return _chart(header, bars, intervals, t0, dict(run.limits), title, given)


def _pick_run(runs: Sequence[RunRecord], run_id: int | None, name: str) -> RunRecord:
    if not runs:
        raise UsageError(f"workflow '{name}' has never run: nothing to plot")
    if run_id is None:
        return runs[-1]
    for r in runs:
        if r.id == run_id:
            return r
    known = ", ".join(str(r.id) for r in runs)
    raise NotFoundError(f"workflow '{name}' has no run {run_id} (its runs: {known})")


def _attempt_intervals(a: AttemptRecord, samples: Sequence[Sample], now: float) -> list[_Interval]:
    end = a.end if a.end is not None else now
    if not samples:
        return [_declared(a, now)]
    out, prev = [], a.start
    for s in samples:
        out.append(_Interval(prev, s.time, s.cpu, float(s.rss)))
        prev = s.time
    last = samples[-1]
    out.append(_Interval(prev, max(prev, end), last.cpu, float(last.rss)))
    return out


def _declared(a: AttemptRecord, now: float) -> _Interval:
    """What the attempt was given, over its whole duration (``mem`` is MB)."""
    end = a.end if a.end is not None else now
    return _Interval(
        a.start, end, float(a.resources.get("cpu", 0.0)), float(a.resources.get("mem", 0.0)) * 1e6
    )


def load_schedule(path: str | Path) -> dict[str, Any]:
    """The JSON ``herd simulate --schedule OUT.json`` wrote; a UsageError when it is not one."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"cannot read schedule {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UsageError(
            f"{path} is not JSON ({exc}): write it with `herd simulate --schedule`"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("schedule"), list):
        raise UsageError(f"{path} has no 'schedule' list: write it with `herd simulate --schedule`")
    return data


def chart_from_schedule(data: Mapping[str, Any], *, spec: Workflow | None = None) -> Chart:
    """The chart of a simulated schedule (``{"workflow", "schedule": [{task, start, end,
    resources}]}``); ``spec`` gives the task labels."""
    try:
        slots = [
            (str(s["task"]), float(s["start"]), float(s["end"]), dict(s.get("resources") or {}))
            for s in data["schedule"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"a schedule entry lacks task, start or end ({exc})") from exc
    labels = {t.name: t.labels for t in spec.tasks if t.labels} if spec else {}
    groups, title = _groups(labels, [s[0] for s in slots])
    bars = [Bar(t, 1, s, e, groups[t], False) for t, s, e, _ in slots]
    intervals = [
        _Interval(s, e, float(r.get("cpu", 0.0)), float(r.get("mem", 0.0)) * 1e6)
        for _, s, e, r in slots
    ]
    limits = {k: float(v) for k, v in (data.get("limits") or {}).items()}
    header = f"{data.get('workflow', 'workflow')}: simulated schedule"
    return _chart(header, bars, intervals, 0.0, limits, title)


def _chart(
    header: str,
    bars: list[Bar],
    intervals: Iterable[_Interval],
    t0: float,
    limits: dict[str, float],
    legend_title: str,
    allocated: Iterable[_Interval] | None = None,
) -> Chart:
    usage = usage_curve(_shift(intervals, t0))
    given = usage_curve(_shift(allocated, t0)) if allocated is not None else None
    placed, rows, lanes = place(bars)
    title = f"{header}: {len({b.task for b in bars})} tasks, {len(bars)} attempts"
    return Chart(title, tuple(placed), tuple(rows), lanes, usage, given, limits, legend_title)


def _shift(intervals: Iterable[_Interval], t0: float) -> list[_Interval]:
    return [_Interval(i.start - t0, i.end - t0, i.cpu, i.mem) for i in intervals]


def _groups(
    labels: Mapping[str, tuple[str, ...]], tasks: Iterable[str]
) -> tuple[dict[str, str], str]:
    """The colour group of each task and what groups are: labels, else task-name stems."""
    names = list(dict.fromkeys(tasks))
    if labels:
        return {n: (labels.get(n) or ("(none)",))[0] for n in names}, "label"
    return {n: stem(n) for n in names}, "task"


def stem(name: str) -> str:
    """The task's name without its trailing number (``tpcdigi_12`` → ``tpcdigi``): its step."""
    return _STEM.sub("", name) or name


def place(bars: Sequence[Bar]) -> tuple[list[Bar], list[str], bool]:
    """Give every bar a row: one per task (in order of first start) up to MAX_ROWS tasks, else
    lanes. Returns the bars, the row names and whether rows are lanes."""
    ordered = sorted(bars, key=lambda b: (b.start, b.task, b.attempt))
    tasks = list(dict.fromkeys(b.task for b in ordered))
    if len(tasks) <= MAX_ROWS:
        index = {t: i for i, t in enumerate(tasks)}
        return [_with_row(b, index[b.task]) for b in ordered], tasks, False
    lanes = pack_lanes([(b.start, b.end) for b in ordered])
    placed = [_with_row(b, lane) for b, lane in zip(ordered, lanes, strict=True)]
    count = max(lanes, default=-1) + 1
    return placed, [f"lane {i + 1}" for i in range(count)], True


def _with_row(b: Bar, row: int) -> Bar:
    return Bar(b.task, b.attempt, b.start, b.end, b.group, b.failed, row)


def pack_lanes(spans: Sequence[tuple[float, float]]) -> list[int]:
    """A lane for each span (sorted by start): the lowest lane free at its start."""
    free: list[int] = []  # lanes free now
    busy: list[tuple[float, int]] = []  # (end, lane) of lanes in use
    out = []
    for start, end in spans:
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        lane = heapq.heappop(free) if free else len(busy)
        heapq.heappush(busy, (max(end, start), lane))
        out.append(lane)
    return out


def usage_curve(intervals: Sequence[_Interval]) -> Usage:
    """Sum the intervals into a step function (one step per distinct start or end time)."""
    deltas: dict[float, list[float]] = {}
    for iv in intervals:
        if iv.end <= iv.start:
            continue
        for t, sign in ((iv.start, 1.0), (iv.end, -1.0)):
            d = deltas.setdefault(t, [0.0, 0.0])
            d[0] += sign * iv.cpu
            d[1] += sign * iv.mem
    times, cpu, mem = [], [], []
    c = m = 0.0
    for t in sorted(deltas):
        c, m = c + deltas[t][0], m + deltas[t][1]
        times.append(t)
        cpu.append(max(0.0, round(c, 9)))  # sums of floats drift below zero
        mem.append(max(0.0, round(m, 3)))
    return Usage(tuple(times), tuple(cpu), tuple(mem))


# --- drawing -----------------------------------------------------------------------------------


def save(chart: Chart, out: str | Path) -> Path:
    """Write the chart to ``out``: PNG, SVG or HTML by its extension."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"cannot tell the format of {out}: name it .png, .svg or .html")
    fig = figure(chart)
    try:
        if suffix == ".html":
            path.write_text(to_html(chart, fig))
        else:
            fig.savefig(path, format=suffix[1:], dpi=110, metadata=_metadata(suffix))
    except OSError as exc:
        raise HerdError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def _metadata(suffix: str) -> dict[str, Any]:
    # no creation date: the same run gives the same file
    return {"Date": None} if suffix == ".svg" else {}


def figure(chart: Chart) -> Figure:
    """The matplotlib figure of the chart (not attached to pyplot or any GUI backend)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise HerdError(
            "herd plot needs matplotlib: pip install herd[plot] (or pip install matplotlib)"
        ) from exc
    rows = max(len(chart.rows), 1)
    gantt_h = min(max(2.5, 0.16 * rows + 1.0), 12.0)
    fig = Figure(figsize=(13, gantt_h + 4.2), layout="constrained")
    gantt, cpu, mem = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [gantt_h, 2.0, 2.0]}
    )
    scale, unit = _time_unit(chart)
    colours = _draw_gantt(gantt, chart, scale)
    _draw_usage(cpu, chart, scale, "cpu")
    _draw_usage(mem, chart, scale, "mem")
    mem.set_xlabel(f"time since start ({unit})")
    gantt.set_title(chart.title, loc="left", fontsize=11)
    _legend(fig, colours, chart)
    return fig


def _time_unit(chart: Chart) -> tuple[float, str]:
    span = max((b.end for b in chart.bars), default=0.0)
    if span > 3 * 3600:
        return 3600.0, "h"
    if span > 3 * 60:
        return 60.0, "min"
    return 1.0, "s"


def _colours(chart: Chart) -> dict[str, Any]:
    """A colour per group, the busiest groups first; past MAX_GROUPS the rest share ``(other)``."""
    from matplotlib import colormaps

    busy: dict[str, float] = {}
    for b in chart.bars:
        busy[b.group] = busy.get(b.group, 0.0) + (b.end - b.start)
    ranked = sorted(busy, key=lambda g: -busy[g])
    tab20 = colormaps["tab20"].colors  # type: ignore[attr-defined]
    # no reds (they mark failed attempts) nor greys (they mean "other"); strong shades first
    palette = [tab20[i] for i in (*_HUES, *(h + 1 for h in _HUES))]
    keep = ranked if len(ranked) <= MAX_GROUPS else ranked[: MAX_GROUPS - 1]
    out: dict[str, Any] = {g: palette[i] for i, g in enumerate(keep)}
    out.update((g, _GREY) for g in ranked[len(keep) :])
    return out


def _draw_gantt(ax: Axes, chart: Chart, scale: float) -> dict[str, Any]:
    colours = _colours(chart)
    height = 0.8 if not chart.lanes else 0.9
    # an attempt of a few milliseconds still shows as a sliver
    least = max((b.end for b in chart.bars), default=0.0) / scale * 0.003
    for failed in (False, True):
        bars = [b for b in chart.bars if b.failed is failed]
        if not bars:
            continue
        ax.barh(
            [b.row for b in bars],
            [max((b.end - b.start) / scale, least) for b in bars],
            left=[b.start / scale for b in bars],
            height=height,
            color=[colours[b.group] for b in bars],
            edgecolor="red" if failed else "white",  # white: touching attempts stay apart
            linewidth=1.2 if failed else 0.4,
            hatch="////" if failed else None,
        )
    _row_ticks(ax, chart)
    ax.set_ylim(max(len(chart.rows), 1) - 0.4, -0.6)  # the first row on top
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)
    return colours


def _row_ticks(ax: Axes, chart: Chart) -> None:
    n = len(chart.rows)
    if chart.lanes:
        ax.set_ylabel(f"lanes ({len({b.task for b in chart.bars})} tasks)")
        step = max(1, n // 12)
        ticks = list(range(0, n, step))
        ax.set_yticks(ticks, [str(t + 1) for t in ticks])
    else:
        ax.set_yticks(range(n), chart.rows, fontsize=7 if n > 25 else 8)


def _draw_usage(ax: Axes, chart: Chart, scale: float, what: str) -> None:
    factor, label, unit = (1.0, "CPU", "cores") if what == "cpu" else (1e-9, "memory", "GB")
    colour = "tab:blue" if what == "cpu" else "tab:purple"
    times, values = _curve(chart.usage, what, factor, scale)
    if times:
        ax.fill_between(times, values, step="post", alpha=0.35, color=colour, linewidth=0)
        ax.step(times, values, where="post", color=colour, linewidth=1.0, label="in use")
    top = max(values, default=0.0)
    if chart.allocated is not None and chart.allocated.times:
        times, given = _curve(chart.allocated, what, factor, scale)
        ax.step(times, given, where="post", color="0.25", linewidth=0.8, linestyle=":")
        ax.lines[-1].set_label("allocated")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
        top = max(top, *given)
    limit = chart.limits.get(what)
    if limit is not None and limit != float("inf"):
        shown = limit if what == "cpu" else limit / 1000.0  # run limits give mem in MB
        _limit_line(ax, shown, unit)
        top = max(top, shown)
    ax.set_ylim(0, top * 1.12 or 1.0)
    ax.set_ylabel(f"{label} ({unit})")
    ax.grid(alpha=0.3)


def _curve(u: Usage, what: str, factor: float, scale: float) -> tuple[list[float], list[float]]:
    values = [v * factor for v in (u.cpu if what == "cpu" else u.mem)]
    return [t / scale for t in u.times], values


def _limit_line(ax: Axes, value: float, unit: str) -> None:
    ax.axhline(value, color="black", linestyle="--", linewidth=1.0)
    ax.annotate(
        f"limit {value:g} {unit}",
        (0.995, value),
        xycoords=("axes fraction", "data"),
        ha="right",
        va="bottom",
        fontsize=8,
    )


def _legend(fig: Figure, colours: Mapping[str, Any], chart: Chart) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=c, label=g) for g, c in colours.items() if c is not _GREY]
    if any(c is _GREY for c in colours.values()):
        handles.append(Patch(facecolor=_GREY, label=OTHER))
    if any(b.failed for b in chart.bars):
        handles.append(
            Patch(facecolor="white", edgecolor="red", hatch="////", label="failed attempt")
        )
    fig.legend(
        handles=handles,
        title=chart.legend_title,
        loc="outside right upper",
        fontsize=8,
        title_fontsize=9,
        frameon=False,
    )


# --- HTML --------------------------------------------------------------------------------------


_SVG_CLEAN = (
    re.compile(r"^.*?(?=<svg)", re.DOTALL),  # XML prolog and DOCTYPE (with its DTD URL)
    re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL),  # RDF with its namespace URLs
    re.compile(r'\s+xmlns(?::\w+)?="[^"]*"'),  # not needed for SVG inline in HTML
)

_STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:90%}td,th{padding:.2em .8em;border-bottom:1px solid #ddd}
td.n{text-align:right}svg{max-width:100%;height:auto}"""


def inline_svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element that refers to nothing outside the page."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    for pattern in _SVG_CLEAN:
        text = pattern.sub("", text, count=1 if pattern is _SVG_CLEAN[0] else 0)
    return text


def to_html(chart: Chart, fig: Figure) -> str:
    """One self-contained HTML page: the chart and a table per colour group."""
    title = html.escape(chart.title)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body>\n<h1>{title}</h1>\n"
        f"{inline_svg(fig)}\n{_group_table(chart)}\n</body></html>\n"
    )


def _group_table(chart: Chart) -> str:
    rows: dict[str, list[float]] = {}  # group -> [attempts, failed, busy seconds]
    tasks: dict[str, set[str]] = {}
    for b in chart.bars:
        r = rows.setdefault(b.group, [0, 0, 0.0])
        r[0], r[1], r[2] = r[0] + 1, r[1] + b.failed, r[2] + (b.end - b.start)
        tasks.setdefault(b.group, set()).add(b.task)
    body = "".join(
        f"<tr><td>{html.escape(g)}</td><td class=n>{len(tasks[g])}</td><td class=n>{r[0]:.0f}</td>"
        f"<td class=n>{r[1]:.0f}</td><td class=n>{fmt_seconds(r[2])}</td>"
        f"<td class=n>{fmt_seconds(r[2] / r[0])}</td></tr>\n"
        for g, r in sorted(rows.items(), key=lambda kv: -kv[1][2])
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in (html.escape(chart.legend_title), "tasks", "attempts", "failed", "busy", "mean")
    )
    return f"<table><tr>{head}</tr>\n{body}</table>"
