"""Hostile input, as an adversary would write it: every case ends in its documented exit code and
one line on stderr, never a traceback, under a 3 GB address-space cap and a 20 s limit.

The cases are data: :data:`SPECS` (spec files, checked with ``herd validate``) and :data:`LINES`
(command lines, run beside a valid spec and a working directory herd ran in). Each runs the real
``herd`` command in a subprocess.
"""

from __future__ import annotations

import gzip
import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

#: the address-space cap of every herd process of this suite
ADDRESS_SPACE = 3 * 1024**3
#: seconds a case may take
TIME_LIMIT = 20


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def herd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``herd ARGS`` in ``cwd``, capped (a case over 20 s fails with TimeoutExpired)."""
    return subprocess.run(
        [sys.executable, "-m", "herd.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=TIME_LIMIT,
        preexec_fn=_capped,
        stdin=subprocess.DEVNULL,
    )


def check(r: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    """Exit ``code``, one line on stderr naming ``fragment``, no traceback."""
    shown = f"exit {r.returncode}\nstderr: {r.stderr}\nstdout: {r.stdout[-500:]}"
    assert "Traceback" not in r.stderr + r.stdout, shown
    assert r.returncode == code, shown
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("herd"), shown
    assert fragment in lines[0], shown


# --- spec files ---------------------------------------------------------------------------------

OK_TASK = "{name: a, cmd: 'true'}"


def native(tasks: str, extra: str = "") -> str:
    return f"name: h\n{extra}tasks: {tasks}\n"


def o2dpg(*stages: dict[str, object]) -> str:
    return json.dumps({"stages": list(stages)})


def bomb(levels: int) -> str:
    lines = ['  l0: &l0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, levels):
        lines.append(f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return (
        "name: bomb\nmeta:\n"
        + "\n".join(lines)
        + f"\ntasks: [{{name: t, cmd: x, meta: {{x: *l{levels - 1}}}}}]\n"
    )


def deep_json(depth: int) -> str:
    return (
        '{"name": "d", "tasks": [{"name": "a", "cmd": "x"}], "meta": {"x": '
        + "[" * depth
        + "]" * depth
        + "}}"
    )


def deep_yaml_blocks(depth: int) -> str:
    lines = ["name: d", "tasks: [{name: a, cmd: x}]", "meta:"]
    lines += [" " * (i + 1) + "k:" for i in range(depth)]
    return "\n".join(lines) + " v\n"


WFFORMAT = {
    "name": "w",
    "schemaVersion": "1.5",
    "workflow": {"specification": {"tasks": [], "files": []}},
}

#: file name -> (content, exit code, a fragment of the message)
SPECS: dict[str, tuple[str | bytes, int, str]] = {
    # reading and parsing
    "empty.yaml": ("", 2, "the file is empty"),
    "blank.yaml": ("  \n\n\t\n", 2, "empty"),
    "binary.yaml": (b"\xff\xfe\x00garbage\x80", 2, "not UTF-8"),
    "bad_gzip.json.gz": (b"\x1f\x8b\x08\x00garbage", 2, "corrupt gzip"),
    "gzip_of_garbage.json.gz": (gzip.compress(b"{{{"), 2, "invalid"),
    "unclosed.yaml": ("name: x\ntasks: [\n", 2, "invalid YAML"),
    "tab_indent.yaml": ("name: x\ntasks:\n\t- {name: a}\n", 2, "invalid YAML"),
    "unbalanced.json": ('{"name": "x", "tasks": [}', 2, "invalid JSON"),
    "top_list.yaml": ("- a\n- b\n", 2, "not a workflow format"),
    "top_scalar.yaml": ("42\n", 2, "not a workflow format"),
    "top_null.json": ("null", 2, "not a workflow format"),
    "xml_broken.xml": ("<Jobs><Job name='a'>", 2, "invalid XML"),
    "xml_other_root.xml": ("<html><body/></html>", 2, "root <html>"),
    "xml_billion_laughs.xml": (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + "".join(
            f'<!ENTITY {c} "{("&" + p + ";") * 10}">'
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "]><Jobs>&i;</Jobs>",
        2,
        "XML",
    ),
    "xml_external_entity.xml": (
        '<?xml version="1.0"?><!DOCTYPE j [<!ENTITY x SYSTEM "file:///etc/passwd">]><Jobs>&x;</Jobs>',
        2,
        "XML",
    ),
    # amplification and depth
    "alias_bomb.yaml": (bomb(9), 2, "YAML aliases expand"),
    "alias_bomb_labels.yaml": (
        bomb(8).replace("meta: {x: *l7}", "labels: *l7"),
        2,
        "YAML aliases expand",
    ),
    "deep.json": (deep_json(100_000), 2, "nested too deeply"),
    "deep_meta.json": (deep_json(5_000), 2, "nested too deeply"),
    "deep_flow.yaml": (
        "name: d\ntasks: []\nmeta: " + "[" * 100_000 + "]" * 100_000 + "\n",
        2,
        "nesting depth",
    ),
    "deep_blocks.yaml": (deep_yaml_blocks(3_000), 2, "nesting depth"),
    "sweep_billion.yaml": (
        native('[{name: "t{i}", foreach: {i: "1:1000000000"}, cmd: "echo {i}"}]'),
        2,
        "1,000,000,000 tasks",
    ),
    "sweep_product.yaml": (
        native('[{name: "t{i}_{j}", foreach: {i: "1:100000", j: "1:100000"}, cmd: x}]'),
        2,
        "10,000,000,000 tasks",
    ),
    "sweep_total.yaml": (
        native(
            '[{name: "a{i}", foreach: {i: "1:1500000"}, cmd: x}, {name: "b{i}", foreach: {i: "1:1500000"}, cmd: x}]'
        ),
        2,
        "the workflow expands to 3,000,000 tasks",
    ),
    "sweep_huge_bound.yaml": (
        native('[{name: "t{i}", foreach: {i: "1:99999999999999999999999"}, cmd: x}]'),
        2,
        "at most 15 digits",
    ),
    "sweep_step_zero.yaml": (
        native('[{name: "t{i}", foreach: {i: "1:10:0"}, cmd: x}]'),
        2,
        "step must not be 0",
    ),
    "sweep_zip_unequal.yaml": (
        native('[{name: "t{i}{j}", foreach: {i: [1, 2], j: [1]}, mode: zip, cmd: x}]'),
        2,
        "zip needs",
    ),
    "sweep_not_mapping.yaml": (native('[{name: "t{i}", foreach: [1, 2], cmd: x}]'), 2, "foreach"),
    "sweep_bad_param.yaml": (
        native('[{name: "t", foreach: {"a-b": [1]}, cmd: x}]'),
        2,
        "not an identifier",
    ),
    "sweep_dict_values.yaml": (
        native('[{name: "t{i}", foreach: {i: [{a: 1}]}, cmd: x}]'),
        2,
        "scalars",
    ),
    "sweep_unknown_param.yaml": (native('[{name: "t{j}", foreach: {i: [1]}, cmd: x}]'), 2, "t{j}"),
    "sweep_empty.yaml": (native('[{name: "t{i}", foreach: {i: []}, cmd: x}]'), 2, "no values"),
    # names
    "name_newline.yaml": (native('[{name: "prep\\ntouch PWNED", cmd: x}]'), 2, "control character"),
    "name_nul.json": (
        '{"name": "n", "tasks": [{"name": "a\\u0000b", "cmd": "x"}]}',
        2,
        "control character",
    ),
    "name_escape.yaml": (native('[{name: "a\\e[31mred", cmd: x}]'), 2, "control character"),
    "name_unicode_c1.json": (
        '{"name": "n", "tasks": [{"name": "caf\u00e9\u0085", "cmd": "x"}]}',
        2,
        "control",
    ),
    "name_del.json": (
        '{"name": "n", "tasks": [{"name": "a\\u007f", "cmd": "x"}]}',
        2,
        "control character",
    ),
    "label_control.yaml": (
        native('[{name: a, cmd: x, labels: ["ok", "bad\\r"]}]'),
        2,
        "label 'bad\\r'",
    ),
    "workflow_name_control.yaml": (
        'name: "wf\\nx"\ntasks: [{name: a, cmd: x}]\n',
        2,
        "workflow name",
    ),
    "name_empty.yaml": (native('[{name: "", cmd: x}]'), 2, "name"),
    "name_number.yaml": (native("[{name: 7, cmd: x}]"), 2, "name"),
    "duplicate_names.yaml": (
        native("[{name: a, cmd: x}, {name: a, cmd: y}]"),
        2,
        "duplicate task name",
    ),
    "sweep_label_control.yaml": (
        native('[{name: "t{i}", foreach: {i: ["a\\tb"]}, cmd: x}]'),
        2,
        "control character",
    ),
    # numbers
    "cpu_nan.yaml": (native("[{name: a, cmd: x, resources: {cpu: .nan}}]"), 2, "finite"),
    "mem_inf.yaml": (native("[{name: a, cmd: x, resources: {mem: .inf}}]"), 2, "finite"),
    "cpu_negative.yaml": (native("[{name: a, cmd: x, resources: {cpu: -1}}]"), 2, "at least 0"),
    "cpu_string_nan.yaml": (native("[{name: a, cmd: x, resources: {cpu: 'nan'}}]"), 2, "finite"),
    "json_nan.json": (
        '{"name": "n", "tasks": [{"name": "a", "cmd": "x", "resources": {"cpu": NaN}}]}',
        2,
        "finite",
    ),
    "json_overflow.json": (
        '{"name": "n", "tasks": [{"name": "a", "cmd": "x", "timeout": 1e400}]}',
        2,
        "finite",
    ),
    "timeout_negative.yaml": (native("[{name: a, cmd: x, timeout: -5}]"), 2, "timeout"),
    "retries_negative.yaml": (native("[{name: a, cmd: x, retries: -1}]"), 2, "retries"),
    "retries_fraction.yaml": (native("[{name: a, cmd: x, retries: 1.5}]"), 2, "whole number"),
    "priority_text.yaml": (native("[{name: a, cmd: x, priority: high}]"), 2, "priority"),
    "cpu_bool.yaml": (native("[{name: a, cmd: x, resources: {cpu: true}}]"), 2, "cpu"),
    "duration_negative.yaml": (native("[{name: a, cmd: x, duration: -3}]"), 2, "duration"),
    "limits_nan.yaml": (native(f"[{OK_TASK}]", "limits: {tape: .nan}\n"), 2, "finite"),
    # structure
    "tasks_mapping.yaml": ("name: x\ntasks: {a: 1}\n", 2, "list of tasks"),
    "task_scalar.yaml": (native("[3]"), 2, "expected a mapping"),
    "no_cmd.yaml": (native("[{name: a}]"), 2, "'cmd' is required"),
    "cmd_empty.yaml": (native("[{name: a, cmd: ''}]"), 2, "cmd"),
    "cmd_list_mixed.yaml": (native("[{name: a, cmd: [ls, {x: 1}]}]"), 2, "cmd"),
    "env_bool.yaml": (native("[{name: a, cmd: x, env: {A: yes}}]"), 2, "env.A"),
    "env_bad_name.yaml": (
        native("[{name: a, cmd: x, env: {'A=B': '1'}}]"),
        2,
        "invalid variable name",
    ),
    "resource_bad_name.yaml": (
        native("[{name: a, cmd: x, resources: {'a b': 1}}]"),
        2,
        "invalid resource name",
    ),
    "unknown_field.yaml": (native("[{name: a, cmd: x, retires: 2}]"), 2, "did you mean 'retries'"),
    "defaults_scalar.yaml": (native("[{name: a, cmd: x}]", "defaults: 3\n"), 2, "defaults"),
    "cycle.yaml": (
        native("[{name: a, cmd: x, needs: [b]}, {name: b, cmd: x, needs: [a]}]"),
        2,
        "cycle: a -> b -> a",
    ),
    "self_need.yaml": (native("[{name: a, cmd: x, needs: [a]}]"), 2, "cycle"),
    "unknown_need.yaml": (native("[{name: a, cmd: x, needs: [nope]}]"), 2, "nope"),
    "two_writers.yaml": (
        native("[{name: a, cmd: x, outputs: [f]}, {name: b, cmd: x, outputs: [f]}]"),
        2,
        "f",
    ),
    # O2DPG
    "o2dpg_stages_scalar.json": ('{"stages": "x"}', 2, "not a workflow format"),
    "o2dpg_no_name.json": (o2dpg({"cmd": "x"}), 2, "name"),
    "o2dpg_name_newline.json": (o2dpg({"name": "a\nrm -rf x", "cmd": "x"}), 2, "control character"),
    "o2dpg_cpu_nan.json": (
        '{"stages": [{"name": "a", "cmd": "x", "resources": {"cpu": NaN}}]}',
        2,
        "finite",
    ),
    "o2dpg_unknown_need.json": (o2dpg({"name": "a", "cmd": "x", "needs": ["b"]}), 2, "'b'"),
    "o2dpg_retry_negative.json": (
        o2dpg({"name": "a", "cmd": "x", "retry_count": -2}),
        2,
        "retry_count",
    ),
    "o2dpg_no_cmd.json": (o2dpg({"name": "a"}), 2, "cmd"),
    # Pegasus, WfFormat
    "pegasus_jobs_scalar.yml": ('pegasus: "5.0"\nname: p\njobs: 3\n', 2, "jobs"),
    "pegasus_job_no_id.yml": (
        'pegasus: "5.0"\nname: p\njobs: [{type: job, name: x, arguments: []}]\n',
        2,
        "id",
    ),
    "pegasus_memory_text.yml": (
        'pegasus: "5.0"\nname: p\njobs: [{type: job, id: j, name: x, arguments: [], profiles: {pegasus: {memory: lots}}}]\n',
        2,
        "memory",
    ),
    "wfformat_no_version.json": (
        json.dumps({k: v for k, v in WFFORMAT.items() if k != "schemaVersion"}),
        2,
        "schemaVersion",
    ),
    "wfformat_negative_runtime.json": (
        json.dumps(
            {
                **WFFORMAT,
                "workflow": {
                    "specification": {
                        "tasks": [{"id": "t", "name": "t", "parents": [], "children": []}],
                        "files": [],
                    },
                    "execution": {"tasks": [{"id": "t", "runtimeInSeconds": -1}]},
                },
            }
        ),
        2,
        "runtimeInSeconds",
    ),
}


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile_specs")
    for name, (content, _, _) in SPECS.items():
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hostile_spec(spec_dir: Path, name: str) -> None:
    _, code, fragment = SPECS[name]
    check(herd("validate", name, cwd=spec_dir), code, fragment)


def test_the_suite_has_sixty_spec_files_and_thirty_command_lines() -> None:
    assert len(SPECS) >= 60 and len(LINES) >= 30


# --- command lines ------------------------------------------------------------------------------

OK_SPEC = "name: ok\ntasks:\n- {name: a, cmd: 'echo a > a.txt', outputs: [a.txt]}\n- {name: b, cmd: 'true', needs: [a]}\n"

#: (arguments, exit code, a fragment of the message); run in a folder holding ok.yaml, in which
#: herd ran it once, a file called file.txt and an empty folder fresh/
LINES: list[tuple[tuple[str, ...], int, str]] = [
    (("run", "ok.yaml", "--cpu-limit", "nan"), 2, "--cpu-limit"),
    (("run", "ok.yaml", "--cpu-limit", "inf"), 2, "finite"),
    (("run", "ok.yaml", "--cpu-limit", "-1"), 2, "at least 0"),
    (("run", "ok.yaml", "--mem-limit", "lots"), 2, "--mem-limit"),
    (("run", "ok.yaml", "--gpu-limit", "-1"), 2, "--gpu-limit"),
    (("run", "ok.yaml", "--limit", "x=nan"), 2, "--limit"),
    (("run", "ok.yaml", "--limit", "=3"), 2, "--limit"),
    (("run", "ok.yaml", "--limit", "tape"), 2, "--limit"),
    (("run", "ok.yaml", "--limit", "a b=1"), 2, "--limit"),
    (("run", "ok.yaml", "-j", "0"), 2, "-j"),
    (("run", "ok.yaml", "-j", "1.5"), 2, "whole number"),
    (("run", "ok.yaml", "--mem-kill-ratio", "nan"), 2, "--mem-kill-ratio"),
    (("run", "ok.yaml", "--mem-kill-ratio", "-2"), 2, "--mem-kill-ratio"),
    (("run", "ok.yaml", "--max-tasks", "0"), 2, "--max-tasks"),
    (("validate", "ok.yaml", "--max-tasks", "1"), 2, "more than the limit of 1"),
    (("simulate", "ok.yaml", "--duration", "-1"), 2, "--duration"),
    (("simulate", "ok.yaml", "--duration", "nan"), 2, "--duration"),
    (("run",), 2, "name a workflow file"),
    (("run", "missing.yaml"), 2, "file not found"),
    (("run", "fresh"), 2, "is a directory"),
    (("frobnicate",), 2, "invalid choice"),
    (("run", "ok.yaml", "--no-such-flag"), 2, "unrecognized arguments"),
    (("run", "ok.yaml", "-C", "file.txt"), 3, "file.txt"),
    (("run", "ok.yaml", "-C", "/proc/herd-cannot-be-here"), 3, "/proc/herd-cannot-be-here"),
    (("graph", "ok.yaml", "-o", "/missing-dir/x.dot"), 2, "/missing-dir/x.dot"),
    (("script", "ok.yaml", "-o", "/missing-dir/x.sh"), 2, "/missing-dir/x.sh"),
    (
        ("simulate", "ok.yaml", "--duration", "1", "--schedule", "/missing-dir/s.json"),
        2,
        "/missing-dir/s.json",
    ),
    (("status", "-C", "fresh"), 2, "has not run anything"),
    (("status", "-w", "nope"), 2, "no workflow 'nope'"),
    (("provenance", "a", "--attempt", "0"), 2, "--attempt"),
    (("provenance", "nope"), 2, "nope"),
    (("analyze", "-n", "-1"), 2, "--lines"),
    (("plot", "--run", "0", "-o", "x.png"), 2, "--run"),
    (("reset", "zzz", "ok.yaml"), 2, "no task matches zzz"),
    (("run", "ok.yaml", "-tt", "("), 2, "("),
    (("why", "nope", "-f", "ok.yaml"), 2, "nope"),
    (("run", "ok.yaml", "--policy", "random"), 2, "--policy"),
]


@pytest.fixture(scope="module")
def ran_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile_lines")
    (folder / "ok.yaml").write_text(OK_SPEC)
    (folder / "file.txt").write_text("not a folder\n")
    (folder / "fresh").mkdir()
    r = herd("run", "ok.yaml", "-q", cwd=folder)
    assert r.returncode == 0, r.stderr
    return folder


@pytest.mark.parametrize(
    ("args", "code", "fragment"), LINES, ids=[" ".join(a) for a, _, _ in LINES]
)
def test_hostile_command_line(
    ran_dir: Path, args: tuple[str, ...], code: int, fragment: str
) -> None:
    check(herd(*args, cwd=ran_dir), code, fragment)


def test_a_herd_folder_that_is_a_file_is_a_working_directory_error(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(OK_SPEC)
    (tmp_path / ".herd").write_text("not a folder\n")
    for args in (
        ("run", "ok.yaml"),
        ("reset", "a", "ok.yaml"),
        ("forget", "-w", "ok"),
        ("clean", "ok.yaml"),
    ):
        check(herd(*args, cwd=tmp_path), 3, ".herd")


def test_reset_takes_the_file_after_its_regexes_as_its_usage_reads(ran_dir: Path) -> None:
    r = herd("reset", "a", "b", "ok.yaml", cwd=ran_dir)
    assert r.returncode == 0 and r.stdout.startswith("reset 2 task(s)"), r.stdout + r.stderr
    again = herd("run", "ok.yaml", "--dry-run", cwd=ran_dir)
    assert "run   a" in again.stdout and "run   b" in again.stdout, again.stdout
