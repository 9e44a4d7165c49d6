"""Lower rooms never import higher ones: every import in src/broadsheet, read with ast, against the order."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "broadsheet"

# Each room may import rooms of a lower rank only (rooms of one rank do not import each other).
ROOMS: dict[str, int] = {
    "broadsheet": 0,
    "errors": 0,
    "providers": 0,  # the package itself (__version__) and the bottom
    "config": 1,
    "db": 2,  # every SQLite connection, the migration runner, WAL checkpoints
    "content": 2,
    "tokens": 2,
    "render": 3,
    "audience": 3,
    "store": 4,
    "compose": 5,
    "transports": 6,
    "campaign": 7,
    "lint": 7,
    "events": 8,
    "publish": 8,
    "preview": 8,
    "usecases": 9,  # what a command does, with typed options and a Reporter (no argv, no print)
    "serve": 10,
    "commands": 11,
    "cli": 12,
    "__main__": 13,
}


def room_of(module: str) -> str:
    """``broadsheet.core.compose.fields`` → ``compose``; ``broadsheet`` and ``broadsheet.__version__`` → ``broadsheet``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__version__" else "broadsheet"


def module_name(path: Path, package: Path = PACKAGE) -> tuple[str, str]:
    """(module, the package relative imports start from) of a file under ``package``."""
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def imported(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, module) of every broadsheet module the file imports, at the top or inside a function."""
    _, package = module_name(path, root)
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            if node.module:
                found.append((node.lineno, ".".join([*base, node.module])))
            else:
                found.extend((node.lineno, ".".join([*base, alias.name])) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "broadsheet":
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "broadsheet")
    return found


def test_every_room_is_placed_in_the_order() -> None:
    rooms = {room_of(module_name(path)[0]) for path in PACKAGE.rglob("*.py")}
    assert rooms - set(ROOMS) == set(), "a new room: give it its rank in ROOMS and in docs/architecture.md"


def upward_imports(package: Path) -> list[str]:
    """``file:line: room imports module`` for every import of a room of the same or a higher rank."""
    violations = []
    for path in sorted(package.rglob("*.py")):
        room = room_of(module_name(path, package)[0])
        for line, target in imported(path, package):
            other = room_of(target)
            if other != room and ROOMS.get(other, 99) >= ROOMS[room]:
                violations.append(f"{path.relative_to(package)}:{line}: {room} imports {target}")
    return violations


def test_lower_rooms_never_import_higher_ones() -> None:
    assert upward_imports(PACKAGE) == []


def test_the_check_finds_upward_imports_of_every_form(tmp_path: Path) -> None:
    package = tmp_path / "broadsheet"
    (package / "compose").mkdir(parents=True)
    (package / "compose" / "__init__.py").write_text("from ..render import build\n")  # lower: fine
    (package / "compose" / "late.py").write_text("def f():\n    from ..campaign import runner\n")
    (package / "config.py").write_text(
        "import broadsheet.core.lint\nfrom . import errors\nfrom broadsheet.data.store import x\n"
    )
    assert upward_imports(package) == [
        "compose/late.py:2: compose imports broadsheet.usecases.campaign",
        "config.py:1: config imports broadsheet.core.lint",
        "config.py:3: config imports broadsheet.data.store",
    ]
