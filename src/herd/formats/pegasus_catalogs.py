"""The catalogs a Pegasus workflow uses, found as ``pegasus-plan`` finds them.

``pegasus-plan`` reads its properties (``--conf FILE``, else ``pegasus.properties`` in the
directory it runs in; ``-Dkey=value`` on its command line beats both) and the three catalogs from
the files they name — ``pegasus.catalog.replica.file``, ``pegasus.catalog.transformation.file``
and ``pegasus.catalog.site.file`` — by default ``replicas.yml``, ``transformations.yml`` and
``sites.yml`` in that directory. herd treats the workflow file's directory as the one
``pegasus-plan`` runs in. A catalog inlined in the workflow wins, entry by entry (a transformation
by name, a replica by lfn, a site by name), as Pegasus gives included entries precedence.

Only the YAML catalogs of Pegasus 5 are read: a ``pegasus.catalog.*`` type other than ``YAML``
(``File``, ``Text``, ``JDBCRC``, …) is reported and ignored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herd.formats.common import describe, fail, list_of_maps
from herd.formats.decoding import pyyaml
from herd.formats.loading import Setup
from herd.formats.pegasus_commands import parse_hooks
from herd.formats.pegasus_profiles import Profiles, Report, get_field, parse_profiles
from herd.formats.pegasus_staging import Replica, replica

#: catalog kind -> (the workflow's inline key, the list key inside, the default file name)
KINDS: dict[str, tuple[str, str, str]] = {
    "replica": ("replicaCatalog", "replicas", "replicas.yml"),
    "transformation": ("transformationCatalog", "transformations", "transformations.yml"),
    "site": ("siteCatalog", "sites", "sites.yml"),
}
#: how each kind's entries are told apart when an inline entry wins over a file's
_ENTRY_KEY = {"replica": "lfn", "transformation": "name", "site": "name"}
PROPERTIES = "pegasus.properties"


@dataclass
class Found:
    """The properties and the catalog files read, and what could not be honoured."""

    properties: dict[str, str]
    #: path -> (size, mtime in ns) of every file read: a kept workflow holds while they do
    files: dict[str, tuple[int, int]] = field(default_factory=dict)
    warnings: list[tuple[str, str, str]] = field(default_factory=list)


def properties(source: str, setup: Setup) -> Found:
    """The properties in effect for the workflow file ``source``."""
    conf = setup.conf or os.path.join(os.path.dirname(source) or ".", PROPERTIES)
    found = Found({})
    if setup.conf is not None or os.path.isfile(conf):
        text = _read(conf, source, "--conf" if setup.conf else PROPERTIES, found)
        found.properties.update(parse_properties(text))
    found.properties.update(setup.defines)
    return found


def parse_properties(text: str) -> dict[str, str]:
    """A Java properties file: ``key = value``, ``key: value`` or ``key value``; ``#``/``!``
    comments; a trailing backslash continues the line.

    >>> parse_properties("# c\\npegasus.catalog.replica.file = rc.yml\\na: b\\\\\\n  c")
    {'pegasus.catalog.replica.file': 'rc.yml', 'a': 'bc'}
    """
    found: dict[str, str] = {}
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        key, value = _split_property(line)
        found[key] = value
    if pending:
        key, value = _split_property(pending)
        found[key] = value
    return found


def _split_property(line: str) -> tuple[str, str]:
    for i, ch in enumerate(line):
        if ch in "=:" or ch.isspace():
            rest = line[i:].lstrip()
            if rest[:1] in ("=", ":"):
                rest = rest[1:]
            return line[:i], rest.strip()
    return line, ""


def catalog(
    kind: str, data: Mapping[str, Any], source: str, found: Found
) -> tuple[Any, str | None]:
    """The catalog of ``kind`` as the workflow's inline one merged over its file (inline entries
    win), and the file it was read from (None: inline only or none)."""
    inline_key, list_key, default = KINDS[kind]
    inline = data.get(inline_key)
    reference = None
    if isinstance(inline, Mapping) and "$ref" in inline:
        reference, inline = str(inline["$ref"]), None  # a catalog file named in the workflow
    prefix = f"pegasus.catalog.{kind}"
    kind_name = found.properties.get(prefix, "YAML")
    if kind_name.upper() != "YAML":
        message = f"{kind_name} catalogs are not read: herd reads Pegasus 5 YAML catalogs"
        found.warnings.append((f"property '{prefix}'", prefix, message))
        return inline, None
    named = found.properties.get(f"{prefix}.file", reference)
    base = os.path.dirname(source) or "."
    path = os.path.join(base, os.path.expanduser(named or default))
    if named is None and not os.path.isfile(path):
        return inline, None
    loaded = _catalog_file(path, list_key, source, f"{prefix}.file", found)
    return _merged(kind, inline, loaded, list_key), path


def _catalog_file(
    path: str, list_key: str, source: str, where: str, found: Found
) -> list[Mapping[str, Any]]:
    text = _read(path, source, where, found)
    lib, loader = pyyaml()
    try:
        data = lib.load(text, Loader=loader)
    except lib.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        fail(f"invalid YAML{at}", path, None, None, "fix the catalog file")
    if data is None:
        return []
    if not isinstance(data, Mapping):
        fail(f"expected a Pegasus catalog mapping, got {describe(data)}", path, None, None)
    entries = data.get(list_key) or []
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        fail(f"expected a list of mappings, got {describe(entries)}", path, None, list_key)
    return entries


def _merged(
    kind: str, inline: Any, loaded: list[Mapping[str, Any]], list_key: str
) -> dict[str, Any]:
    if not isinstance(inline, Mapping):
        return {list_key: loaded}
    own = inline.get(list_key) or []
    if not isinstance(own, list):
        return dict(inline)  # the workflow's own error is reported by its reader
    key = _ENTRY_KEY[kind]
    names = {e.get(key) for e in own if isinstance(e, Mapping)}
    return {**inline, list_key: [*own, *(e for e in loaded if e.get(key) not in names)]}


def _read(path: str, source: str, where: str, found: Found) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
        st = os.stat(path)
    except FileNotFoundError:
        fail(f"'{path}' does not exist", source, None, where, "create it or name another file")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read '{path}': {exc}", source, None, where)
    found.files[os.path.abspath(path)] = (st.st_size, st.st_mtime_ns)
    return text


# --- catalogs inside the workflow -----------------------------------------------------------

#: sites whose jobs herd can run in place: this machine, and the pool Pegasus submits local jobs to
LOCAL_SITES = frozenset({"local", "condorpool"})


@dataclass(frozen=True)
class Transformation:
    name: str
    namespace: str | None
    version: str | None
    pfn: str
    stageable: bool
    site: str
    sha256: str | None
    #: profile layers, lowest precedence first: the transformation's, then its site entry's
    layers: tuple[Profiles, ...]
    hooks: tuple[tuple[str, str], ...]


def read_sites(raw: Any, source: str, report: Report) -> dict[str, Profiles]:
    """Profiles of the local sites; every other site is reported as ignored."""
    if raw is None:
        return {}
    sites = list_of_maps(
        get_field(raw, "sites", source, "siteCatalog"), source, "siteCatalog.sites"
    )
    found: dict[str, Profiles] = {}
    for site in sites:
        name = str(site.get("name", ""))
        where = f"site '{name}'"
        for grid in site.get("grids") or ():
            contact = grid.get("contact") if isinstance(grid, Mapping) else grid
            report.warn(where, "grids", f"grid contact '{contact}' ignored: herd runs jobs here")
        if name not in LOCAL_SITES:
            report.warn(where, "siteCatalog", "remote site ignored: herd runs every job here")
            continue
        found[name] = parse_profiles(
            site.get("profiles"), source, None, f"{where}.profiles", report
        )
    return found


def read_transformations(raw: Any, source: str, report: Report) -> dict[str, list[Transformation]]:
    if raw is None:
        return {}
    field_name = "transformationCatalog.transformations"
    items = list_of_maps(
        get_field(raw, "transformations", source, "transformationCatalog"), source, field_name
    )
    if isinstance(raw, Mapping) and raw.get("containers"):
        message = "containers are not supported: herd runs executables on this machine"
        report.warn("workflow", "transformationCatalog.containers", message)
    catalog: dict[str, list[Transformation]] = {}
    for item in items:
        tf = _transformation(item, source, report)
        catalog.setdefault(tf.name, []).append(tf)
    return catalog


def _transformation(raw: Mapping[str, Any], source: str, report: Report) -> Transformation:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        fail("a transformation needs a name", source, None, "transformationCatalog.transformations")
    where = f"transformation '{name}'"
    entry = _pick_site(raw, name, source, report)
    pfn = entry.get("pfn")
    if not isinstance(pfn, str) or not pfn:
        fail("a transformation site needs a pfn", source, None, f"{where}.sites.pfn")
    if entry.get("container"):
        report.warn(where, "sites.container", "containers are not supported: runs on this machine")
    if raw.get("requires"):
        report.warn(where, "requires", "required transformations are not staged by herd")
    layers = (
        parse_profiles(raw.get("profiles"), source, None, f"{where}.profiles", report),
        parse_profiles(entry.get("profiles"), source, None, f"{where}.sites.profiles", report),
    )
    return Transformation(
        name=name,
        namespace=raw.get("namespace"),
        version=raw.get("version"),
        pfn=pfn,
        stageable=entry.get("type") == "stageable",
        site=str(entry.get("name", "")),
        sha256=replica(entry, pfn).sha256,
        layers=layers,
        hooks=parse_hooks(raw.get("hooks"), source, None, f"{where}.hooks"),
    )


def _pick_site(raw: Mapping[str, Any], name: str, source: str, report: Report) -> Mapping[str, Any]:
    where = f"transformation '{name}'"
    entries = list_of_maps(raw.get("sites"), source, f"{where}.sites")
    if not entries:
        fail("a transformation needs at least one site", source, None, f"{where}.sites")
    local = [e for w in ("local", "condorpool") for e in entries if e.get("name") == w]
    if not local:
        message = f"only catalogued for site '{entries[0].get('name')}': herd runs its pfn here"
        report.warn(where, "sites", message)
    return local[0] if local else entries[0]


def read_replicas(raw: Any, source: str, report: Report) -> dict[str, Replica]:
    """lfn → its replica, preferring the one at site ``local``."""
    if raw is None:
        return {}
    items = list_of_maps(
        get_field(raw, "replicas", source, "replicaCatalog"), source, "replicaCatalog.replicas"
    )
    replicas: dict[str, Replica] = {}
    for item in items:
        lfn = item.get("lfn")
        if not isinstance(lfn, str) or not lfn:
            fail("a replica needs an lfn", source, None, "replicaCatalog.replicas")
        if item.get("regex"):
            report.warn(
                f"replica '{lfn}'", "regex", "regular-expression replicas are not supported"
            )
            continue
        pfns = list_of_maps(item.get("pfns"), source, f"replicaCatalog '{lfn}'.pfns")
        chosen = next((p for p in pfns if p.get("site") == "local"), pfns[0] if pfns else None)
        if chosen is not None and isinstance(chosen.get("pfn"), str):
            replicas[lfn] = replica(item, chosen["pfn"])
    return replicas
