"""The architecture, read from the import graph: `db` ← `core` ← domains ← `app`/`cli`, never
upwards, and a domain uses another only through its public modules (service, schemas, models and
pure modules), never its repository, routes, commands or jobs. Imports inside functions count."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "aethercrown"

# Lower number, lower layer; a package not named here is a domain (layer 2).
LAYERS = {"clock": 0, "settings": 0, "db": 0, "core": 1, "app": 3, "cli": 3, "serving": 3}
DOMAIN = 2
# A domain's modules that no other domain may import.
PRIVATE = {"repository", "api", "cli", "jobs"}
# (importer, imported domain, module) allowed with the reason.
EXCEPTIONS = {
    ("metering", "pricing", "repository"): "metering meters the plans pricing keeps: one catalogue",
    ("pricing", "metering", "repository"): "a quote reads the activity metering keeps per customer",
}


@cache
def imports() -> list[tuple[str, str, int, list[str]]]:
    """(file, package of the file, line, imported module path split) for every aethercrown
    import, module-level or not."""
    return list(_imports())


def _imports() -> Iterator[tuple[str, str, int, list[str]]]:
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        package = parts[0] if parts[0] != "__main__" else "cli"
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                target = name.split(".")
                if target[0] == "aethercrown" and len(target) > 1:
                    yield str(path.relative_to(SRC)), package, node.lineno, target[1:]


def layer(package: str) -> int:
    return LAYERS.get(package, DOMAIN)


def test_imports_never_go_up_a_layer() -> None:
    upward = [
        f"{file}:{line} imports aethercrown.{'.'.join(target)}"
        for file, package, line, target in imports()
        if layer(target[0]) > layer(package)
    ]
    assert upward == []


def test_a_domain_uses_another_only_through_its_public_modules() -> None:
    reaching_in = [
        f"{file}:{line} imports aethercrown.{'.'.join(target)}"
        for file, package, line, target in imports()
        if layer(package) == DOMAIN
        and layer(target[0]) == DOMAIN
        and target[0] != package
        and len(target) > 1
        and target[1] in PRIVATE
        and (package, target[0], target[1]) not in EXCEPTIONS
    ]
    assert reaching_in == []


def test_every_exception_is_still_needed() -> None:
    used = {
        (package, target[0], target[1]) for _, package, _, target in imports() if len(target) > 1
    }
    assert set(EXCEPTIONS) <= used


# Third-party modules imported inside functions on purpose: each costs every process start and
# is used by few calls. Anything else is imported at the top of its module, where a cycle shows.
LAZY_THIRD_PARTY = {
    "reportlab": "the PDF report only",
    "openai": "only when a tenant configures a provider",
    "icalendar": "training calendars and content calendars only",
    "yake": "about a second to import; keyword extraction only",
    "twitter_text": "loads pkg_resources; counting a post's length only",
}


def _imports_inside_functions() -> Iterator[tuple[str, int, str]]:
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                    yield str(path.relative_to(SRC)), inner.lineno, inner.module
                elif isinstance(inner, ast.Import):
                    for alias in inner.names:
                        yield str(path.relative_to(SRC)), inner.lineno, alias.name


def test_only_heavy_third_party_modules_are_imported_inside_functions() -> None:
    hidden = [
        f"{file}:{line} imports {module} inside a function"
        for file, line, module in _imports_inside_functions()
        if module.split(".")[0] not in LAZY_THIRD_PARTY
    ]
    assert hidden == []


# Issue #16: a function longer than this reads as several steps; split it into named parts, or
# write `# long: <reason>` on the line before its `def` (above its decorators, if any) or on
# the first line of its body.
# Migrations are left out: each is a frozen record of one schema step, never edited once
# released, and its upgrade is a list of tables rather than a sequence of steps.
LONGEST_FUNCTION = 80
LONG_REASON = "# long:"
MIGRATIONS = SRC / "db" / "migrations"


def _long_functions() -> Iterator[str]:
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(MIGRATIONS):
            continue
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length <= LONGEST_FUNCTION:
                continue
            first_decorated = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            before_def = lines[first_decorated - 2] if first_decorated > 1 else ""
            first_of_body = lines[node.body[0].lineno - 1]
            if LONG_REASON in before_def or LONG_REASON in first_of_body:
                continue
            yield f"{path.relative_to(SRC)}:{node.lineno} {node.name} is {length} lines"


def test_no_function_is_long_without_a_written_reason() -> None:
    assert list(_long_functions()) == []


# Issue #16: every statement lives in a repository. A statement is built by calling one of
# sqlalchemy's builders, or run by one of these methods of a Session or Connection. The unit of
# work (`session.add`, `session.delete` of an object in hand, `session.flush`) is not a
# statement and is what services use to change what a repository read.
BUILDERS = {"select", "insert", "update", "delete", "text"}
RUNNERS = {"execute", "scalars", "scalar", "get", "query", "stream", "merge"}
# A receiver is a Session or Connection when it has one of these names, is annotated with one
# of these types, or is `X.connection()` of one.
SESSION_NAMES = {"session", "connection", "conn"}
SESSION_TYPES = {"Session", "DbSession", "WriteSession", "Connection"}
# A domain's `repository.py` and core's `<thing>_repository.py` hold the statements; so do:
STATEMENT_MODULES = {
    "core/tenancy.py": "the repository base every tenant repository extends",
    "core/pagination.py": "the shared pager runs the page's statement a repository built",
    "connectors/models.py": "a partial index's predicate (text) is schema, not a statement",
}
# `db` is the layer below: engine, units of work, migrations and bulk helpers.
STATEMENT_PACKAGES = {"db"}


def _is_repository(relative: Path) -> bool:
    return relative.name == "repository.py" or relative.name.endswith("_repository.py")


def _builder_names(tree: ast.Module) -> set[str]:
    """The local names of sqlalchemy's statement builders (``insert as pg_insert`` too)."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy"
        for alias in node.names
        if alias.name in BUILDERS
    }


def _session_names(tree: ast.Module) -> set[str]:
    names = set(SESSION_NAMES)
    for node in ast.walk(tree):
        annotation, name = None, None
        if isinstance(node, ast.arg):
            annotation, name = node.annotation, node.arg
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            annotation, name = node.annotation, node.target.id
        if annotation is not None and name is not None:
            first = ast.unparse(annotation).split(" | ")[0].split(".")[-1]
            if first in SESSION_TYPES:
                names.add(name)
    return names


def _runs_on_session(call: ast.Call, sessions: set[str]) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute) or func.attr not in RUNNERS:
        return False
    receiver = func.value
    if (
        isinstance(receiver, ast.Call)
        and isinstance(receiver.func, ast.Attribute)
        and receiver.func.attr == "connection"
    ):
        receiver = receiver.func.value
    if isinstance(receiver, ast.Attribute):
        return receiver.attr in sessions
    return isinstance(receiver, ast.Name) and receiver.id in sessions


# A repository's own builders: what it returns is its statement, to run or to hand to the pager
# as it is; narrowing or ordering one (`repo.select().where(...)`) is building a statement.
REPOSITORY_BUILDERS = {"select", "update", "delete"}
REFINERS = {"where", "order_by", "join", "outerjoin", "group_by", "having", "limit", "values"}


def _is_repository_call(node: ast.expr) -> bool:
    if not isinstance(node, ast.Call):
        return False
    name = ast.unparse(node.func).split(".")[-1]
    return name.endswith(("Repository", "Reads")) or name == "repository_for"


def _repository_names(tree: ast.Module) -> set[str]:
    """Names bound to a repository: ``repo = KeyRepository(session, tenant_id)``."""
    return {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and node.value is not None
        and _is_repository_call(node.value)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }


def _refines_repository_statement(call: ast.Call, repositories: set[str]) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute) or func.attr not in REFINERS:
        return False
    built = func.value
    while isinstance(built, ast.Call) and isinstance(built.func, ast.Attribute):
        if built.func.attr in REPOSITORY_BUILDERS:
            owner = built.func.value
            return _is_repository_call(owner) or (
                isinstance(owner, ast.Name) and owner.id in repositories
            )
        built = built.func.value
    return False


def _statements_in(path: Path) -> Iterator[str]:
    relative = path.relative_to(SRC)
    tree = ast.parse(path.read_text())
    builders, sessions = _builder_names(tree), _session_names(tree)
    repositories = _repository_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in builders:
            yield f"{relative}:{node.lineno} builds a statement with {node.func.id}()"
        elif _runs_on_session(node, sessions):
            yield f"{relative}:{node.lineno} runs {ast.unparse(node.func)}()"
        elif _refines_repository_statement(node, repositories):
            yield f"{relative}:{node.lineno} narrows a repository's statement"


def test_statements_live_in_repositories() -> None:
    outside = {
        statement
        for path in sorted(SRC.rglob("*.py"))
        if not _is_repository(relative := path.relative_to(SRC))
        and relative.as_posix() not in STATEMENT_MODULES
        and relative.parts[0] not in STATEMENT_PACKAGES
        for statement in _statements_in(path)
    }
    assert sorted(outside) == []


def test_every_statement_module_still_has_statements() -> None:
    assert [m for m in STATEMENT_MODULES if not any(_statements_in(SRC / m))] == []
