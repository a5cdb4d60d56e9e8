"""The pure helpers of the code tasks: code from text, programs from completions, suites from HumanEval and MBPP."""

import ast

import pytest

from reason_gym.checkers.program_tests import (
    assemble_program,
    defines,
    extract_code,
    first_test,
    humaneval_examples,
    humaneval_tests,
    mbpp_entry_point,
    mbpp_tests,
)
from reason_gym.sandbox import Statement, TestSuite, rewrite_asserts

PROMPT = (
    'from typing import List\n\n\ndef add(a: int, b: int) -> int:\n    """Add.\n    >>> add(1, 2)\n    3\n    """\n'
)
TEST = (
    "METADATA = {}\n\n\ndef check(candidate):\n    import math\n    assert candidate(1, 2) == 3\n    x = 5\n"
    "    assert True\n    for i in range(3):\n        assert candidate(i, x) == i + 5\n"
)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("```python\nprint(1)\n```", "print(1)\n"),
        ("Here it is:\n```py\nx = 1\n```\nand more text", "x = 1\n"),
        ("```\nplain fence\n```", "plain fence\n"),
        ("```text\nnot code\n```\n```python\ncode\n```", "code\n"),
        ("```python\nunclosed = True\n", "unclosed = True\n"),
        ("\n\n    return a + b\n", "    return a + b\n"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_extract_code(text, code):
    assert extract_code(text) == code


def test_defines_finds_top_level_bindings_only():
    assert defines("def add(a, b):\n    return a + b\n", "add")
    assert defines("add = lambda a, b: a + b\n", "add")
    assert defines("from operator import add\n", "add")
    assert not defines("class C:\n    def add(self):\n        pass\n", "add")
    assert not defines("def add(a, b)\n", "add")  # does not parse


def test_assemble_program_continues_the_prompt_or_keeps_a_whole_program():
    body = "    return a + b\n"
    assert assemble_program(body, PROMPT, "add") == PROMPT + body
    whole = "def add(a, b):\n    return b + a\n"
    program = assemble_program(whole, PROMPT, "add")
    assert program.startswith("from typing import List") and program.endswith(whole)
    namespace: dict = {}
    exec(compile(program, "p", "exec"), namespace)
    assert namespace["add"](1, 2) == 3


def test_humaneval_check_is_split_into_statements_that_assert_about_the_candidate():
    suite = humaneval_tests(PROMPT, TEST, "add")
    assert suite.bindings == {"candidate": "add"}
    assert [s.test for s in suite.statements] == [False, True, False, False, True]  # `assert True` is no test
    assert suite.test_names == ["assert candidate(1, 2) == 3", "for i in range(3): ..."]
    assert suite.setup == (PROMPT, TEST)
    assert "add" in suite.program_names and "candidate" not in suite.program_names


def test_an_overlong_docstring_line_is_no_example():
    # finding an example's call parses the line at each ")": quadratic, a minute for an injected 32 KB line
    short = 'def f(x):\n    """\n    f(1) ➞ "' + "a" * 100 + '"\n    """\n'
    long = 'def f(x):\n    """\n    f(1) ➞ "' + "a" * 2000 + '"\n    """\n'
    assert humaneval_examples(short, "f").num_tests == 1
    assert humaneval_examples(long, "f").num_tests == 0


def test_an_unsplittable_check_runs_whole():
    suite = humaneval_tests("", "def check(candidate):\n    return candidate(1)\n", "f")
    assert [s.code for s in suite.statements] == ["check(candidate)"]


def test_bad_test_code_is_a_value_error():
    with pytest.raises(ValueError, match="does not parse"):
        humaneval_tests(PROMPT, "def check(candidate:\n", "add")


def test_docstring_examples_come_from_doctests_or_arrow_lines():
    suite = humaneval_examples(PROMPT, "add")
    assert suite.num_tests == 1 and suite.bindings == {"add": "add"}
    arrows = 'def f(s):\n    """\n    f("ab") ➞ 2\n    f(x) ➞ 1\n    f("") => 0\n    f(1) = 3\n    """\n'
    suite = humaneval_examples(arrows, "f")
    assert suite.test_names == ['f("ab") == 2', 'f("") == 0']  # names are not literals, "=" is a definition
    hidden = humaneval_tests("def g():\n    pass\n", TEST, "g")
    assert humaneval_examples("def g():\n    pass\n", "g", hidden).test_names == ["assert candidate(1, 2) == 3"]


def test_mbpp_suites_bind_the_entry_point_even_when_it_shadows_a_builtin():
    assert mbpp_entry_point(["assert sum(10, 15) == 6"]) == "sum"
    assert mbpp_entry_point(["assert set(similar((1, 2), (2, 3))) == {2}"]) == "similar"
    suite = mbpp_tests(["assert sum(1, 2) == 3", "assert sum(2, 2) == 4"], "", ["import math"])
    assert suite.bindings == {"sum": "sum"} and suite.setup == ("import math",) and suite.num_tests == 2
    assert first_test(suite).num_tests == 1
    with pytest.raises(ValueError):
        mbpp_entry_point(["assert True"])


def test_program_names_exclude_builtins_and_what_the_tests_define():
    suite = TestSuite.from_asserts(
        ["assert abs(f(x)) == y", "assert len(g()) == 1"], setup=["y = 1"], bindings={"h": "h_impl"}
    )
    assert suite.program_names == ("f", "g", "h_impl", "x")


def test_rewritten_asserts_evaluate_each_side_once_and_keep_their_message():
    code = rewrite_asserts("assert next(it) == next(it), 'msg'")
    namespace = {"it": iter([1, 2]), "_rg_assert_failed": lambda *a: (_ for _ in ()).throw(AssertionError(a))}
    with pytest.raises(AssertionError) as error:
        exec(code, namespace)
    assert error.value.args[0] == (1, "==", 2, "msg")
    assert rewrite_asserts("x = 1") == "x = 1"
    assert isinstance(ast.parse(Statement.from_source("for i in range(2):\n    assert i < 5").code), ast.Module)
