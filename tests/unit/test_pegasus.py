"""Pegasus 5 wf.yml: the shared examples, profiles, catalogs, hooks and what herd refuses."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from herd.core.graph import build
from herd.core.model import Workflow
from herd.errors import SpecError
from herd.formats import load
from herd.formats.pegasus import load_data


def job(job_id: str, name: str = "tool", **fields: Any) -> dict[str, Any]:
    return {"type": "job", "name": name, "id": job_id, "arguments": [], "uses": [], **fields}


def pegasus(*jobs: dict[str, Any], **top: Any) -> Workflow:
    return load_data({"pegasus": "5.0.4", "name": "t", "jobs": list(jobs), **top}, "t.yml")


def edges(workflow: Workflow) -> set[tuple[str, str]]:
    graph = build(workflow)
    return {(graph.name(p), graph.name(c)) for c in range(len(graph)) for p in graph.parents(c)}


# --- the shared examples --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["diamond.yml", "fanout.yml"])
def test_every_shared_file_loads_and_builds(shared_data: Path, name: str) -> None:
    workflow = load(shared_data / "pegasus" / name)
    assert workflow.format == "pegasus"
    assert len(build(workflow)) == len(workflow.tasks)


def test_diamond_jobs_dependencies_and_files(shared_data: Path) -> None:
    wf = load(shared_data / "pegasus" / "diamond.yml")
    jobs = [t.name for t in wf.tasks if not t.name.startswith("stage_")]
    assert jobs == ["preprocess", "findrange_1", "findrange_2", "analyze"]
    assert wf.task("analyze").needs == ("findrange_1", "findrange_2")
    assert wf.task("preprocess").inputs == ("f.a",)
    assert set(wf.task("preprocess").outputs) == {"f.b1", "f.b2"}
    expected = {
        ("preprocess", "findrange_1"),
        ("preprocess", "findrange_2"),
        ("findrange_1", "analyze"),
        ("findrange_2", "analyze"),
    }
    staging = {e for e in edges(wf) if any(n.startswith("stage_") for n in e)}
    assert edges(wf) - staging == expected
    # the files alone give the same DAG: jobDependencies and data flow agree
    bare = Workflow(
        "d",
        tuple(
            t.__class__(t.name, t.cmd, inputs=t.inputs, outputs=t.outputs)
            for t in wf.tasks
            if t.name in jobs
        ),
    )
    assert edges(bare) == expected


def test_diamond_profiles_and_transformations(shared_data: Path) -> None:
    wf = load(shared_data / "pegasus" / "diamond.yml")
    findrange = wf.task("findrange_1")
    assert findrange.cmd == ("/usr/bin/pegasus-keg", "-i", "f.b1", "-o", "f.c1")
    assert dict(findrange.resources) == {"cpu": 2.0, "mem": 2048.0}  # transformation profile
    assert not wf.task("preprocess").resources  # no profile: the model's default
    assert wf.task("preprocess").demand == {"cpu": 1.0}
    assert wf.task("preprocess").retries == 2  # workflow-level dagman RETRY
    assert wf.task("findrange_2").retries == 3  # the job's own beats the workflow's
    assert wf.task("analyze").labels == ("analyze",)


def test_diamond_replica_is_staged_in_by_a_task(shared_data: Path) -> None:
    wf = load(shared_data / "pegasus" / "diamond.yml")
    assert wf.task("preprocess").meta["replicas"] == {"f.a": "/data/f.a"}
    assert wf.init is None
    stage = wf.task("stage_in_f.a")
    assert stage.cmd[-4:] == ("herd.exec.stage", "in", "/data/f.a", "f.a")
    assert (stage.inputs, stage.outputs, stage.labels) == (("/data/f.a",), ("f.a",), ("stage-in",))
    assert ("stage_in_f.a", "preprocess") in edges(wf)
    out = wf.task("stage_out_analyze")
    assert out.needs == ("analyze",)
    assert out.outputs == ("/tmp/wf/output/f.d",)  # the local site's storage directory
    assert "--register" in out.cmd and "diamond.replicas.yml" in out.cmd


def test_diamond_hook_and_reports(shared_data: Path) -> None:
    wf = load(shared_data / "pegasus" / "diamond.yml")
    analyze = wf.task("analyze")
    assert analyze.meta["hooks"] == ({"on": "error", "cmd": "/bin/echo analyze failed"},)
    assert isinstance(analyze.cmd, str) and "PEGASUS_EVENT=error" in analyze.cmd
    warnings = "\n".join(wf.meta["warnings"])
    source = str(shared_data / "pegasus" / "diamond.yml")
    assert f"{source}: site 'condorpool': field 'profiles.condor.universe'" in warnings
    assert "stageOut" not in warnings  # staged out by a task


def test_fanout_stageable_checkpoint_stdout_and_labels(shared_data: Path) -> None:
    wf = load(shared_data / "pegasus" / "fanout.yml")
    work = wf.task("work_0")
    assert isinstance(work.cmd, str)  # checkpoint.time: 5 minutes, then SIGTERM
    assert work.cmd.startswith("timeout -s TERM -k 60 300 ./work chunk.0 out.0\n")
    assert "work" in work.inputs  # placed by the one stage_exe task
    assert wf.task("stage_exe_work").cmd[-4:] == ("in", "/opt/bin/work.sh", "work", "--executable")
    assert set(work.outputs) == {"out.0", "work.0.ckpt", "work.0.log"}
    assert work.meta["checkpoints"] == ("work.0.ckpt",)
    assert work.stdout == "work.0.log"
    assert work.duration == 600.0
    assert dict(work.resources) == {"cpu": 1.0, "mem": 512.0}
    assert wf.task("notify").labels == ("merge", "notify-done")
    assert wf.task("merge").stdout == "result.txt"
    assert len([t for t in wf.tasks if not t.name.startswith("stage_")]) == 7
    assert edges(wf) >= {("split", f"work_{i}") for i in range(4)} | {("merge", "notify")}


def test_staged_executable_is_fetched_once_then_run(tmp_path: Path) -> None:
    tool = tmp_path / "bin" / "tool.sh"
    tool.parent.mkdir()
    tool.write_text('#!/bin/sh\necho "ran $1" > "$2"\n')
    catalog = {
        "transformations": [
            {"name": "tool", "sites": [{"name": "local", "pfn": str(tool), "type": "stageable"}]}
        ]
    }
    wf = pegasus(job("a", arguments=["x", "out.txt"]), transformationCatalog=catalog)
    work = tmp_path / "work"
    work.mkdir()
    for name in ("stage_exe_tool", "a"):
        subprocess.run(list(wf.task(name).cmd), cwd=work, check=True)
    assert (work / "out.txt").read_text() == "ran x\n"
    assert (work / "tool").exists() and not list(work.glob(".*herd-stage"))


# --- profiles -------------------------------------------------------------------------------


def test_profile_precedence_job_over_transformation_over_site_over_workflow() -> None:
    catalog = {
        "transformations": [
            {
                "name": "tool",
                "sites": [
                    {
                        "name": "local",
                        "pfn": "/bin/tool",
                        "type": "installed",
                        "profiles": {"env": {"S": "entry"}},
                    }
                ],
                "profiles": {
                    "env": {"T": "tf", "S": "tf"},
                    "pegasus": {"cores": 4, "memory": "2 GB"},
                },
            }
        ]
    }
    sites = {"sites": [{"name": "local", "profiles": {"env": {"SITE": "site", "T": "site"}}}]}
    wf = pegasus(
        job("a", profiles={"env": {"J": "job", "T": "job"}, "pegasus": {"cores": 8}}),
        job("b"),
        profiles={"env": {"W": "wf", "T": "wf"}, "pegasus": {"gpus": 1, "maxwalltime": 30}},
        transformationCatalog=catalog,
        siteCatalog=sites,
    )
    a, b = wf.tasks
    assert dict(wf.env) == {"W": "wf", "T": "wf"}
    assert dict(a.env) == {"W": "wf", "T": "job", "SITE": "site", "S": "entry", "J": "job"}
    assert dict(b.env)["T"] == "tf"
    assert dict(a.resources) == {"cpu": 8.0, "mem": 2048.0, "gpu": 1.0}
    assert dict(b.resources) == {"cpu": 4.0, "mem": 2048.0, "gpu": 1.0}
    assert a.timeout == b.timeout == 1800.0


def test_dagman_and_condor_keys_that_herd_honours() -> None:
    wf = pegasus(
        job("a", profiles={"dagman": {"retry": "4", "PRIORITY": 7}}),
        job("b", profiles={"condor": {"request_cpus": 3, "request_memory": "1000", "priority": 2}}),
    )
    a, b = wf.tasks
    assert (a.retries, a.priority) == (4, 7)
    assert dict(b.resources) == {"cpu": 3.0, "mem": 1000.0}
    assert b.priority == 2
    assert not [w for w in wf.meta.get("warnings", ()) if "profiles" in w]


def test_what_herd_cannot_honour_is_reported_with_file_job_and_field() -> None:
    wf = pegasus(
        job(
            "a",
            profiles={"condor": {"universe": "vanilla"}, "selector": {"execution.site": "cori"}},
        ),
        job("b", profiles={"condor": {"universe": "vanilla"}}),
        siteCatalog={
            "sites": [
                {
                    "name": "cori",
                    "grids": [{"type": "batch", "contact": "cori.nersc.gov", "scheduler": "slurm"}],
                }
            ]
        },
        transformationCatalog={
            "transformations": [
                {
                    "name": "tool",
                    "sites": [
                        {"name": "cori", "pfn": "/x", "type": "installed", "container": "centos"}
                    ],
                }
            ]
        },
    )
    text = "\n".join(wf.meta["warnings"])
    assert "t.yml: jobs 'a', 'b': field 'profiles.condor.universe'" in text
    assert (
        "t.yml: job 'a': field 'profiles.selector.execution.site': site selection ignored" in text
    )
    assert "site 'cori': field 'grids': grid contact 'cori.nersc.gov' ignored" in text
    assert "site 'cori': field 'siteCatalog': remote site ignored" in text
    assert "transformation 'tool': field 'sites': only catalogued for site 'cori'" in text
    assert "field 'sites.container': containers are not supported" in text


def test_unknown_transformation_runs_from_path_with_a_warning() -> None:
    wf = pegasus(job("a", name="echo", arguments=["hi", 3]))
    assert wf.tasks[0].cmd == ("echo", "hi", "3")
    assert (
        "transformation 'echo' is not in the inline transformation catalog"
        in wf.meta["warnings"][0]
    )


def test_inout_none_optional_and_file_objects_in_arguments() -> None:
    wf = pegasus(
        job("p", uses=[{"lfn": "opt.txt", "type": "output"}]),
        job(
            "a",
            arguments=[{"lfn": "db.sqlite"}, "-v"],
            uses=[
                {"lfn": "db.sqlite", "type": "inout"},
                {"lfn": "notes", "type": "none"},
                {"lfn": "opt.txt", "type": "input", "optional": True},
                {"lfn": "missing.txt", "type": "input", "optional": True},
            ],
        ),
    )
    a = wf.task("a")
    assert a.cmd == ("tool", "db.sqlite", "-v")
    assert a.inputs == ("db.sqlite", "opt.txt")  # an optional input is an edge only when produced
    assert a.outputs == ("db.sqlite",)
    assert a.meta["unused_files"] == ("notes",)
    assert ("p", "a") in edges(wf)


def test_hooks_run_on_their_events_and_keep_the_exit_status(tmp_path: Path) -> None:
    hooks = {
        "shell": [
            {"_on": "start", "cmd": "echo start"},
            {"_on": "error", "cmd": 'echo "error $PEGASUS_STATUS $PEGASUS_JOBID"'},
            {"_on": "success", "cmd": "echo ok"},
            {"_on": "end", "cmd": "exit 9"},
        ]
    }
    catalog = {
        "transformations": [
            {"name": "tool", "sites": [{"name": "local", "pfn": "/bin/sh", "type": "installed"}]}
        ]
    }
    wf = pegasus(
        job("bad", arguments=["-c", "'exit 3'"], hooks=hooks),
        job("good", arguments=["-c", "true"], hooks=hooks),
        transformationCatalog=catalog,
    )
    results = {
        t.name: subprocess.run(
            ["/bin/sh", "-c", str(t.cmd)], cwd=tmp_path, capture_output=True, text=True
        )
        for t in wf.tasks
    }
    assert results["bad"].returncode == 3
    assert results["bad"].stderr.splitlines() == ["start", "error 3 bad"]
    assert results["good"].returncode == 0
    assert results["good"].stderr.splitlines() == ["start", "ok"]


def test_workflow_level_hooks_become_workflow_hooks() -> None:
    shell = [{"_on": "end", "cmd": "mail"}, {"_on": "all", "cmd": "log"},
             {"_on": "never", "cmd": "no"}]  # fmt: skip
    wf = pegasus(job("a"), hooks={"shell": shell})
    assert [(h.on.value, h.cmd) for h in wf.hooks] == [
        ("end", "mail"), ("start", "log"), ("success", "log"), ("error", "log"), ("end", "log")
    ]  # fmt: skip
    assert not any("hooks" in w for w in wf.meta.get("warnings", ()))


def test_job_runtime_is_the_old_name_of_runtime_and_checkpoints_wrap_the_command() -> None:
    wf = pegasus(
        job("old", profiles={"pegasus": {"job.runtime": 42}}),
        job("both", profiles={"pegasus": {"job.runtime": 42, "runtime": 7}}),
        job("ck", profiles={"pegasus": {"checkpoint.time": 2, "maxwalltime": 5}}),
    )
    assert (wf.task("old").duration, wf.task("both").duration) == (42.0, 7.0)
    ck = wf.task("ck")
    assert isinstance(ck.cmd, str) and ck.cmd.startswith("timeout -s TERM -k 180 120 tool\n")
    assert ck.timeout is None  # the wrapper ends it at its walltime
    assert "no dagman.retry" in "\n".join(wf.meta["warnings"])


def test_replicas_produced_by_a_job_are_not_staged_and_urls_are_fetched() -> None:
    replicas = {
        "replicas": [
            {"lfn": "made.txt", "pfns": [{"site": "local", "pfn": "/store/made.txt"}]},
            {"lfn": "web.txt", "pfns": [{"site": "web", "pfn": "https://example.org/web.txt"}]},
            {"lfn": "grid.txt", "pfns": [{"site": "grid", "pfn": "gsiftp://host/grid.txt"}]},
        ]
    }
    wf = pegasus(
        job("p", uses=[{"lfn": "made.txt", "type": "output"}]),
        job("c", uses=[{"lfn": f, "type": "input"} for f in ("made.txt", "web.txt", "grid.txt")]),
        replicaCatalog=replicas,
    )
    staged = {t.name: t.cmd[-2:] for t in wf.tasks if t.name.startswith("stage_in_")}
    assert staged == {
        "stage_in_web.txt": ("https://example.org/web.txt", "web.txt"),
        "stage_in_grid.txt": ("gsiftp://host/grid.txt", "grid.txt"),
    }
    text = "\n".join(wf.meta["warnings"])
    assert "replica 'made.txt': field 'replicaCatalog': the file is also produced by a job" in text
    assert "replica 'grid.txt'" in text


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jobs", "top", "task", "field", "words"),
    [
        (
            [{"type": "pegasusWorkflow", "id": "sub", "arguments": [], "uses": []}],
            {},
            "sub",
            "file",
            "needs the file of its workflow",
        ),
        (
            [{"type": "condorWorkflow", "id": "dag", "file": "x.dag", "arguments": [], "uses": []}],
            {},
            "dag",
            "type",
            "DAGMan file",
        ),
        (
            [job("a", uses=[{"lfn": "x", "type": "sideways"}])],
            {},
            "a",
            "uses[0].type",
            "unknown link type",
        ),
        ([job("a"), job("a")], {}, "a", "id", "duplicate job id"),
        (
            [{"type": "job", "name": "x", "arguments": [], "uses": []}],
            {},
            None,
            "jobs[0].id",
            "needs an id",
        ),
        (
            [job("a", profiles={"pegasus": {"cores": "lots"}})],
            {},
            "a",
            "profiles.pegasus.cores",
            "expected a number",
        ),
        ([job("a", arguments=[["nested"]])], {}, "a", "arguments[0]", "expected a string"),
        (
            [job("a")],
            {"jobDependencies": [{"id": "a", "children": ["ghost"]}]},
            "a",
            "jobDependencies[0].children",
            "'ghost'",
        ),
        ([job("a")], {"pegasus": "4.9"}, None, "pegasus", "not supported"),
    ],
)
def test_errors_name_file_job_and_field(
    jobs: list[dict[str, Any]], top: dict[str, Any], task: str | None, field: str, words: str
) -> None:
    data = {"pegasus": "5.0.4", "name": "t", "jobs": jobs, **top}
    with pytest.raises(SpecError) as info:
        load_data(data, "bad.yml")
    error = info.value
    assert (error.file, error.task, error.field) == ("bad.yml", task, field)
    assert words in error.problem
    assert str(error).startswith("bad.yml: ")


def test_a_yaml_round_trip_of_the_loader_input_is_stable(shared_data: Path) -> None:
    text = (shared_data / "pegasus" / "fanout.yml").read_text()
    first = load_data(yaml.safe_load(text), "fanout.yml")
    second = load_data(yaml.safe_load(text), "fanout.yml")
    assert first == second


def test_numeric_job_ids_read_as_strings() -> None:
    wf = pegasus(job(7), job(8), jobDependencies=[{"id": 7, "children": [8]}])  # type: ignore[arg-type]
    assert [(t.name, t.needs) for t in wf.tasks] == [("7", ()), ("8", ("7",))]


@pytest.mark.parametrize(
    ("arguments", "argv"),
    [
        (["-a preprocess", "-T", 3], ["-a", "preprocess", "-T", "3"]),
        (["-l -a", "/"], ["-l", "-a", "/"]),
        (["-m", "'hello world'", '"it\'s"'], ["-m", "hello world", "it's"]),
        (["x\\ y", "a'b c'", "''"], ["x y", "ab c", ""]),
        (["  spaced  ", ""], ["spaced"]),
    ],
)
def test_arguments_are_joined_and_split_again_as_pegasus_does(
    arguments: list[Any], argv: list[str]
) -> None:
    wf = pegasus(job("a", name="echo", arguments=arguments))
    assert wf.task("a").cmd == ("echo", *argv)


@pytest.mark.parametrize("bad", ["'open", 'say "hi', "end\\"])
def test_an_unclosed_quote_in_the_arguments_is_a_spec_error(bad: str) -> None:
    with pytest.raises(SpecError, match=r"t\.yml.*'a'.*arguments"):
        pegasus(job("a", arguments=["-x", bad]))


def test_convert_names_what_the_native_format_cannot_hold(tmp_path: Path) -> None:
    from herd.formats.convert import convert

    src = tmp_path / "wf.yml"
    src.write_text(yaml.safe_dump({
        "pegasus": "5.0.4", "name": "w",
        "hooks": {"shell": [{"_on": "end", "cmd": "echo end"}]},
        "jobs": [{"type": "pegasusWorkflow", "id": "sub", "file": "inner.yml", "arguments": [],
                  "uses": []}],
    }))  # fmt: skip
    warnings = "\n".join(convert(src, tmp_path / "w.yaml").meta["warnings"])
    assert "1 workflow hook(s) are not written: native has none" in warnings
    assert "sub-workflow job(s) sub are written as their file check only" in warnings
