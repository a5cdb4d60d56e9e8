"""Code-task checking helpers: programs from model text, and test suites from HumanEval and MBPP records.

Everything here is pure (``ast`` and text); the programs are only ever run by :mod:`reason_gym.sandbox`.

- :func:`extract_code` takes the program out of a step or an answer (a fenced block, else the text itself).
- :func:`assemble_program` joins a HumanEval completion to its prompt the way HumanEval does, unless the completion
  is a whole program that defines the entry point itself.
- :func:`humaneval_tests` splits ``check(candidate)`` into one reported test per top-level statement that asserts
  (or calls a helper that does); :func:`mbpp_tests` makes one test per entry of ``test_list``.
- :func:`humaneval_examples` finds the examples a HumanEval prompt shows (doctests, or lines like
  ``f(1) ➞ 2``); without any, the first hidden test is the visible one, as MBPP shows its first test.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import re
from collections.abc import Sequence

from reason_gym.parse import parse_python
from reason_gym.sandbox.suite import Statement, TestSuite, rewrite_asserts

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.S | re.M)
_ARROWS = ("==>", "=>", "->", "➞", "==", "should return")
"""What separates a call from its value in a docstring example line (a lone ``=`` is too often a definition,
e.g. ``tri(1) = 3`` in HumanEval/130)."""
_MAX_EXAMPLE_LINE = 1000
"""Longer docstring lines are no examples: finding the call parses the line at each ``)``, quadratic in its length
(an injected 32 KB line took a minute); HumanEval's longest example line is far shorter."""


def extract_code(text: str) -> str:
    """The program in a step or answer: its first fenced block (an unclosed one runs to the end), else the text.

    >>> extract_code("Here:\\n```python\\nprint(1)\\n```\\nDone.")
    'print(1)\\n'
    >>> extract_code("    return x\\n")
    '    return x\\n'
    """
    blocks = _FENCE.findall(text)
    if blocks:
        python = [code for language, code in blocks if language.lower() in ("python", "py", "python3")]
        return (python or [code for _, code in blocks])[0]
    lines = text.splitlines(keepends=True)
    while lines and not lines[0].strip():
        lines.pop(0)
    return "".join(lines).rstrip() + ("\n" if lines else "")


def defines(source: str, name: str) -> bool:
    """Whether ``source`` parses and binds ``name`` at its top level (a def, a class, an assignment, an import)."""
    try:
        tree = parse_python(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.Import, ast.ImportFrom)):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
            if any((alias.asname or alias.name) == name for alias in getattr(node, "names", [])):
                return True
    return False


def assemble_program(completion: str, prompt: str, entry_point: str) -> str:
    """The program HumanEval runs for a completion.

    A completion that defines the entry point itself is a whole program: it goes after the prompt (whose imports and
    helpers it may use; its own definition replaces the prompt's stub). Anything else continues the prompt, as in
    HumanEval's own harness (``prompt + completion``).
    """
    if defines(completion, entry_point):
        return f"{prompt.rstrip()}\n\n\n{completion}"
    return prompt + completion


def _asserts(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Assert) for n in ast.walk(node))


def _parses(source: str) -> bool:
    try:
        parse_python(source)
    except (SyntaxError, ValueError):
        return False
    return True


def humaneval_tests(prompt: str, test: str, entry_point: str) -> TestSuite:
    """HumanEval's ``check(candidate)``, one test per top-level statement that asserts (or calls a function of the
    test module that asserts); the other statements are setup steps, and one that raises fails the run too.

    The prompt (its helpers, e.g. ``poly`` for ``find_zero``) and the test module are the suite's setup, run in the
    tester; ``candidate`` is the program's entry point. A ``check`` that cannot be split (another shape, a
    ``return``) or has no such statement is run whole as one test.

    Raises:
        ValueError: ``test`` is not valid Python.
    """
    try:
        tree = parse_python(test)
    except SyntaxError as error:
        raise ValueError(f"the test code does not parse: {error}") from None
    setup = tuple(part for part in (prompt, test) if part.strip() and _parses(part))
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    splittable = (
        check is not None
        and len(check.args.args) == 1
        and not any(
            isinstance(n, (ast.Return, ast.Yield, ast.YieldFrom, ast.Global, ast.Nonlocal)) for n in ast.walk(check)
        )
    )
    if not splittable:
        whole = Statement("check(candidate)", "check(candidate)", test=True)
        return TestSuite((whole,), setup, {"candidate": entry_point})
    param = check.args.args[0].arg  # type: ignore[union-attr]
    helpers = _asserting_functions(tree)
    statements = []
    for node in check.body:  # type: ignore[union-attr]
        name = ast.get_source_segment(test, node) or ast.unparse(node)
        is_test = _checks(node, helpers)
        statements.append(Statement.from_source(ast.unparse(node), _one_line(name), test=is_test))
    if not any(statement.test for statement in statements):  # nothing to report one by one: the whole check
        return TestSuite((Statement("check(candidate)", "check(candidate)", test=True),), setup, {param: entry_point})
    return TestSuite(tuple(statements), setup, {param: entry_point})


def _asserting_functions(tree: ast.Module) -> set[str]:
    """Functions the test module defines (at its top level or in ``check``) whose bodies assert: calling one is a
    test (HumanEval+'s ``assertion(candidate(*inp), exp, 0)``)."""
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "check" and _asserts(node)
    }


def _checks(node: ast.stmt, helpers: set[str]) -> bool:
    """Whether a statement of ``check`` is a test: it asserts something other than a constant (``assert True`` is
    no test), or calls a function that asserts. Either way a statement that raises fails the run (the sandbox fails
    a run whose setup steps raised), so this decides only what is reported one by one."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return False  # a definition runs nothing
    asserts = any(isinstance(n, ast.Assert) and not isinstance(n.test, ast.Constant) for n in ast.walk(node))
    calls = any(isinstance(n, ast.Call) and getattr(n.func, "id", None) in helpers for n in ast.walk(node))
    return asserts or calls


def mbpp_tests(
    test_list: Sequence[str], setup_code: str = "", imports: Sequence[str] = (), entry_point: str | None = None
) -> TestSuite:
    """One test per MBPP assertion; ``test_setup_code`` and ``test_imports`` are the setup.

    The entry point (default: :func:`mbpp_entry_point`) is bound explicitly, so that a function named like a
    builtin (MBPP has a ``sum``) is the program's. Other builtin names in the tests stay the tester's own: a program
    cannot redefine ``abs`` or ``round`` for the tests.
    """
    setup = tuple(part for part in ("\n".join(imports), setup_code) if part.strip())
    entry_point = entry_point or mbpp_entry_point(test_list)
    return TestSuite.from_asserts(list(test_list), setup, {entry_point: entry_point})


def mbpp_entry_point(test_list: Sequence[str]) -> str:
    """The function MBPP's first test calls (the first call of a name that is not a builtin).

    >>> mbpp_entry_point(['assert remove_Occ("hello","l") == "heo"'])
    'remove_Occ'
    """
    called = []
    for test in test_list:
        try:
            tree = parse_python(test)
        except SyntaxError:
            continue
        called += [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    for name in called:
        if name not in dir(builtins):
            return name
    if called:  # every call is to a builtin's name: the function is named like one (MBPP 948 is ``sum``)
        return called[0]
    raise ValueError(f"no function call in the tests {list(test_list)[:1]}")


def _one_line(source: str, limit: int = 200) -> str:
    lines = [line.strip() for line in source.strip().splitlines()] or [""]
    text = lines[0] + (" ..." if len(lines) > 1 else "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _entry_docstring(prompt: str, entry_point: str) -> str:
    try:
        tree = parse_python(prompt)
    except SyntaxError:
        return ""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            return ast.get_docstring(node) or ""
    return ""


def _doctest_examples(docstring: str, entry_point: str) -> list[Statement]:
    try:
        examples = doctest.DocTestParser().get_examples(docstring)
    except ValueError:
        return []
    statements = []
    for example in examples:
        source, want = example.source.strip(), example.want.strip()
        if not want:
            if _parses(source):
                statements.append(Statement(source, _one_line(f">>> {source}"), test=False))
            continue
        try:
            parse_python(source, mode="eval")
        except SyntaxError:
            continue
        if entry_point in source:
            code = f"_rg_expect_output(({source}\n), {want!r})"  # the newline ends a trailing comment
            statements.append(Statement(code, _one_line(f">>> {source}  # {want}"), test=True))
    return statements if any(s.test for s in statements) else []


def _arrow_example(line: str, entry_point: str) -> Statement | None:
    """``f(args) ➞ value`` (or ``=>``, ``->``, ``==``, ``=``, ``should return``) as ``assert f(args) == value``."""
    line = line.strip()
    if not line.startswith(entry_point + "(") or len(line) > _MAX_EXAMPLE_LINE:
        return None
    for end in (i for i, c in enumerate(line) if c == ")"):
        call = line[: end + 1]
        try:
            node = parse_python(call, mode="eval").body
            if not isinstance(node, ast.Call) or node.keywords:
                continue
            for argument in node.args:  # literal arguments only: ``is_happy(a)`` in a docstring means "a"
                ast.literal_eval(argument)
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
            continue
        rest = line[end + 1 :].strip()
        for arrow in _ARROWS:
            if rest.startswith(arrow):
                value = rest[len(arrow) :].strip().rstrip(".,;")
                try:
                    ast.literal_eval(value)
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    return None
                return Statement(rewrite_asserts(f"assert {call} == {value}"), _one_line(f"{call} == {value}"))
        return None
    return None


def humaneval_examples(prompt: str, entry_point: str, hidden: TestSuite | None = None) -> TestSuite:
    """The examples a HumanEval prompt shows, as a suite (run by a ``Run:`` step).

    Doctests of the entry point's docstring first, else lines such as ``f(1) ➞ 2``; without any, the first test of
    ``hidden`` (and the setup statements before it).
    """
    docstring = _entry_docstring(prompt, entry_point)
    statements = _doctest_examples(docstring, entry_point)
    if not statements:
        statements = [s for line in docstring.splitlines() if (s := _arrow_example(line, entry_point))]
    setup = tuple(part for part in (prompt,) if _parses(part))
    if not statements and hidden is not None:
        return first_test(hidden)
    # The prompt defines a stub of the entry point in the tester: the binding replaces it with the program's.
    return TestSuite(tuple(statements), setup, {entry_point: entry_point})


def first_test(suite: TestSuite) -> TestSuite:
    """The suite up to and including its first test (MBPP shows its first test)."""
    statements: list[Statement] = []
    for statement in suite.statements:
        statements.append(statement)
        if statement.test:
            break
    return TestSuite(tuple(statements), suite.setup, suite.bindings)
