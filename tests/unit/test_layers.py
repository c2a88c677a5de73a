"""Imports point down the layers only (the rule is written out in docs/development.md).

Every module of ``iot_jobs_local`` belongs to a part: a package (``jobs``, ``engine``, ...) or a
top-level module (``service``, ``cli``, ``state_dir``, ``clock``). A part may import itself and the
parts listed for it here, nothing else; ``jobs`` (the pure rules) imports no I/O module at all.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "iot_jobs_local"

#: Each part and what it may import, top of the stack first.
ALLOWED: dict[str, set[str]] = {
    "__main__": {"cli"},
    "cli": {"control", "service", "state_dir", "identity", "engine", "store", "jobs", "broker"},
    "testing": {"cli", "control", "state_dir"},
    "control": {"state_dir"},
    "service": {
        "state_dir",
        "clock",
        "request_log",
        "broker",
        "http_api",
        "mqtt",
        "identity",
        "engine",
        "store",
        "jobs",
    },
    "request_log": {"http_api", "mqtt"},
    "state_dir": {"identity"},
    "broker": {"identity", "mqtt"},
    "http_api": {"wire", "identity", "engine", "store", "jobs"},
    "mqtt": {"wire", "engine", "jobs"},
    "wire": {"engine", "jobs"},
    "identity": {"store", "jobs"},
    "engine": {"store", "jobs", "clock"},
    "store": {"jobs"},
    "clock": set(),
    "jobs": set(),
}

#: Standard-library modules that do I/O or read the clock: never in the pure rules.
IO_MODULES = {
    "asyncio",
    "io",
    "logging",
    "os",
    "pathlib",
    "random",
    "secrets",
    "select",
    "shutil",
    "socket",
    "sqlite3",
    "ssl",
    "subprocess",
    "sys",
    "threading",
    "time",
    "uuid",
}


def part_of(module: str) -> str:
    """``iot_jobs_local.engine.core`` -> ``engine``; ``iot_jobs_local.service`` -> ``service``."""
    return module.split(".")[1]


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if len(parts) > 1:
            out.append((".".join(parts), path))
    return out


def imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, relative ones resolved."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from . import x` may name a submodule: check it as one.
            names = [f"{target}.{alias.name}" for alias in node.names] if not node.module else [target]
            found += [(node.lineno, name) for name in names]
    return found


MODULES = modules()


def test_every_part_is_known() -> None:
    assert {part_of(m) for m, _ in MODULES} <= set(ALLOWED)


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_down(module: str, path: Path) -> None:
    mine = part_of(module)
    wrong = []
    for line, target in imports(module, path):
        if target == PACKAGE or not target.startswith(PACKAGE + "."):
            continue
        theirs = part_of(target)
        if theirs != mine and theirs not in ALLOWED[mine]:
            wrong.append(f"{path.relative_to(SRC)}:{line} imports {target} ({mine} may not import {theirs})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("module", "path"), [(m, p) for m, p in MODULES if part_of(m) == "jobs"], ids=lambda v: str(v).rsplit("/", 1)[-1]
)
def test_the_rules_do_no_io(module: str, path: Path) -> None:
    io = [
        f"{path.name}:{line} imports {target}"
        for line, target in imports(module, path)
        if target.split(".")[0] in IO_MODULES
    ]
    assert not io, "\n".join(io)
    assert ".now(" not in path.read_text() and "utcnow(" not in path.read_text()


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    """The checker itself: an upward import in a scratch module is found."""
    scratch = tmp_path / PACKAGE / "jobs" / "bad.py"
    scratch.parent.mkdir(parents=True)
    scratch.write_text("from ..engine import Engine\nimport sqlite3\n")
    found = imports(f"{PACKAGE}.jobs.bad", scratch)
    assert (1, f"{PACKAGE}.engine") in found
    assert part_of(found[0][1]) not in ALLOWED["jobs"]
    assert (2, "sqlite3") in found


#: Between packages: what each may import of the others (a module list means only those modules).
PACKAGE_ALLOWED: dict[str, dict[str, set[str] | None]] = {
    # The agent reuses the console's connection, data plane, settings and flags; --local reaches
    # iot_jobs_local only through iot_jobs.local, as the console does.
    "iot_jobs_agent": {"iot_jobs": {"cli", "config", "connection", "data_plane", "errors", "settings", "version"}},
    # The fleet finds or starts the local service as the console does (iot_jobs.local), shows the
    # console's rollout view, and speaks MQTT with the service's pure codec (iot_jobs_local.mqtt.codec).
    "iot_jobs_fleet": {
        "iot_jobs": {"errors", "local", "rollout", "settings", "version"},
        "iot_jobs_local": {"mqtt"},
    },
}


def package_modules(package: str) -> list[tuple[str, Path]]:
    out = []
    for path in sorted((SRC / package).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append((".".join(parts), path))
    return out


@pytest.mark.parametrize(
    ("module", "path"),
    [mp for package in PACKAGE_ALLOWED for mp in package_modules(package)],
    ids=lambda v: str(v).rsplit("/", 1)[-1],
)
def test_packages_import_only_what_they_may(module: str, path: Path) -> None:
    mine = module.split(".")[0]
    allowed = PACKAGE_ALLOWED[mine]
    wrong = []
    for line, target in imports(module, path):
        top, _, rest = target.partition(".")
        if top == mine or not top.startswith("iot_jobs"):
            continue
        if top not in allowed:
            wrong.append(f"{path.name}:{line} imports {target} ({mine} may not import {top})")
            continue
        modules_allowed = allowed[top]
        if modules_allowed is not None and rest.split(".")[0] not in modules_allowed:
            wrong.append(f"{path.name}:{line} imports {target} (not one of {sorted(modules_allowed)})")
    assert not wrong, "\n".join(wrong)


#: The rollout view reads boto3 responses handed to it: it imports nothing else of the project, and
#: its view model (everything but the polling loop and the sinks that write) does no I/O.
ROLLOUT = "iot_jobs.rollout"
ROLLOUT_IO = {"watch", "sinks"}


@pytest.mark.parametrize(
    ("module", "path"),
    [mp for mp in package_modules("iot_jobs") if mp[0].startswith(ROLLOUT)],
    ids=lambda v: str(v).rsplit("/", 1)[-1],
)
def test_the_rollout_view_stands_alone(module: str, path: Path) -> None:
    wrong = []
    for line, target in imports(module, path):
        top = target.split(".")[0]
        if top in ("boto3", "botocore", "awsiot", "awscrt", "prompt_toolkit") or (
            top.startswith("iot_jobs") and not target.startswith(ROLLOUT)
        ):
            wrong.append(f"{path.name}:{line} imports {target}")
        if module.rsplit(".", 1)[-1] not in ROLLOUT_IO and top in IO_MODULES:
            wrong.append(f"{path.name}:{line} imports {target} (the view model does no I/O)")
    assert not wrong, "\n".join(wrong)
    if module.rsplit(".", 1)[-1] not in ROLLOUT_IO:
        assert not re.search(r"\.now\(|utcnow\(|\btime\.(time|monotonic)\(", path.read_text())
