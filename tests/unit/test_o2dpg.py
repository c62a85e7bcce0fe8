"""ALICE O2DPG workflow.json: the three real files in ../shared/data/o2dpg, and small documents."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from herd.core.model import EMPTY, Workflow
from herd.errors import SpecError
from herd.formats import load
from herd.formats.o2dpg import load_data

FILES = {"o2dpg_pp_3tf.json": 114, "o2dpg_pp_20tf.json": 726, "o2dpg_pp_20tf_qc_ana.json": 1407}


@pytest.fixture
def o2dpg(shared_data: Path) -> Path:
    return shared_data / "o2dpg"


@pytest.mark.parametrize(("file", "stages"), FILES.items())
def test_every_stage_but_the_global_init_is_a_task(o2dpg: Path, file: str, stages: int) -> None:
    wf = load(o2dpg / file)
    raw = json.loads((o2dpg / file).read_text())["stages"]
    assert (wf.format, wf.name, wf.source) == ("o2dpg", Path(file).stem, str(o2dpg / file))
    assert len(raw) == stages and len(wf.tasks) == stages - 1
    assert [t.name for t in wf.tasks] == [s["name"] for s in raw[1:]]
    for task, stage in zip(wf.tasks, raw[1:], strict=True):
        assert task.needs == tuple(stage["needs"])
        assert task.cmd == stage["cmd"]
        assert task.resources["cpu"] == float(stage["resources"]["cpu"])
        assert task.resources["mem"] == float(stage["resources"]["mem"])
        assert task.done_marker == f"{stage['name']}.log_done"
        assert task.cwd == stage["cwd"]
        assert task.labels == tuple(stage["labels"])


@pytest.mark.parametrize("file", FILES)
def test_global_init_becomes_workflow_env_and_init(o2dpg: Path, file: str) -> None:
    wf = load(o2dpg / file)
    assert wf.init == "o2-ccdb-cleansemaphores -p ${ALICEO2_CCDB_LOCALCACHE}"
    assert wf.env == {
        "ALICEO2_CCDB_LOCALCACHE": "./ccdb",
        "IGNORE_VALIDITYCHECK_OF_CCDB_LOCALCACHE": '${ALICEO2_CCDB_LOCALCACHE:+"ON"}',
        "ALICEO2_CCDB_CONDITION_NOT_AFTER": "3385078236000",
    }
    assert wf.meta["run"] == 310000 and wf.meta["col"] == "pp"
    assert wf.meta["skipModules"] == ("ZDC",)


def test_specific_stages_of_the_3_timeframe_file(o2dpg: Path) -> None:
    wf = load(o2dpg / "o2dpg_pp_3tf.json")
    geom = wf.task("geomprefetch")
    assert geom.resources == {"cpu": 0.0, "mem": 500.0}  # cpu "0" as a string
    assert (geom.timeframe, geom.needs, geom.env, geom.retries) == (None, (), EMPTY, 0)
    tpc = wf.task("tpcclusterpart0_2")
    assert tpc.resources == {"cpu": 2.0, "mem": 8000.0}  # "2", "8000"
    assert tpc.env == {"OMP_NUM_THREADS": "4", "TBB_NUM_THREADS": "4"}
    assert (tpc.semaphore, tpc.retries, tpc.timeframe, tpc.cwd) == ("tpctriggers.root", 2, 2, "tf2")
    assert tpc.needs == ("tpcdigi_2", "ft0fv0emcctp_digi_2")
    assert tpc.labels == ("RECO",)
    merge = wf.task("aodmerge")
    assert merge.needs == ("aod_1", "aod_2", "aod_3")
    assert merge.meta == {"alternative_alienv_package": "None"}
    assert merge.timeframe is None


def test_relative_cpu_is_kept_in_meta(o2dpg: Path) -> None:
    path = o2dpg / "o2dpg_pp_3tf.json"
    raw = json.loads(path.read_text())["stages"]
    wf = load(path)
    relative = [s for s in raw if s["resources"]["relative_cpu"] is not None]
    assert relative
    for stage in relative:
        task = wf.task(stage["name"])
        assert task.meta["relative_cpu"] == stage["resources"]["relative_cpu"]
        assert "relative_cpu" not in task.resources


def test_identical_resources_are_shared(o2dpg: Path) -> None:
    wf = load(o2dpg / "o2dpg_pp_20tf.json")
    a, b = wf.task("tpcclusterpart0_1"), wf.task("tpcclusterpart0_7")
    assert a.resources is b.resources and a.env is b.env


def test_the_largest_file_loads_fast(o2dpg: Path) -> None:
    # CPU time, not wall time: on a loaded machine the wall clock counts the wait for a core
    start = time.process_time()
    wf = load(o2dpg / "o2dpg_pp_20tf_qc_ana.json")
    elapsed = time.process_time() - start
    assert len(wf.tasks) == 1406
    assert elapsed < 0.5, f"took {elapsed:.3f} s of CPU"


# -- small documents ---------------------------------------------------------------------------

SRC = "wf.json"


def stage(name: str, **fields: Any) -> dict[str, Any]:
    base = {
        "name": name,
        "cmd": f"run {name}",
        "needs": [],
        "resources": {"cpu": 1, "relative_cpu": None, "mem": 100},
        "timeframe": -1,
        "labels": [],
        "cwd": "./",
    }
    return {**base, **fields}


def doc(*stages: dict[str, Any], **top: Any) -> Workflow:
    return load_data({"stages": list(stages), **top}, SRC)


def test_without_global_init() -> None:
    wf = doc(stage("a"))
    assert (wf.env, wf.init, wf.meta, wf.name) == (EMPTY, None, EMPTY, "wf")


def test_needs_on_the_global_init_are_dropped_and_env_values_become_strings() -> None:
    wf = doc(
        stage("__global_init_task__", cmd="", env={"N": 3, "F": 1.5}),
        stage("a", needs=["__global_init_task__"], env={"K": 7}),
    )
    assert wf.init is None
    assert wf.env == {"N": "3", "F": "1.5"}
    (task,) = wf.tasks
    assert (task.needs, task.env) == ((), {"K": "7"})


def test_cpu_zero_and_string_numbers() -> None:
    (task,) = doc(stage("a", resources={"cpu": "0", "mem": "2000.5", "relative_cpu": 0.25})).tasks
    assert task.resources == {"cpu": 0.0, "mem": 2000.5}
    assert task.meta == {"relative_cpu": 0.25}


def test_unknown_stage_keys_go_to_meta() -> None:
    (task,) = doc(stage("a", extra={"x": [1]})).tasks
    assert task.meta == {"extra": {"x": (1,)}}


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"cmd": None}, "cmd", "shell command"),
        ({"cmd": "  "}, "cmd", "shell command"),
        ({"resources": {"cpu": "abc", "mem": 1}}, "resources.cpu", "expected a number"),
        ({"resources": {"cpu": 1, "mem": -2}}, "resources.mem", "at least 0"),
        ({"resources": [1]}, "resources", "expected a mapping"),
        ({"needs": [3]}, "needs", "list of strings"),
        ({"timeframe": "x"}, "timeframe", "expected a number"),
        ({"retry_count": "many"}, "retry_count", "expected a number"),
        ({"env": {"A": [1]}}, "env.A", "string or number"),
    ],
)
def test_bad_stages_name_file_task_and_field(
    fields: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(SpecError) as info:
        doc(stage("bad", **fields))
    err = info.value
    assert (err.file, err.task, err.field) == (SRC, "bad", field)
    assert words in err.problem
    assert str(err).startswith(f"{SRC}: task 'bad': field '{field}': ")


def test_a_stage_that_is_not_a_mapping() -> None:
    with pytest.raises(SpecError) as info:
        doc(stage("a"), "b")  # type: ignore[arg-type]
    assert (info.value.file, info.value.task) == (SRC, "#2")


def test_stages_must_be_a_list() -> None:
    with pytest.raises(SpecError) as info:
        load_data({"stages": {}}, SRC)
    assert (info.value.file, info.value.field) == (SRC, "stages")


def test_a_name_holding_a_slash_gets_an_encoded_marker_inside_its_cwd() -> None:
    wf = doc(stage("../../outside"), stage("sim/1"))
    markers = [t.done_marker for t in wf.tasks]
    assert markers == ["..%2F..%2Foutside.log_done", "sim%2F1.log_done"]
    assert all("/" not in m for m in markers)
