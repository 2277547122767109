"""The code's structure: each fact in one place, no import cycle, settings read in one module.

These read the source tree (AST) and the dbt project's files, not the running warehouse, so they
state the rules of issue "one home for each fact" as checks that fail when a change breaks them.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from orchestration import settings
from orchestration.raw_tables import RAW_TABLES

PACKAGE = settings.PROJECT_ROOT / "orchestration"


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(settings.PROJECT_ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported orchestration module, at module level?) for every import in the file."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from orchestration.x import y` imports module orchestration.x.y when y is a module
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module for a in node.names
            ]
        for name in names:
            if name.split(".")[0] == "orchestration":
                found.append((name, id(node) in top_level))
    return found


def _import_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        targets = set()
        for name, _ in _imports(path):
            while name not in MODULES and "." in name:
                name = name.rsplit(".", 1)[0]
            if name != module and name != "orchestration":
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A list of modules that import each other in a ring, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if state.get(nxt) is None:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_two_modules_import_each_other_directly_or_indirectly():
    assert find_cycle(_import_graph()) is None


def test_the_cycle_finder_finds_a_ring():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_real_code_never_imports_the_demo_generators():
    """Only demo/ itself, and the demo branch (a function-level import) of the ingest assets, import demo/."""
    offenders = []
    for module, path in MODULES.items():
        if module.startswith("orchestration.demo"):
            continue
        for name, top_level in _imports(path):
            if name.startswith("orchestration.demo"):
                allowed = not top_level and module in ("orchestration.assets.raw", "orchestration.assets.reference")
                if not allowed:
                    offenders.append(f"{module} imports {name}")
    assert offenders == []


def _reads_environment(path: Path) -> list[str]:
    hits = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "unsetenv"):
            hits.append(f"{path.name}:{node.lineno} os.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            hits += [f"{path.name}:{node.lineno} from os import {a.name}" for a in node.names if "env" in a.name]
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "EnvVar":
            hits.append(f"{path.name}:{node.lineno} EnvVar")
    return hits


def test_only_settings_reads_the_environment():
    allowed = {"orchestration.settings": "all", "orchestration.definitions": "EnvVar"}
    offenders = []
    for module, path in MODULES.items():
        hits = _reads_environment(path)
        if allowed.get(module) == "all":
            continue
        if allowed.get(module) == "EnvVar":
            hits = [h for h in hits if not h.endswith("EnvVar")]
        offenders += hits
    assert offenders == []


def test_the_environment_scan_sees_a_read(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nx = os.environ.get('A')\ny = os.getenv('B')\n")
    assert len(_reads_environment(sample)) == 2


# --- the raw contract and the dbt sources ----------------------------------------------------------


def dbt_source_columns() -> dict[str, list[tuple[str, str]]]:
    """Raw table -> [(column, data_type)] as the dbt sources yml declare them (schema raw)."""
    out = {}
    for path in (settings.DBT_PROJECT_DIR / "models").rglob("*.yml"):
        for source in (yaml.safe_load(path.read_text()) or {}).get("sources", []):
            if source.get("schema") != "raw":
                continue
            for table in source["tables"]:
                out[table["name"]] = [
                    (c["name"], str(c.get("data_type", "")).upper()) for c in table.get("columns", [])
                ]
    return out


def contract_differences(contract: dict, declared: dict[str, list[tuple[str, str]]]) -> list[str]:
    problems = []
    for name in sorted(set(contract) | set(declared)):
        if name not in declared:
            problems.append(f"{name}: in the raw contract, not in the dbt sources")
            continue
        if name not in contract:
            problems.append(f"{name}: in the dbt sources, not in the raw contract")
            continue
        expected = [(c, t.upper()) for c, t in contract[name].all_columns()]
        if expected != declared[name]:
            problems.append(f"{name}: contract {expected} != dbt {declared[name]}")
    return problems


def test_the_dbt_sources_declare_the_raw_contract_column_for_column():
    assert contract_differences(RAW_TABLES, dbt_source_columns()) == []


def test_a_disagreement_between_contract_and_dbt_sources_is_found():
    declared = dbt_source_columns()
    retyped = {**declared, "calls_for_service": [(c, "VARCHAR") for c, _ in declared["calls_for_service"]]}
    assert any(p.startswith("calls_for_service") for p in contract_differences(RAW_TABLES, retyped))
    missing = {k: v for k, v in declared.items() if k != "vital_signs"}
    assert contract_differences(RAW_TABLES, missing) == ["vital_signs: in the raw contract, not in the dbt sources"]


def test_dbt_sources_are_named_by_system_and_staging_models_after_them():
    names = {}
    for path in (settings.DBT_PROJECT_DIR / "models").rglob("*.yml"):
        for source in (yaml.safe_load(path.read_text()) or {}).get("sources", []):
            names[source["name"]] = [t["name"] for t in source["tables"]]
    assert {"open_baltimore", "bchd_ems", "bchd_nhp", "bnia", "reference"} <= set(names)
    staging = sorted(p.stem for p in (settings.DBT_PROJECT_DIR / "models" / "staging").rglob("stg_*.sql"))
    for model in staging:
        source, _, entity = model.removeprefix("stg_").partition("__")
        assert source in names, f"{model}: no source named {source}"
        sql = next((settings.DBT_PROJECT_DIR / "models").rglob(f"{model}.sql")).read_text()
        assert f"source('{source}'," in sql, f"{model} reads another source than {source}"


def test_every_model_imports_what_it_reads_in_ctes_first():
    """jaffle-shop style: a ref()/source() appears only as `select * from {{ ref(...) }}` in a CTE."""
    offenders = []
    for path in (settings.DBT_PROJECT_DIR / "models").rglob("*.sql"):
        for line in path.read_text().splitlines():
            if ("ref(" in line or "source(" in line) and "{{" in line:
                stripped = line.strip()
                if not stripped.startswith("select * from {{"):
                    offenders.append(f"{path.name}: {stripped}")
    assert offenders == []


# --- one set of defaults -----------------------------------------------------------------------------


def test_scan_defaults_are_stated_once(tmp_path):
    from orchestration.assets.surveillance import SurveillanceConfig
    from orchestration.surveillance.__main__ import build_parser, resolve
    from orchestration.surveillance.policy import POLICY
    from orchestration.surveillance.scan import ScanParameters

    defaults = ScanParameters()
    config = SurveillanceConfig()
    assert config.scan_parameters() == ScanParameters(**{**vars(defaults), "workers": 1, "batch": defaults.batch})
    assert (config.spike_p, config.report_p, config.study_days) == (POLICY.spike_p, POLICY.report_p, POLICY.study_days)
    args = build_parser().parse_args(["scan", "--cas", "c", "--geo", "g", "--start", "s", "--end", "e", "--json", "j"])
    # the CLI states no default of its own: options left out resolve to ScanParameters'
    assert all(getattr(args, option) is None for option in ("max_days", "max_radius", "min_cases", "replications"))
    _, params, _ = resolve(args)
    assert params == defaults


def test_the_city_box_is_the_extent_widened_by_the_margin():
    from orchestration import sql_rules

    min_lon, min_lat, max_lon, max_lat = settings.city_extent()
    margin = float(settings.dbt_vars()["city_box_margin_deg"])

    def inside(lat: float, lon: float) -> bool:
        return duckdb.sql(f"select {sql_rules.inside_city(str(lat), str(lon))}").fetchone()[0]

    assert inside((min_lat + max_lat) / 2, (min_lon + max_lon) / 2)
    assert inside(min_lat - margin / 2, min_lon - margin / 2)
    assert not inside(min_lat - 2 * margin, min_lon)
    assert not inside(min_lat, max_lon + 2 * margin)


# --- the code location loads as `dagster dev` loads it -------------------------------------------------


@pytest.mark.slow
def test_the_code_location_loads_without_an_activated_virtualenv(tmp_path):
    """`.venv/bin/dagster` with no virtualenv on PATH, in dev mode, with a stale manifest (dbt must run)."""
    dagster = Path(sys.executable).parent / "dagster"
    if not dagster.exists():
        pytest.skip("dagster is not installed beside this Python")
    project = tmp_path / "project"
    shutil.copytree(
        settings.PROJECT_ROOT,
        project,
        ignore=shutil.ignore_patterns(".venv", "data", "target", "logs", ".git", "__pycache__", "*.egg-info"),
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path / "home"),
        "DAGSTER_IS_DEV_CLI": "1",
        "WAREHOUSE_DB": str(tmp_path / "w.duckdb"),
        "PYTHONPATH": str(project),
    }
    (tmp_path / "home").mkdir()
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (project / "dbt_project" / "target" / "manifest.json").exists()
    assert os.environ.get("DAGSTER_IS_DEV_CLI") is None


def test_dbt_and_dagster_cap_duckdb_memory_with_the_same_default():
    import re

    from orchestration import settings

    profile = (settings.DBT_PROJECT_DIR / "profiles.yml").read_text()
    match = re.search(r"memory_limit: \"\{\{ env_var\('DUCKDB_MEMORY_LIMIT', '([^']+)'\) \}\}\"", profile)
    assert match and match.group(1) == settings.DUCKDB_MEMORY_LIMIT_DEFAULT


def test_dbt_and_dagster_leave_out_the_same_compression_methods():
    import re

    from orchestration import settings

    profile = (settings.DBT_PROJECT_DIR / "profiles.yml").read_text()
    match = re.search(r"^\s+disabled_compression_methods: (\S+)$", profile, re.MULTILINE)
    assert match and match.group(1) == settings.DUCKDB_DISABLED_COMPRESSION


def test_every_dbt_test_is_a_dagster_check():
    """A dbt test Dagster does not see as an asset check still fails the dbt step, but is missing
    from the UI's checks and from the publication's audit. A singular test reading several
    models is attached to one by `meta: {dagster: {ref: {name: ...}}}`."""
    import json

    from dagster_dbt.asset_utils import get_asset_check_key_for_test

    from orchestration.assets.dbt import WarehouseTranslator, dbt_project

    manifest = json.loads(dbt_project.manifest_path.read_text())
    tests = [uid for uid, node in manifest["nodes"].items() if node["resource_type"] == "test"]
    unseen = [
        uid for uid in tests if get_asset_check_key_for_test(manifest, WarehouseTranslator(), uid, dbt_project) is None
    ]
    assert len(tests) > 150 and unseen == []


def test_dbt_commands_run_through_the_launcher_that_skips_the_last_collection(monkeypatch, capsys):
    """The dbt commands the project starts as processes (the manifest's parse) run `warehouse-dbt`:
    dbt's own command line (same output and exit status, here for a usage error), which freezes
    Python's objects before it exits (orchestration/dbt_launcher.py)."""
    import gc
    import subprocess
    import sys
    from pathlib import Path

    from orchestration import dbt_launcher, settings

    assert Path(settings.dbt_executable()) == Path(sys.executable).parent / "warehouse-dbt"
    ours, theirs = (
        subprocess.run([exe, "build", "--no-such-flag"], capture_output=True, text=True, check=False)
        for exe in (settings.dbt_executable(), str(Path(sys.executable).parent / "dbt"))
    )
    assert ours.returncode == theirs.returncode == 2
    assert "No such option '--no-such-flag'" in ours.stderr
    assert ours.stderr == theirs.stderr

    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    with pytest.raises(SystemExit) as exited:
        dbt_launcher.main(["build", "--no-such-flag"])
    assert exited.value.code == 2
    assert frozen == [True]
    assert "No such option" in capsys.readouterr().err
