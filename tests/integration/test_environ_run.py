"""An input named through a variable of herd's environment is stamped like any other."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import attempts, run, write_spec


def test_editing_an_input_behind_a_variable_reruns_its_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "in.txt").write_text("one\n")
    monkeypatch.setenv("SRCDIR", str(src))
    task = {"name": "copy", "cmd": "cp $SRCDIR/in.txt out.txt", "inputs": ["${SRCDIR}/in.txt"],
            "outputs": ["out.txt"]}  # fmt: skip
    spec = write_spec(tmp_path, [task])
    assert run(spec, tmp_path).status == "succeeded"
    assert run(spec, tmp_path).status == "succeeded"
    assert attempts(tmp_path) == {"copy": 1}  # stamped: unchanged, so skipped
    (src / "in.txt").write_text("two, longer\n")
    assert run(spec, tmp_path).status == "succeeded"
    assert attempts(tmp_path) == {"copy": 2}
    assert (tmp_path / "out.txt").read_text() == "two, longer\n"
