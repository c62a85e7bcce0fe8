"""DAMPE DmpWorkflow XML: instances, variables, dependencies, staging, and errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from herd.core.graph import build
from herd.core.model import Workflow
from herd.errors import SpecError
from herd.formats import load
from herd.formats.dampe import load_text

DATA = Path(__file__).resolve().parents[1] / "data" / "dampe"


def edges(workflow: Workflow) -> set[tuple[str, str]]:
    graph = build(workflow)
    return {(graph.name(p), graph.name(c)) for c in range(len(graph)) for p in graph.parents(c)}


def jobs(body: str, top: str = "") -> Workflow:
    return load_text(f"<Jobs>{top}{body}</Jobs>", "t.xml")


def job(name: str, *, attrs: str = "", inner: str = "", script: str = "true") -> str:
    return (
        f'<Job name="{name}" {attrs}>{inner}'
        f'<JobWrapper executable="/bin/sh"><![CDATA[{script}]]></JobWrapper></Job>'
    )


def var(name: str, value: str) -> str:
    return f'<Var name="{name}" value="{value}"/>'


# --- the production example -----------------------------------------------------------------


def test_production_expands_three_instances_per_job() -> None:
    wf = load(DATA / "production.xml")
    assert wf.format == "dampe" and wf.name == "electron-mc"
    names = [t.name for t in wf.tasks]
    assert names == [f"{j}.{i:06d}" for j in ("sim", "reco") for i in (1, 2, 3)]
    assert edges(wf) == {(f"sim.{i:06d}", f"reco.{i:06d}") for i in (1, 2, 3)}
    sim2 = wf.task("sim.000002")
    assert (sim2.timeframe, sim2.labels) == (2, ("sim", "Generation"))
    assert {
        k: sim2.env[k] for k in ("DWF_TASKNAME", "DWF_JOBNAME", "DWF_INSTANCE_ID", "DWF_SIXDIGIT")
    } == {
        "DWF_TASKNAME": "sim",
        "DWF_JOBNAME": "sim",
        "DWF_INSTANCE_ID": "2",
        "DWF_SIXDIGIT": "000002",
    }
    assert (sim2.env["DWF_TYPE"], sim2.env["RELEASE_TAG"]) == ("Generation", "6-0-0")


def test_production_variables_resources_and_files() -> None:
    wf = load(DATA / "production.xml")
    sim1, sim2 = wf.task("sim.000001"), wf.task("sim.000002")
    assert (sim1.env["NEVENTS_GENERATED"], sim2.env["NEVENTS_GENERATED"]) == ("1000", "500")
    # a <Jobs>-level variable using a job attribute and later <Jobs>-level variables
    assert sim1.env["dataset"] == "allElectron-v6-0-0_10GeV_100GeV"
    assert wf.task("reco.000001").env["LOG_LEVEL"] == "WARNING"  # the job beats the parent
    assert sim1.env["LOG_LEVEL"] == "INFO"
    assert sim1.demand == {"cpu": 1.0, "mem": 2000.0}  # BATCH_OVERRIDE_MEMORY
    assert sim1.timeout == 4 * 3600.0  # BATCH_OVERRIDE_CPUTIME 04:00
    assert "BATCH_OVERRIDE_MEMORY" not in sim1.env
    produced = "storage/6-0-0/sim/allElectron-v6-0-0_10GeV_100GeV.mc.000001.root"
    assert sim1.inputs == ("macros/electron.mac",)
    assert sim1.outputs == (produced,)
    assert wf.task("reco.000001").inputs == (produced,)


def test_production_runs_end_to_end(tmp_path: Path) -> None:
    wf = load(DATA / "production.xml")
    (tmp_path / "macros").mkdir()
    (tmp_path / "macros" / "electron.mac").write_text("/gun/particle e-\n")
    graph = build(wf)
    for i in graph.order:
        task = graph.tasks[i]
        env = {**os.environ, **task.env}
        subprocess.run(
            ["/bin/sh", "-c", str(task.cmd)], cwd=tmp_path, env=env, check=True, capture_output=True
        )
    out = tmp_path / "storage/6-0-0/reco/allElectron-v6-0-0_10GeV_100GeV.reco.000002.root"
    assert out.read_text().splitlines() == [
        "reco sim stream 000002 events 500 seed 2",
        "dataset allElectron-v6-0-0_10GeV_100GeV log INFO",
        "log WARNING",
    ]
    assert not (tmp_path / "sim").exists() and not (tmp_path / "reco").exists()  # cleaned up


def test_the_instance_directory_is_kept_when_the_payload_fails(tmp_path: Path) -> None:
    wf = jobs(job("bad", script="echo partial > part.txt; exit 3"))
    result = subprocess.run(
        ["/bin/sh", "-c", str(wf.tasks[0].cmd)], cwd=tmp_path, capture_output=True
    )
    assert result.returncode == 3
    assert (tmp_path / "bad" / "000001" / "part.txt").read_text() == "partial\n"


def test_files_alone_give_the_dependencies() -> None:
    text = (DATA / "production.xml").read_text().replace(' depends="sim"', "")
    wf = load_text(text, "production.xml")
    assert all(not t.needs for t in wf.tasks)
    assert edges(wf) == {(f"sim.{i:06d}", f"reco.{i:06d}") for i in (1, 2, 3)}


# --- the merge example ----------------------------------------------------------------------


def test_merge_gathers_every_instance_and_keeps_urls_in_meta() -> None:
    wf = load(DATA / "merge_xrootd.xml")
    merge = wf.task("merge.000001")
    assert merge.needs == ("digi.000001", "digi.000002", "digi.000003")
    assert merge.demand == {"cpu": 1.0, "mem": 4000.0}
    assert merge.outputs == ()
    assert merge.meta["remote_outputs"] == (
        "root://dampe-rdr.example.org//dampe/mc/merged/v1/merged.root",
    )
    digi = wf.task("digi.000001")
    assert digi.inputs == ()
    assert digi.meta["remote_inputs"] == (
        "root://dampe-rdr.example.org//dampe/mc/sim/sim.000001.root",
    )
    assert isinstance(digi.cmd, str)
    assert (
        "xrdcp -f root://dampe-rdr.example.org//dampe/mc/sim/sim.000001.root dmpsimu.root"
        in digi.cmd
    )
    assert "\npython3 -u payload\n" in digi.cmd
    assert edges(wf) == {(f"digi.{i:06d}", "merge.000001") for i in (1, 2, 3)}


def test_variables_extend_weaker_definitions_and_bind_late() -> None:
    wf = load(DATA / "merge_xrootd.xml")
    d1, d3, merge = wf.task("digi.000001"), wf.task("digi.000003"), wf.task("merge.000001")
    assert d1.env["EXTRA_PATH"] == "/opt/dmpsw/bin:/opt/digi/bin"
    assert (d1.env["tag"], d3.env["tag"], merge.env["tag"]) == ("v1-digi", "v1-digi-rerun", "v1")
    # a <Jobs>-level variable sees each task's own DWF_JOBNAME and tag
    assert (d3.env["outdir"], merge.env["outdir"]) == (
        "results/digi/v1-digi-rerun",
        "results/merge/v1",
    )
    assert d3.outputs == ("results/digi/v1-digi-rerun/digi.000003.root",)
    assert any("BATCH_OVERRIDE_QUEUE" in w and "job 'digi'" in w for w in wf.meta["warnings"])


# --- small cases ----------------------------------------------------------------------------


def test_a_parent_with_one_instance_is_needed_by_every_instance() -> None:
    wf = jobs(job("prep") + job("run", attrs='instances="2" depends="prep"'))
    assert [t.needs for t in wf.tasks] == [(), ("prep.000001",), ("prep.000001",)]


def test_precedence_instance_over_job_over_parent_and_builtins_win() -> None:
    inner = (
        f"<MetaData>{var('A', 'job')}{var('B', 'job')}{var('DWF_SIXDIGIT', 'mine')}</MetaData>"
        f'<Instance id="2"><MetaData>{var("A", "instance")}</MetaData></Instance>'
    )
    top = f"<MetaData>{var('A', 'parent')}{var('B', 'parent')}{var('C', 'parent')}</MetaData>"
    wf = jobs(job("j", attrs='instances="2"', inner=inner), top)
    one, two = wf.tasks
    assert (one.env["A"], two.env["A"]) == ("job", "instance")
    assert (one.env["B"], one.env["C"]) == ("job", "parent")
    assert two.env["DWF_SIXDIGIT"] == "000002"
    assert any("DWF_SIXDIGIT" in w and "set by herd" in w for w in wf.meta["warnings"])


def test_instance_overrides_add_files() -> None:
    inner = (
        '<InputFiles><File source="a.txt" target="a.txt"/></InputFiles>'
        '<Instance id="1"><InputFiles><File source="extra.txt" target="e.txt"/></InputFiles></Instance>'
    )
    wf = jobs(job("j", attrs='instances="2"', inner=inner))
    assert [t.inputs for t in wf.tasks] == [("a.txt", "extra.txt"), ("a.txt",)]


def test_unknown_variables_stay_for_the_shell(tmp_path: Path) -> None:
    inner = '<OutputFiles><File source="o.txt" target="${OUTBASE}/o.${DWF_SIXDIGIT}.txt"/></OutputFiles>'
    wf = jobs(job("j", inner=inner, script="echo hi > o.txt"))
    task = wf.tasks[0]
    assert task.outputs == ("${OUTBASE}/o.000001.txt",)
    assert any("${OUTBASE}" in w and "unknown variable" in w for w in wf.meta["warnings"])
    env = {**os.environ, "OUTBASE": str(tmp_path / "out")}
    subprocess.run(["/bin/sh", "-c", str(task.cmd)], cwd=tmp_path, env=env, check=True)
    assert (tmp_path / "out" / "o.000001.txt").read_text() == "hi\n"


def test_a_single_job_root_and_empty_placeholders() -> None:
    text = (
        '<Job type="Other"><InputFiles><File source="" target=""/></InputFiles>'
        '<MetaData><Var name="" value=""/></MetaData>'
        '<JobWrapper executable="/bin/bash"><![CDATA[echo hostname]]></JobWrapper></Job>'
    )
    wf = load_text(text, "dir/dummyJob.xml")
    assert [t.name for t in wf.tasks] == ["dummyJob.000001"]
    assert len(wf.meta["warnings"]) == 2


# --- errors ---------------------------------------------------------------------------------


def test_malformed_xml_names_line_and_column() -> None:
    with pytest.raises(SpecError) as info:
        load_text("<Jobs>\n  <Job name='a'>\n</Jobs>", "bad.xml")
    assert info.value.file == "bad.xml"
    assert "invalid XML at line 3, column 3" in info.value.problem


@pytest.mark.parametrize(
    ("body", "task", "field", "words"),
    [
        (
            job("a", attrs='instances="3"') + job("b", attrs='instances="2" depends="a"'),
            "b",
            "depends",
            "has 2 instances but depends on 'a', which has 3",
        ),
        (job("a", attrs='depends="ghost"'), "a", "depends", "'ghost', which is not a job"),
        (job("a") + job("a"), "a", "name", "duplicate job name"),
        (job("a", attrs='instances="0"'), "a", "instances", "at least 1"),
        (job("a", attrs='instances="many"'), "a", "instances", "expected a number"),
        ('<Job name="a"><MetaData/></Job>', "a", "JobWrapper", "needs a <JobWrapper>"),
        (
            job("a", attrs='instances="2"', inner='<Instance id="3"/>'),
            "a",
            "Instance.id",
            "instance 3 does not exist",
        ),
        (
            job("a", inner=f"<MetaData>{var('X', '${Y}')}{var('Y', '$X')}</MetaData>"),
            "a.000001",
            "MetaData",
            "cycle: ${X} -> ${Y} -> ${X}",
        ),
        (
            job("a", inner='<InputFiles><File source="x"/></InputFiles>'),
            "a",
            "InputFiles.File[1].target",
            "needs a target",
        ),
        (job("a b"), "a b", "name", "a job name may use"),
        (
            job("a", inner=f"<MetaData>{var('BATCH_OVERRIDE_CPUTIME', 'soon')}</MetaData>"),
            "a",
            "BATCH_OVERRIDE_CPUTIME",
            "HH:MM",
        ),
    ],
)
def test_errors_name_file_job_and_field(body: str, task: str, field: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        load_text(f"<Jobs>{body}</Jobs>", "bad.xml")
    assert (info.value.file, info.value.task, info.value.field) == ("bad.xml", task, field)
    assert words in info.value.problem


def test_a_foreign_root_is_refused() -> None:
    with pytest.raises(SpecError, match="root element is <dag>"):
        load_text("<dag/>", "x.xml")


# --- parent jobs ----------------------------------------------------------------------------


def test_a_child_inherits_its_parents_metadata_weakest_and_outputs_as_inputs() -> None:
    sim = job(
        "sim",
        attrs='instances="2"',
        inner=f"<MetaData>{var('P', 'sim')}{var('Q', 'sim')}</MetaData>"
        f'<Instance id="2"><MetaData>{var("P", "sim2")}</MetaData></Instance>'
        '<OutputFiles><File source="o" target="d/${P}.${DWF_SIXDIGIT}.root"/></OutputFiles>',
    )
    reco = job("reco", attrs='instances="2" depends="sim"')
    wf = jobs(sim + reco, top=f"<MetaData>{var('Q', 'top')}</MetaData>")
    one, two = wf.task("reco.000001"), wf.task("reco.000002")
    assert (one.env["P"], two.env["P"]) == ("sim", "sim2")  # per-instance alignment
    assert one.env["Q"] == "top"  # the parent's MetaData is the weakest layer
    assert (one.inputs, two.inputs) == (("d/sim.000001.root",), ("d/sim2.000002.root",))
    assert isinstance(two.cmd, str)
    assert 'cp -- "$herd_wd"/d/sim2.000002.root sim2.000002.root' in two.cmd


def test_a_merge_inherits_every_parent_instance_and_listed_inputs_win() -> None:
    sim = job(
        "sim",
        attrs='instances="2"',
        inner='<OutputFiles><File source="o" target="d/s.${DWF_SIXDIGIT}"/></OutputFiles>',
    )
    listed = '<InputFiles><File source="d/s.000001" target="first"/></InputFiles>'
    wf = jobs(sim + job("merge", attrs='depends="sim"', inner=listed))
    merge = wf.task("merge.000001")
    assert merge.inputs == ("d/s.000001", "d/s.000002")
    assert isinstance(merge.cmd, str)
    assert merge.cmd.count("d/s.000001") == 1  # copied once, to the name the job chose
    assert 'cp -- "$herd_wd"/d/s.000002 s.000002' in merge.cmd


def test_inherited_outputs_copied_to_one_name_are_an_error() -> None:
    sim = job(
        "sim",
        attrs='instances="2"',
        inner='<OutputFiles><File source="o" target="d/${DWF_SIXDIGIT}/o.root"/></OutputFiles>',
    )
    with pytest.raises(SpecError, match=r"'merge'.*InputFiles.*o\.root.*distinct names"):
        jobs(sim + job("merge", attrs='depends="sim"'))


def test_jobs_depending_on_each_other_are_an_error() -> None:
    with pytest.raises(SpecError, match="cycle"):
        jobs(job("a", attrs='depends="b"') + job("b", attrs='depends="a"'))
