"""schemathesis against the OpenAPI document of a real ``herd serve``: generated requests to
every operation (bounded in examples and time), with an admin token; no answer may be a 500,
and every answer must match the document (status, content type, headers, body schema).

``positive_data_acceptance`` is left out: a schema cannot say which strings are valid workflow
specs or which regexes match a task, so schema-valid requests are rightly refused with 400/422
there. The event stream is left out: it is endless by design (tests/integration/
test_server_writes.py reads it)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.httpserver import call, running
from tests.integration.test_server import ran
from tests.integration.test_server_writes import SPEC, token

#: the bound of the run: examples per operation, and seconds in all
EXAMPLES, SECONDS = 5, 30


def test_every_answer_matches_the_openapi_document(tmp_path: Path) -> None:
    store = str(tmp_path / ".herd" / "herd.db")
    ran(store, tmp_path)
    with running(store, tmp_path) as server:
        admin = token(store, tmp_path, "--scope", "admin")
        assert (
            call("POST", server.api + "/workflows", token=admin, body=SPEC.encode()).status == 201
        )
        document = call("GET", server.api + "/openapi.json").body
        assert "prefixItems" not in json.dumps(document)  # tuples: objects on the wire
        st = Path(sys.executable).with_name("st")
        argv = [str(st), "run", server.api + "/openapi.json", "--checks", "all"]
        argv += ["--exclude-checks", "positive_data_acceptance", "--exclude-path", "/api/v1/events"]
        argv += ["-n", str(EXAMPLES), "--max-time", str(SECONDS), "--seed", "1", "-w", "1"]
        argv += ["--generation-database", "none", "--no-color", "--request-timeout", "20"]
        argv += ["-H", f"Authorization: Bearer {admin}"]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=SECONDS + 90,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
        tested = re.search(r"Tested: (\d+)", done.stdout)
        assert tested and int(tested[1]) >= 16, done.stdout[-3000:]  # the run did test them
        assert " 500 " not in server.output(), server.output()[-3000:]
