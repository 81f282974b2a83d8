"""The app's modules keep the house rules their docstrings state.

- Imports run one way: app.py is the entry point, and no module of the app imports it;
  the desk (desk.py) builds on its door (auth.py), both on what every handler shares (web.py).
- store.py owns the database: no other module of the app runs a SQL statement itself.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODULES = sorted(ROOT.glob("*.py"))


def parsed(path):
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imported_names(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def sql_calls(tree):
    """Lines that call .execute/.executemany/.executescript on anything."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("execute", "executemany", "executescript"):
                yield node.lineno


def test_the_app_modules_are_found():
    names = {path.name for path in MODULES}
    assert {"app.py", "web.py", "auth.py", "desk.py", "store.py"} <= names


def test_no_module_of_the_app_imports_the_entry_point():
    importers = [path.name for path in MODULES if path.name != "app.py" and "app" in imported_names(parsed(path))]
    assert importers == []


def test_the_web_layers_import_downwards_only():
    above = {"web.py": {"app", "auth", "desk"}, "auth.py": {"app", "desk"}, "desk.py": {"app"}}
    upward = {name: sorted(set(imported_names(parsed(ROOT / name))) & banned) for name, banned in above.items()}
    assert upward == {"web.py": [], "auth.py": [], "desk.py": []}


def test_every_sql_statement_is_in_store():
    elsewhere = {
        path.name: lines for path in MODULES if path.name != "store.py" and (lines := list(sql_calls(parsed(path))))
    }
    assert elsewhere == {}
