"""Read the source: SQL is only ever parameterised, and stored data is only ever parsed as data.

* In the SQL modules (``lit_memory/backends/*_sql.py``) every f-string may splice in only fixed
  fragments: string literals, module constants built from literals, and locals built from
  those. A function argument, i.e. anything a caller could control, never reaches SQL text;
  ``%`` and ``.format`` are not used on SQL at all.
* In every module that executes SQL, the statement passed to ``execute``/``fetch``/... is a
  literal, a constant of the SQL module, or what one of its builders returned; never a string
  built on the spot.
* Nothing in the packages deserialises with pickle, marshal, shelve, YAML's loader, ``eval`` or
  ``exec``, LangChain's object reviver, or a JSON hook that builds objects.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import lit_memory

ROOT = Path(lit_memory.__file__).parent
PACKAGES = [ROOT, ROOT.parent / "integrations" / "langchain" / "lit_memory_langchain"]
SQL_MODULES = sorted((ROOT / "backends").glob("*_sql.py"))
EXECUTE = {
    "execute", "executemany", "executescript", "execute_fetchall", "execute_insert", "fetch",
    "fetchrow", "fetchval", "copy_records_to_table", "prepare", "_fetch", "_fetchrow",
    "_fetchval", "_execute",
}  # fmt: skip
SQL_WORDS = ("SELECT ", "INSERT ", "UPDATE ", "DELETE ", "CREATE ", "DROP ", " WHERE ", "PRAGMA ")
FIXED_METHODS = {"join", "strip", "split", "replace", "upper", "lower", "rstrip", "lstrip"}


def _modules() -> Iterator[Path]:
    for package in PACKAGES:
        if package.is_dir():
            yield from sorted(package.rglob("*.py"))


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


class Fixedness:
    """Decides whether an expression can only ever be text fixed in the source."""

    def __init__(self, module: ast.Module, sql_aliases: set[str]) -> None:
        self.sql_aliases = sql_aliases
        self.functions = {
            n.name for n in module.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        self.constants: set[str] = set()
        self.constants = self._fixed_names(module.body, set())

    def _fixed_names(self, body: list[ast.stmt], known: set[str]) -> set[str]:
        """Names whose every binding in `body` (a module or a function) is fixed."""
        bindings: dict[str, list[ast.expr | None]] = {}
        for node in (n for stmt in body for n in ast.walk(stmt)):
            for target, value in _bindings(node):
                bindings.setdefault(target, []).append(value)
        fixed = set(known)
        changed = True
        while changed:  # a fixpoint: names built from names built from literals
            changed = False
            for name, values in bindings.items():
                if name in fixed or any(v is None for v in values):
                    continue
                if all(self.fixed(v, fixed) for v in values if v is not None):
                    fixed.add(name)
                    changed = True
        return fixed

    def in_function(self, function: ast.AST) -> set[str]:
        assert isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        # Parameters are never fixed: they are what callers control.
        params = {a.arg for a in [*function.args.args, *function.args.kwonlyargs]}
        names = self._fixed_names(function.body, self.constants - params)
        return names - params

    def fixed(self, node: ast.expr, names: set[str]) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, (str, int, float, bool, type(None)))
        if isinstance(node, ast.Name):
            return node.id in names
        if isinstance(node, ast.JoinedStr):
            return all(self.fixed(v, names) for v in node.values)
        if isinstance(node, ast.FormattedValue):
            return self.fixed(node.value, names)
        if isinstance(node, ast.Attribute):
            return isinstance(node.value, ast.Name) and node.value.id in self.sql_aliases
        if isinstance(node, ast.Subscript):  # a fixed table, indexed by anything
            return self.fixed(node.value, names)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return all(self.fixed(e, names) for e in node.elts)
        if isinstance(node, ast.Dict):
            return all(self.fixed(v, names) for v in node.values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            return self.fixed(node.left, names) and self.fixed(node.right, names)
        if isinstance(node, ast.BoolOp):
            return all(self.fixed(v, names) for v in node.values)
        if isinstance(node, ast.IfExp):
            return self.fixed(node.body, names) and self.fixed(node.orelse, names)
        if isinstance(node, ast.Call):
            return self._fixed_call(node, names)
        if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
            loop = set(names)
            for gen in node.generators:
                if not self.fixed(gen.iter, loop):
                    return False
                loop |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
            return self.fixed(node.elt, loop)
        return False

    def _fixed_call(self, node: ast.Call, names: set[str]) -> bool:
        func = node.func
        args = [*node.args, *(k.value for k in node.keywords)]
        if isinstance(func, ast.Name) and func.id == "len":
            return True  # a count (e.g. a $n placeholder): a number cannot carry SQL
        if isinstance(func, ast.Attribute) and func.attr in FIXED_METHODS:
            return self.fixed(func.value, names) and all(self.fixed(a, names) for a in args)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            # a builder of the SQL module: its own f-strings are checked in that module
            return func.value.id in self.sql_aliases
        if isinstance(func, ast.Name) and func.id in self.functions:
            return all(self.fixed(a, names) for a in args)
        return False


def _bindings(node: ast.AST) -> Iterator[tuple[str, ast.expr | None]]:
    """(name, value) for each binding `node` makes; value None when it cannot be judged."""
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                yield target.id, node.value
            elif isinstance(target, ast.Tuple):  # a, b = builder(...): judged by the call
                for element in target.elts:
                    if isinstance(element, ast.Name):
                        yield element.id, node.value
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        owner = node.func.value
        if node.func.attr in ("append", "extend", "insert") and isinstance(owner, ast.Name):
            for arg in node.args[-1:]:
                yield owner.id, arg
    elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
        yield from _loop_bindings(node.target, node.iter)
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        for item in node.items:
            if isinstance(item.optional_vars, ast.Name):
                yield item.optional_vars.id, None


def _loop_bindings(target: ast.expr, iterable: ast.expr) -> Iterator[tuple[str, ast.expr]]:
    """``for a, b in (("x", p), ("y", q))`` binds a to "x" and "y", b to p and q."""
    rows = iterable.elts if isinstance(iterable, (ast.Tuple, ast.List)) else None
    if (
        isinstance(target, ast.Tuple)
        and rows is not None
        and all(isinstance(r, ast.Tuple) and len(r.elts) == len(target.elts) for r in rows)
    ):
        for position, element in enumerate(target.elts):
            for row in rows:
                assert isinstance(row, ast.Tuple)
                yield from _loop_bindings(element, ast.Tuple(elts=[row.elts[position]]))
        return
    for name in (n for n in ast.walk(target) if isinstance(n, ast.Name)):
        if rows is not None and isinstance(target, ast.Name):
            yield from ((name.id, row) for row in rows)
        else:
            yield name.id, iterable


def _sql_aliases(module: ast.Module) -> set[str]:
    aliases = set()
    for node in ast.walk(module):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.endswith("_sql"):
                    aliases.add(alias.asname or alias.name)
    return aliases


def _functions(module: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(module):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _looks_like_sql(node: ast.expr) -> bool:
    text = "".join(
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ).upper()
    return any(word in text for word in SQL_WORDS)


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT.parent)}:{getattr(node, 'lineno', '?')}"


def sql_module_problems(path: Path) -> list[str]:
    """F-strings splicing in anything but fixed fragments; any %/format on SQL."""
    module = _parse(path)
    judge = Fixedness(module, set())
    problems = []
    scopes: list[tuple[ast.AST, set[str]]] = [(module, judge.constants)]
    scopes += [(f, judge.in_function(f)) for f in _functions(module)]
    for scope, names in scopes:
        body = scope.body if isinstance(scope, (ast.Module,)) else [scope]
        nodes = [n for stmt in body for n in ast.walk(stmt)]
        if isinstance(scope, ast.Module):  # function bodies are judged with their own names
            inside = {id(n) for f in _functions(module) for n in ast.walk(f)}
            nodes = [n for n in nodes if id(n) not in inside]
        for node in nodes:
            if isinstance(node, ast.JoinedStr) and not judge.fixed(node, names):
                problems.append(f"{_where(path, node)}: f-string splices in non-fixed text")
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
                if _looks_like_sql(node.left):
                    problems.append(f"{_where(path, node)}: %-formatting of SQL")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr == "format" and _looks_like_sql(node.func.value):
                    problems.append(f"{_where(path, node)}: .format() of SQL")
    return problems


def executing_module_problems(path: Path) -> list[str]:
    """Statements handed to the driver that are built on the spot."""
    module = _parse(path)
    judge = Fixedness(module, _sql_aliases(module))
    problems = []
    for function in _functions(module):
        names = judge.in_function(function)
        params = {a.arg for a in [*function.args.args, *function.args.kwonlyargs]}
        wrapper = function.name in EXECUTE  # passes its own caller's statement on
        for node in ast.walk(function):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in EXECUTE or not node.args:
                continue
            statement = node.args[0]
            if wrapper and isinstance(statement, ast.Name) and statement.id in params:
                continue
            if not judge.fixed(statement, names):
                problems.append(
                    f"{_where(path, node)}: {node.func.attr}() gets a statement built on the "
                    f"spot: {ast.unparse(statement)[:80]}"
                )
    return problems


FORBIDDEN_IMPORTS = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle",
                     "jsonpickle", "langchain_core.load", "langchain.load"}  # fmt: skip
FORBIDDEN_CALLS = {"eval", "exec", "__import__"}
FORBIDDEN_ATTRIBUTES = {("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"),
                        ("pickle", "loads"), ("marshal", "loads")}  # fmt: skip
JSON_HOOKS = {"object_hook", "object_pairs_hook", "cls"}


def deserialisation_problems(path: Path) -> list[str]:
    module = _parse(path)
    problems = []
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            names = []
        for name in names:
            if name in FORBIDDEN_IMPORTS or name.split(".")[0] in FORBIDDEN_IMPORTS:
                problems.append(f"{_where(path, node)}: imports {name}")
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                problems.append(f"{_where(path, node)}: calls {func.id}()")
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if (func.value.id, func.attr) in FORBIDDEN_ATTRIBUTES:
                    problems.append(f"{_where(path, node)}: calls {func.value.id}.{func.attr}()")
                if func.value.id == "json" and func.attr in ("loads", "load"):
                    hooks = {k.arg for k in node.keywords} & JSON_HOOKS
                    if hooks:
                        problems.append(f"{_where(path, node)}: json.{func.attr} with {hooks}")
    return problems


@pytest.mark.parametrize("path", SQL_MODULES, ids=lambda p: p.name)
def test_sql_modules_splice_only_fixed_fragments(path: Path) -> None:
    assert sql_module_problems(path) == []


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: p.name)
def test_statements_handed_to_the_driver_are_never_built_on_the_spot(path: Path) -> None:
    assert executing_module_problems(path) == []


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: p.name)
def test_nothing_deserialises_into_objects(path: Path) -> None:
    assert deserialisation_problems(path) == []


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """The checks above find nothing in the package: make sure they would find something."""
    sql = tmp_path / "evil_sql.py"
    sql.write_text(
        "BASE = 'SELECT * FROM t'\n"
        "def by_name(name):\n"
        "    return f\"{BASE} WHERE name = '{name}'\", []\n"
        "def by_id(i):\n"
        "    return 'SELECT * FROM t WHERE id = %s' % i\n"
        "def fine(limit):\n"
        "    where = ['a = ?']\n"
        "    return f\"{BASE} WHERE {' AND '.join(where)} LIMIT ?\", [limit]\n"
    )
    assert [p.split(": ", 1)[1] for p in sql_module_problems_at(sql)] == [
        "f-string splices in non-fixed text",
        "%-formatting of SQL",
    ]
    runner = tmp_path / "evil.py"
    runner.write_text(
        "from . import evil_sql as sql\n"
        "import pickle\n"
        "async def get(conn, name):\n"
        "    await conn.execute(sql.BASE, name)\n"
        "    query, params = sql.fine(3)\n"
        "    await conn.fetch(query, *params)\n"
        "    await conn.fetch(f'SELECT * FROM t WHERE name = {name}')\n"
        "    return eval(name)\n"
    )
    assert len(executing_module_problems_at(runner)) == 1
    assert len(deserialisation_problems_at(runner)) == 2


def sql_module_problems_at(path: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return sql_module_problems(path)
    finally:
        ROOT = saved


def executing_module_problems_at(path: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return executing_module_problems(path)
    finally:
        ROOT = saved


def deserialisation_problems_at(path: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return deserialisation_problems(path)
    finally:
        ROOT = saved
