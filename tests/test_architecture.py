"""The engine's parts depend on each other in one direction only (docs/ARCHITECTURE.md), so a part
can be read, tested and replaced without the ones above it. Read from the source, imports inside
functions included."""
from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"
# lower first; a part may import only parts of a lower rank (data and model know nothing of each other)
RANK = {"storage": 0, "data": 1, "model": 1, "reading": 2, "training": 3, "runs": 4, "cli": 5, "__main__": 6}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def _part(path: Path) -> str:
    relative = path.relative_to(ENGINE).parts
    return relative[0] if len(relative) > 1 else path.stem


def test_every_part_imports_only_parts_below_it():
    wrong = []
    for path in sorted(ENGINE.rglob("*.py")):
        part = _part(path)
        if part == "__init__":
            continue
        for name in _imports(path):
            if name.startswith("engine."):
                other = name.split(".")[1]
                if other != part and RANK.get(other, 99) >= RANK[part]:
                    wrong.append(f"{path.relative_to(ENGINE)} imports {name}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_every_module_belongs_to_a_known_part():
    parts = {_part(p) for p in ENGINE.rglob("*.py")} - {"__init__"}
    assert parts <= set(RANK), f"parts without a place in the layering: {sorted(parts - set(RANK))}"


def test_the_engine_never_imports_streamlit_and_the_standalone_reader_imports_no_engine():
    for path in ENGINE.rglob("*.py"):
        assert not any(n.split(".")[0] == "streamlit" for n in _imports(path)), path
    for path in (ENGINE / "reading" / "standalone").glob("*.py"):
        assert not any(n.split(".")[0] in ("engine", "tensorflow", "keras", "cv2") for n in _imports(path)), path
