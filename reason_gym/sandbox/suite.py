"""Test suites for the sandbox: trusted test code, split into individually reported tests.

A :class:`TestSuite` is what the sandbox's tester process runs against a program: ``setup`` code (helpers, imports),
then ``statements`` in order. A statement marked as a test passes when it runs without raising; the others are
setup steps between tests. Names the statements use that neither the setup nor the statements define are taken
from the program (its entry point, its classes, its globals), as proxies: calls go to the program's process and
values come back as plain data; except a standard-library module's name used only for its attributes (MBPP 596's
tests call ``sys.getsizeof`` without importing ``sys``), which the tester imports itself, so that a program cannot
supply the expected side of an assertion. ``bindings`` give program names another name in the tests (HumanEval's
``candidate``).

Every ``assert`` is rewritten so that a failure says what was got and what was expected::

    >>> print(Statement.from_source("assert f(2) == 4").code)
    _rg_left = f(2)
    _rg_right = 4
    if not _rg_left == _rg_right:
        _rg_assert_failed(_rg_left, '==', _rg_right, None)
"""

from __future__ import annotations

import ast
import builtins
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from reason_gym.parse import parse_python

_OPERATORS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
_HELPERS = frozenset({"_rg_assert_failed", "_rg_assert_true_failed", "_rg_expect_output"})
_BUILTINS = frozenset(dir(builtins))


class _RewriteAsserts(ast.NodeTransformer):
    """``assert a op b, m`` -> evaluate ``a`` then ``b`` once, and on failure report both (and ``m``)."""

    def visit_Assert(self, node: ast.Assert) -> list[ast.stmt]:
        message = node.msg or ast.Constant(None)
        test = node.test
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _OPERATORS:
            left, right = ast.Name("_rg_left", ast.Load()), ast.Name("_rg_right", ast.Load())
            failed = ast.Call(
                ast.Name("_rg_assert_failed", ast.Load()),
                [left, ast.Constant(_OPERATORS[type(test.ops[0])]), right, message],
                [],
            )
            statements: list[ast.stmt] = [
                ast.Assign([ast.Name("_rg_left", ast.Store())], test.left),
                ast.Assign([ast.Name("_rg_right", ast.Store())], test.comparators[0]),
                ast.If(ast.UnaryOp(ast.Not(), ast.Compare(left, test.ops, [right])), [ast.Expr(failed)], []),
            ]
        else:
            value = ast.Name("_rg_value", ast.Load())
            failed = ast.Call(ast.Name("_rg_assert_true_failed", ast.Load()), [value, message], [])
            statements = [
                ast.Assign([ast.Name("_rg_value", ast.Store())], test),
                ast.If(ast.UnaryOp(ast.Not(), value), [ast.Expr(failed)], []),
            ]
        return [ast.copy_location(ast.fix_missing_locations(s), node) for s in statements]


def rewrite_asserts(source: str) -> str:
    """The same code with every ``assert`` rewritten to report the values it compared.

    Raises:
        SyntaxError: ``source`` is not valid Python.
    """
    tree = parse_python(source)
    if not any(isinstance(node, ast.Assert) for node in ast.walk(tree)):
        return source
    return ast.unparse(ast.fix_missing_locations(_RewriteAsserts().visit(tree)))


@dataclass(frozen=True)
class Statement:
    """One step of a test suite.

    Attributes:
        code: Python source run in the tester's namespace (already rewritten: see :meth:`from_source`).
        name: How the test is reported (e.g. its original source line).
        test: Whether it is a test (counted and reported) or a setup step between tests.
    """

    code: str
    name: str = ""
    test: bool = True

    @classmethod
    def from_source(cls, source: str, name: str | None = None, test: bool = True) -> Statement:
        """A statement from test source, its asserts rewritten; ``name`` defaults to the source's first line."""
        if name is None:
            name = _first_line(source)
        return cls(rewrite_asserts(source), name, test)


@dataclass(frozen=True)
class TestSuite:
    """Trusted test code to run against a program (see the module docstring).

    Attributes:
        statements: Run in order after the setup; those with ``test=True`` are the tests.
        setup: Code run first, each part in turn (e.g. a problem's helper functions, then the test module).
        bindings: ``{name in the tests: name in the program}``, e.g. ``{"candidate": "add"}``.
    """

    __test__ = False  # not a pytest test class

    statements: tuple[Statement, ...] = ()
    setup: tuple[str, ...] = ()
    bindings: Mapping[str, str] = field(default_factory=dict)

    @property
    def num_tests(self) -> int:
        """How many statements are tests."""
        return sum(statement.test for statement in self.statements)

    @property
    def test_names(self) -> list[str]:
        """The names of the tests, in order."""
        return [statement.name for statement in self.statements if statement.test]

    @cached_property
    def _free_names(self) -> tuple[set[str], set[str]]:
        """(names used but not defined by the test code, not builtins or bound; those of them used only as
        ``name.attribute``)."""
        statements, setup = _parsed(s.code for s in self.statements), _parsed(self.setup)
        defined = _top_level_bindings(setup) | _top_level_bindings(statements)
        names = [node for tree in statements + setup for node in ast.walk(tree) if isinstance(node, ast.Name)]
        bases = {
            id(node.value)
            for tree in statements + setup
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        }
        free = {node.id for node in names} - defined - _BUILTINS - _HELPERS - set(self.bindings)
        otherwise = {node.id for node in names if id(node) not in bases}
        return free, free - otherwise

    @cached_property
    def modules(self) -> tuple[str, ...]:
        """Standard-library modules the tests use without importing them (only as ``module.attribute``): the tester
        imports them, the program cannot stand in for them."""
        _, attribute_bases = self._free_names
        return tuple(sorted(name for name in attribute_bases if name in sys.stdlib_module_names))

    @cached_property
    def program_names(self) -> tuple[str, ...]:
        """Names the tests (and their setup) take from the program: used but not defined by the test code and not
        builtins (a program cannot redefine ``abs`` for the tests) or :attr:`modules`, plus the bound ones."""
        free, _ = self._free_names
        return tuple(sorted((free - set(self.modules)) | set(self.bindings.values())))

    @cached_property
    def wire(self) -> bytes:
        """The suite as the sandbox's tester reads it (JSON)."""
        return json.dumps(
            {
                "setup": list(self.setup),
                "statements": [{"code": s.code, "test": s.test} for s in self.statements],
                "bindings": dict(self.bindings),
                "names": list(self.program_names),
                "modules": list(self.modules),
            }
        ).encode()

    @classmethod
    def from_asserts(
        cls, tests: Sequence[str], setup: Iterable[str] = (), bindings: Mapping[str, str] | None = None
    ) -> TestSuite:
        """A suite with one test per source string (MBPP's ``test_list``), named by their first lines."""
        return cls(tuple(Statement.from_source(t) for t in tests), tuple(setup), dict(bindings or {}))


def _parsed(sources: Iterable[str]) -> list[ast.Module]:
    """The sources that parse (the tester reports a syntax error in the others when it runs them)."""
    trees = []
    for source in sources:
        try:
            trees.append(parse_python(source))
        except (SyntaxError, ValueError):
            continue
    return trees


def _first_line(source: str, limit: int = 200) -> str:
    lines = [line.strip() for line in source.strip().splitlines()] or [""]
    text = lines[0] + (" ..." if len(lines) > 1 else "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _TopLevelBinder(ast.NodeVisitor):
    """Names a module binds in its own scope (not those local to its functions, classes or comprehensions)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.names.add(node.id)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.names.add(node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        return  # its parameters are its own

    def visit_ListComp(self, node: ast.AST) -> None:
        return  # comprehension variables are local to the comprehension

    visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_ListComp

    def visit_alias(self, node: ast.alias) -> None:
        if node.name != "*":
            self.names.add(node.asname or node.name.split(".")[0])

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.names.add(node.name)
        self.generic_visit(node)


def _top_level_bindings(trees: Iterable[ast.AST]) -> set[str]:
    binder = _TopLevelBinder()
    for tree in trees:
        binder.visit(tree)
    return binder.names
