"""Pegasus 5 workflows written by the official Pegasus Python API (PyPI ``pegasus-wms.api``),
run for real: arguments, catalogs, staging, checkpoints, hooks and sub-workflows."""

from __future__ import annotations

from pathlib import Path

from Pegasus.api import File, Job, Transformation, TransformationCatalog, Workflow

from herd.core.model import TaskState
from herd.formats import load

from .helpers import run, states


def test_arguments_are_split_as_pegasus_splits_them(tmp_path: Path) -> None:
    out = File("listing.txt")
    wf = Workflow("args")
    tc = TransformationCatalog().add_transformations(
        Transformation("ls", site="local", pfn="/bin/ls", is_stageable=False)
    )
    wf.add_transformation_catalog(tc)
    (tmp_path / "a b").mkdir()
    (tmp_path / "a b" / "inside").write_text("")
    # "-l -a" is one element, as the blackdiamond tests write it; 'a b' is a quoted word
    job = Job("ls", _id="list").add_args("-1 -a", "'a b'").set_stdout(out, stage_out=False)
    wf.add_jobs(job)
    wf.write(str(tmp_path / "workflow.yml"))

    workflow = load(tmp_path / "workflow.yml")
    assert workflow.task("list").cmd == ("/bin/ls", "-1", "-a", "a b")
    result = run(tmp_path / "workflow.yml", tmp_path)
    assert result.status == "succeeded"
    assert states(tmp_path, "args") == {"list": TaskState.SUCCEEDED}
    assert (tmp_path / "listing.txt").read_text().split() == [".", "..", "inside"]
