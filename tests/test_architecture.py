"""The tree's rules, checked on the source: imports run one way between the layers, no
module imports itself back through others, and nothing outside the env reaches into its
parts."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
# Folder -> import name; facetwin/ holds the foundation and, on top, the command line.
PACKAGES = {"facetwin": "facetwin", "sim": "facetwin.sim", "hardware": "facetwin.hardware",
            "envs": "facetwin.envs", "assets": "facetwin.assets", "agents": "facetwin.agents"}
# Each layer may import the layers listed for it (and itself); nothing else.
ALLOWED = {
    "foundation": set(),
    "sim": {"foundation"},
    "hardware": {"foundation"},
    "envs": {"foundation", "sim", "hardware"},
    "assets": {"foundation", "sim", "envs"},  # the scripts that make the face's files
    "agents": {"foundation", "sim", "hardware", "envs", "assets"},
    "cli": {"foundation", "sim", "hardware", "envs", "assets", "agents"},
}


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if folder == "facetwin" and parts[0] in PACKAGES:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("sim", "hardware", "envs", "assets", "agents", "cli"):
        return parts[1]
    return "foundation"


def imports(path: Path) -> set[str]:
    """Every facetwin module ``path`` imports, at its top or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if m.split(".")[0] == "facetwin"}


def test_imports_run_one_way_between_the_layers():
    known = modules()
    wrong = []
    for module, path in known.items():
        for target in imports(path) & known.keys():
            if layer(target) != layer(module) and layer(target) not in ALLOWED[layer(module)]:
                wrong.append(f"{module} ({layer(module)}) imports {target} ({layer(target)})")
    assert wrong == []


def test_no_module_imports_itself_back_through_others():
    known = modules()
    graph = {m: imports(p) & known.keys() - {m} for m, p in known.items()}
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(" -> ".join(path[path.index(n):] + [n]))
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_only_the_command_line_imports_hardware_from_the_foundation_package():
    known = modules()
    offenders = [m for m, p in known.items() if layer(m) == "foundation"
                 and any(layer(t) == "hardware" for t in imports(p))]
    assert offenders == []


def test_agents_and_the_command_line_use_the_env_not_its_parts():
    # An env's backend, twin, target model and renderer are its own; agents use its API
    # (reset, step, act, observe, features_of, ...) and the backend contract.
    reach_in = re.compile(
        r"\.backend\.|\.unwrapped\.\w|\.twin\.(?!at_|joints|linkage|mirror_of)"
        r"|(?<!facetwin\.)\b(?:env|base)\w*\.(?:backend|twin|targets|renderer|detector)\b")
    found = []
    for folder in (ROOT / "agents", ROOT / "facetwin"):
        for path in folder.rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if reach_in.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []
