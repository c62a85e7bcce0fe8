"""DAMPE DmpWorkflow XML run for real: what a child job inherits from its parent job."""

from __future__ import annotations

from pathlib import Path

from herd.core.model import TaskState

from .helpers import run, states

SPEC = """<Jobs name="chain">
  <MetaData><Var name="store" value="out"/></MetaData>
  <Job name="sim" instances="2">
    <MetaData><Var name="PARTICLE" value="electron"/></MetaData>
    <Instance id="2"><MetaData><Var name="PARTICLE" value="proton"/></MetaData></Instance>
    <OutputFiles>
      <File source="sim.root" target="${store}/sim.${DWF_SIXDIGIT}.root"/>
    </OutputFiles>
    <JobWrapper executable="/bin/sh"><![CDATA[
echo "sim $DWF_SIXDIGIT" > sim.root
]]></JobWrapper>
  </Job>
  <Job name="reco" instances="2" depends="sim">
    <OutputFiles>
      <File source="reco.root" target="${store}/reco.${DWF_SIXDIGIT}.root"/>
    </OutputFiles>
    <JobWrapper executable="/bin/sh"><![CDATA[
# PARTICLE is defined only in the parent job; sim.<six digits>.root is its inherited output
{ cat "sim.$DWF_SIXDIGIT.root"; echo "reco $PARTICLE"; } > reco.root
]]></JobWrapper>
  </Job>
</Jobs>
"""


def test_a_child_uses_its_parents_variables_and_reads_its_outputs(tmp_path: Path) -> None:
    spec = tmp_path / "chain.xml"
    spec.write_text(SPEC)
    result = run(spec, tmp_path)
    assert result.status == "succeeded"
    assert set(states(tmp_path, "chain").values()) == {TaskState.SUCCEEDED}
    for number, particle in (("000001", "electron"), ("000002", "proton")):
        reco = (tmp_path / "out" / f"reco.{number}.root").read_text()
        assert reco.splitlines() == [f"sim {number}", f"reco {particle}"]
