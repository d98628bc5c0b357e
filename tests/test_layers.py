"""The house rules of imports, read from the source: model/ and storage/ never import Slack code or each other (nor
bot/), and no module imports its way back to itself, counting imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("bot", "model", "storage")
SLACK = ("slack_bolt", "slack_sdk")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path) -> set[str]:
    """Every module name an import statement in the file names (at any depth, relative imports resolved)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def ours(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    return {m: {t for n in _imports(p) if (t := ours(n)) and t != m} for m, p in modules.items()}


def test_model_and_storage_never_import_slack_bot_or_each_other() -> None:
    forbidden = {"model": ("bot", "storage", *SLACK), "storage": ("bot", "model", *SLACK)}
    broken = [(str(path.relative_to(REPO)), name) for module, path in _modules().items()
              for name in _imports(path) if name.split(".")[0] in forbidden.get(module.split(".")[0], ())]  # fmt: skip
    assert broken == []


def test_serving_never_reaches_into_training() -> None:
    """model/writing/ (what writes a copy, in the bot and on the GPU host) never imports model/training/, at any
    depth: what both need (an adapter folder's info, corpus standings, the reward's scoring half) lives below."""
    writing = {module: path for module, path in _modules().items() if module.startswith("model.writing")}
    assert "model.writing.writer" in writing
    broken = sorted(
        (str(path.relative_to(REPO)), name)
        for path in writing.values()
        for name in _imports(path)
        if name.split(".")[:2] == ["model", "training"]
    )
    assert broken == []


def test_no_module_imports_its_way_back_to_itself() -> None:
    graph = _graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
    assert (
        "bot.learning.tune" not in graph["bot.learning.retrain"]
    )  # the circle issue 18 named: retrain now reads bot.learning.train_config


def test_only_the_composition_root_and_the_serve_command_reach_into_slack() -> None:
    # bot/slack/ is a transport: the CLI, the learning loop and the report never depend on it (issue 18).
    graph = _graph()
    reaching = sorted(m for m, targets in graph.items() if not m.startswith("bot.slack")
                      and any(t.startswith("bot.slack") for t in targets))  # fmt: skip
    assert reaching == ["bot.cli.main", "bot.composition"]
