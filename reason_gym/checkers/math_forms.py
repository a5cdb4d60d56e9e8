"""Reading math answers: where the answer is in an ``Answer:`` text, and the forms read exactly in-process.

Used by :mod:`reason_gym.checkers.math_answer` for its extraction and exact fast paths. Everything here is plain
string and regex work with linear-time patterns, and exact :class:`~fractions.Fraction` arithmetic on inputs capped
in length: nothing is evaluated, and anything not recognised is left (``None``) to math-verify.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import NamedTuple

# ---------------------------------------------------------------------------------------------------- extraction

_LEAD_IN = re.compile(r"^(?:(?:the\s+)?(?:final\s+)?answer\s+is\s*:?|=)\s*", re.IGNORECASE)
_MATH_MODE = r"((?:[^$\\]|\\.)*)"  # text between dollars: no unescaped $ (an escaped \$ is a currency sign)
_WRAPPED = re.compile(rf"\$\${_MATH_MODE}\$\$|\${_MATH_MODE}\$|\\\((.*)\\\)|\\\[(.*)\\\]", re.DOTALL)
_DOLLAR_SPAN = re.compile(r"(?<!\\)\$((?:[^$\\]|\\.)+)\$", re.DOTALL)


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed 5``), or ``None``.

    Braces are matched (escaped ``\\{ \\}`` are skipped); an unclosed box gives ``None``.

    >>> last_boxed(r"so $x = \\boxed{\\frac{1}{2}}$, not \\boxed{3}.")
    '3'
    >>> last_boxed(r"\\boxed{\\{1, 2\\}}"), last_boxed(r"\\boxed 5."), last_boxed("no box")
    ('\\\\{1, 2\\\\}', '5.', None)
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = start + (6 if text.startswith("\\boxed", start) else 5)
    j = i
    while j < len(text) and text[j] == " ":
        j += 1
    if j < len(text) and text[j] == "{":
        depth = 0
        for k in range(j, len(text)):
            char = text[k]
            if char in "{}" and text[k - 1] != "\\":
                depth += 1 if char == "{" else -1
                if depth == 0:
                    return text[j + 1 : k]
        return None
    if j > i:
        token = re.match(r"[^\s$]+", text[j:])
        return token.group(0) if token else None
    return None


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``{ ( [`` in ``text`` (closing brackets of any kind close one level).

    >>> nesting_depth(r"\\frac{\\sqrt{2}}{(1 + x)}"), nesting_depth("((("), nesting_depth("a)b")
    (2, 3, 0)
    """
    depth = deepest = 0
    for char in text:
        if char in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "})]" and depth:
            depth -= 1
    return deepest


def _strip_sentence_end(text: str) -> str:
    return text.strip().rstrip(".").rstrip()


def extract_answer(text: str) -> str:
    """The answer expression in an ``Answer:`` text (or in a reference answer).

    Takes the last ``\\boxed{}`` if there is one; otherwise drops a lead-in (``The answer is``), a final period
    and ``$...$``, ``$$...$$``, ``\\(...\\)`` or ``\\[...\\]`` delimiters (the last ``$...$`` span of a sentence).
    A lone ``$`` is a currency sign and stays.

    >>> extract_answer(r"Answer: The final answer is $\\boxed{18}$.")
    '18'
    >>> extract_answer(r"$\\frac{1}{2}$."), extract_answer("$18"), extract_answer(r"it is $x=5$ here")
    ('\\\\frac{1}{2}', '$18', 'x=5')
    """
    text = text.strip()
    if text[:7].lower() == "answer:":
        text = text[7:].strip()
    boxed = last_boxed(text)
    if boxed is not None:
        return _strip_sentence_end(boxed)
    text = _strip_sentence_end(_LEAD_IN.sub("", text))
    wrapped = _WRAPPED.fullmatch(text)
    if wrapped:
        return _strip_sentence_end(next(group for group in wrapped.groups() if group is not None))
    spans = _DOLLAR_SPAN.findall(text)
    return _strip_sentence_end(spans[-1]) if spans else text


# ---------------------------------------------------------------------------------------------- exact fast path


class ExactNumber(NamedTuple):
    """A plain number read exactly from text.

    Attributes:
        value: Its exact value.
        form: How it was written: ``"integer"``, ``"decimal"`` (with a decimal point) or ``"fraction"``.
    """

    value: Fraction
    form: str


_LATEX_SPACING = re.compile(r"\\[!,;: ]|\\q?quad\b|~")
_CURRENCY = re.compile(r"^([-+]?)\s*(?:\\\$|\$|€|£)\s*")
_POWER = r"(?:\^\{?[23]\}?|²|³)?"
_SUFFIXES = re.compile(
    r"(?:\s*\\(?:text|textrm|textbf|mathrm|mbox|rm)\s*\{([A-Za-z .]*)\}" + _POWER  # \text{ cm}^2
    + r"|\s*(?:\^\s*\{?\s*\\circ\s*\}?|°|\\degree|¢)"  # degrees, cents
    + r"|\s+([A-Za-z]+)\.?" + _POWER + r")$"  # a unit word: 18 dollars, 5 cm
)  # fmt: skip
_MATH_WORDS = frozenset((
    "pi", "sqrt", "inf", "infty", "infinity", "ln", "log", "exp", "sin", "cos", "tan", "cot", "sec", "csc",
    "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "mod", "times", "cdot", "div", "frac", "and", "or"
))  # fmt: skip
_SHORT_UNITS = frozenset(("cm", "mm", "km", "kg", "mg", "ml", "mL", "ft", "in", "lb", "oz", "hr", "mi", "yd"))
_NUMBER = re.compile(
    r"(?P<sign>[-+]?)\s*(?:"
    r"(?P<decimal>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+)"  # 1,234.5  18  18.  .5
    r"|(?P<num>\d+)\s*/\s*(?P<den>\d+)"  # 3/4
    r"|\\[dt]?frac\s*\{\s*(?P<fnum>[-+]?\d+)\s*\}\s*\{\s*(?P<fden>[-+]?\d+)\s*\}"  # \frac{3}{4}
    r"|\\[dt]?frac(?P<snum>\d)(?P<sden>\d))"  # \frac34
)
_MAX_NUMBER_CHARS = 100


def _is_unit(words: str, in_text_mode: bool) -> bool:
    """Whether trailing words are a unit that can be dropped: not a math word, and in math mode not a variable
    (a single letter, or two letters other than a known unit such as ``cm``)."""
    for word in words.split():
        if word.lower() in _MATH_WORDS:
            return False
        if not in_text_mode and len(word) < 3 and word not in _SHORT_UNITS:
            return False
    return True


def _drop_suffixes(text: str) -> str:
    for _ in range(4):  # "5 \text{ cm}^2", "18 dollars per hour": a few suffixes at most
        match = _SUFFIXES.search(text)
        if match is None:
            return text
        text_unit, word = match.group(1), match.group(2)
        if text_unit is not None and not _is_unit(text_unit, in_text_mode=True):
            return text
        if word is not None and not _is_unit(word, in_text_mode=False):
            return text
        text = text[: match.start()].rstrip()
    return text


def exact_number(text: str) -> ExactNumber | None:
    """Reads a plain number exactly, or returns ``None`` for anything else (left to math-verify).

    Accepted: integers and decimals with an optional sign (``-``, ``−``), GSM8K/LaTeX thousands separators
    (``1,234``, ``1{,}234``, ``1\\!,\\!234``), ``a/b`` and ``\\frac{a}{b}`` (also ``\\dfrac``, ``\\tfrac``,
    ``\\frac34``), a leading currency sign (``$``, ``\\$``, ``€``, ``£``), and trailing units: ``\\text{...}``
    words, degrees (``^\\circ``, ``°``), ``¢`` and unit words (``dollars``, ``cm``; never a math word such as
    ``pi`` or a one-letter variable). Percentages are not plain numbers (math-verify reads ``25\\%`` as both 25
    and 0.25).

    >>> exact_number("1,234").value, exact_number(r"-\\dfrac{3}{4}").value, exact_number("$18.50 dollars")
    (Fraction(1234, 1), Fraction(-3, 4), ExactNumber(value=Fraction(37, 2), form='decimal'))
    >>> exact_number("2 pi"), exact_number("5x"), exact_number("25%"), exact_number("1/0")
    (None, None, None, None)
    """
    if len(text) > _MAX_NUMBER_CHARS:
        return None
    text = _LATEX_SPACING.sub("", text.replace("{,}", ",").replace("−", "-")).strip()
    return _read_number(_CURRENCY.sub(r"\1", _drop_suffixes(text)))


def _read_number(text: str) -> ExactNumber | None:
    """The number that ``text`` is, exactly as :data:`_NUMBER` reads it (no units, no spacing commands)."""
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    sign = -1 if match["sign"] == "-" else 1
    if match["decimal"] is not None:
        digits = match["decimal"].replace(",", "")
        return ExactNumber(sign * Fraction(digits.rstrip(".") or "0"), "decimal" if "." in digits else "integer")
    numerator = match["num"] or match["fnum"] or match["snum"]
    denominator = match["den"] or match["fden"] or match["sden"]
    if int(denominator) == 0:
        return None
    return ExactNumber(sign * Fraction(int(numerator), int(denominator)), "fraction")


_BASE_NUMBER = re.compile(r"([0-9A-Za-z]+)_\{?(\d+)\}?")


def looks_like_base_number(text: str) -> bool:
    """Whether ``text`` is written like a number in a base (``52_8``), whether or not its digits exist there."""
    return _BASE_NUMBER.fullmatch(text.strip()) is not None


def base_number(text: str) -> int | None:
    """The value of a number written in a base, ``52_8`` or ``A7_{12}``; ``None`` for anything else, or for digits
    that do not exist in the base (math-verify drops the base, so it would take ``52_9`` for ``52_8``).

    >>> base_number("52_8"), base_number("A7_{12}"), base_number("19_8"), base_number("x_1")
    (42, 127, None, None)
    """
    match = _BASE_NUMBER.fullmatch(text.strip())
    if match is None or not 2 <= int(match[2]) <= 36:
        return None
    try:
        return int(match[1], int(match[2]))
    except ValueError:
        return None


class NumberList(NamedTuple):
    """A bracketed or bare list of plain numbers: a tuple, an interval, a set or a list of solutions.

    Attributes:
        kind: The brackets, ``"()"``, ``"[]"``, ``"[)"``, ``"(]"``, or ``"set"`` for ``\\{...\\}``, or ``"list"``
            for none (math-verify reads a bare list as a set: the solutions in any order).
        values: The numbers, in order.
    """

    kind: str
    values: tuple[ExactNumber, ...]


_SIZE_COMMANDS = re.compile(r"\\(?:left|right|[bB]igg?[lr]?)(?![A-Za-z])")
_MAYBE_THOUSANDS = re.compile(r"\d,\d{3}(?!\d)|\{,\}")


def number_list(text: str) -> NumberList | None:
    """Reads a list of at least two plain numbers, ``(1, -2)``, ``[0, 1)``, ``\\{3, 5\\}``, ``1, 2``, or returns
    ``None`` (also where a comma could be a thousands separator, ``(1,234)``: math-verify decides those).

    >>> number_list(r"\\left( 3, \\frac{1}{2} \\right)").kind, number_list("1, -2").kind, number_list("(1,234)")
    ('()', 'list', None)
    """
    if len(text) > 4 * _MAX_NUMBER_CHARS:
        return None
    text = _SIZE_COMMANDS.sub("", _LATEX_SPACING.sub("", text.replace("−", "-"))).strip()
    if _MAYBE_THOUSANDS.search(text):
        return None
    if text.startswith("\\{") and text.endswith("\\}"):
        kind, inner = "set", text[2:-2]
    elif text[:1] in ("(", "[") and text[-1:] in (")", "]"):
        kind, inner = text[0] + text[-1], text[1:-1]
    else:
        kind, inner = "list", text
    parts = inner.split(",")
    values = [_read_number(part.strip()) for part in parts]
    if len(values) < 2 or None in values:
        return None
    return NumberList(kind, tuple(values))  # type: ignore[arg-type]
