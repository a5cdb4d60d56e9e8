"""Reading math answers: where the answer is in an ``Answer:`` text, its final values, and its form.

Used by :mod:`reason_gym.checkers.math_answer` for its extraction (boxes, math spans, lead-ins) and its rules on
the form of an answer: hedges (several final values, hedging words) and equations (which side names an unknown).
Everything here is plain string and regex work with linear-time patterns: nothing is evaluated. Numbers and units
are read by :mod:`reason_gym.checkers.math_quantities` (its names are importable from here too).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from reason_gym.checkers.math_quantities import (
    SIZE_COMMANDS,
    ExactNumber,
    NumberList,
    base_number,
    canonical_unit,
    exact_number,
    looks_like_base_number,
    number_list,
    split_unit,
    units_agree,
)

__all__ = [  # the numbers and units are defined in reason_gym.checkers.math_quantities
    "MAX_SPLIT_CHARS",
    "ExactNumber",
    "FinalAnswers",
    "NumberList",
    "all_boxed",
    "alternatives",
    "base_number",
    "bracket_kind",
    "canonical_unit",
    "equation_sides",
    "exact_number",
    "extract_answer",
    "final_answers",
    "has_connector",
    "is_constant",
    "is_list",
    "is_name",
    "last_boxed",
    "looks_like_base_number",
    "names_unknowns",
    "nesting_depth",
    "number_list",
    "split_top_level",
    "split_unit",
    "units_agree",
]

# ---------------------------------------------------------------------------------------------------- extraction

_LEAD_IN = re.compile(r"^(?:(?:the\s+)?(?:final\s+)?answer\s+is\s*:?|=)\s*", re.IGNORECASE)
_MATH_MODE = r"((?:[^$\\]|\\.)*)"  # text between dollars: no unescaped $ (an escaped \$ is a currency sign)
_WRAPPED = re.compile(rf"\$\${_MATH_MODE}\$\$|\${_MATH_MODE}\$|\\\((.*)\\\)|\\\[(.*)\\\]", re.DOTALL)
_DOLLAR_SPAN = re.compile(r"(?<!\\)\$((?:[^$\\]|\\.)+)\$", re.DOTALL)
_BOX = re.compile(r"\\(?:boxed|fbox|framebox)(?![A-Za-z])")
# Markdown emphasis: **18** anywhere (never a power: not next to a word or bracket), *18* or __18__ around it all.
_BOLD = re.compile(r"(?<![\w)}\]*])\*\*(?=\S)([^*]+?)(?<=\S)\*\*(?![\w({\[*])")
_EMPHASIS = re.compile(r"\*(?=\S)([^*]+?)(?<=\S)\*|__(?=\S)([^_]+?)(?<=\S)__")


_TOKEN = re.compile(r"[^\s$]+")


def _matching_braces(text: str, start: int = 0) -> dict[int, int]:
    """The index of the closing brace of every unescaped ``{`` from ``start`` on that is closed, in one pass."""
    closing, opened = {}, []
    for k in range(start, len(text)):
        char = text[k]
        if char in "{}" and text[k - 1 : k] != "\\":
            if char == "{":
                opened.append(k)
            elif opened:
                closing[opened.pop()] = k
    return closing


def _box_at(text: str, i: int, closing: dict[int, int] | None = None) -> tuple[str, int] | None:
    """The content of the box whose command ends at ``i``, and the index after it; ``None`` if unclosed or empty.
    ``closing`` maps opening braces to closing ones (:func:`_matching_braces`), to find many boxes in linear time."""
    j = i
    while j < len(text) and text[j] == " ":
        j += 1
    if j < len(text) and text[j] == "{":
        k = (_matching_braces(text, j) if closing is None else closing).get(j)
        return None if k is None else (text[j + 1 : k], k + 1)
    if j > i:
        token = _TOKEN.match(text, j)
        return (token.group(0), token.end()) if token else None
    return None


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
    box = _box_at(text, start + (6 if text.startswith("\\boxed", start) else 5))
    return None if box is None else box[0]


def all_boxed(text: str) -> list[str]:
    """The contents of every box in ``text``, in order (a box inside another is part of the outer one).

    >>> all_boxed(r"\\boxed{5} or \\fbox{6}, \\boxed{\\frac{1}{2}}")
    ['5', '6', '\\\\frac{1}{2}']
    """
    contents, position, closing = [], 0, _matching_braces(text)
    while (match := _BOX.search(text, position)) is not None:
        box = _box_at(text, match.end(), closing)
        position = match.end() if box is None else box[1]
        if box is not None:
            contents.append(box[0])
    return contents


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


def _strip_emphasis(text: str) -> str:
    """``18`` for ``*18*`` or ``__18__`` (the whole text); ``**bold**`` is unwrapped anywhere before this."""
    match = _EMPHASIS.fullmatch(text)
    return text if match is None else (match[1] or match[2]).strip()


def _after_prefix(text: str) -> str:
    text = _BOLD.sub(r"\1", text.strip())  # before the prefix: "**Answer:** 18"
    return text[7:].strip() if text[:7].lower() == "answer:" else text


def _unboxed(text: str) -> str:
    """The text of an answer without a box: no lead-in, final period or emphasis."""
    for _ in range(2):  # "**The answer is 18**." and "The answer is *18*."
        text = _strip_emphasis(_strip_sentence_end(_LEAD_IN.sub("", text)))
    return text


def extract_answer(text: str) -> str:
    """The answer expression in an ``Answer:`` text (or in a reference answer).

    Takes the last ``\\boxed{}`` if there is one; otherwise drops a lead-in (``The answer is``), a final period,
    markdown emphasis (``**18**``) and ``$...$``, ``$$...$$``, ``\\(...\\)`` or ``\\[...\\]`` delimiters (the last
    ``$...$`` span of a sentence). A lone ``$`` is a currency sign and stays.

    >>> extract_answer(r"Answer: The final answer is $\\boxed{18}$.")
    '18'
    >>> extract_answer(r"$\\frac{1}{2}$."), extract_answer("$18"), extract_answer(r"it is $x=5$ here")
    ('\\\\frac{1}{2}', '$18', 'x=5')
    >>> extract_answer("The answer is **18**."), extract_answer("*18*")
    ('18', '18')
    """
    text = _after_prefix(text)
    boxed = last_boxed(text)
    if boxed is not None:
        return _strip_sentence_end(boxed)
    return _unwrapped(_unboxed(text))


def _unwrapped(text: str) -> str:
    wrapped = _WRAPPED.fullmatch(text)
    if wrapped:
        return _strip_sentence_end(next(group for group in wrapped.groups() if group is not None))
    spans = _DOLLAR_SPAN.findall(text)
    return _strip_sentence_end(spans[-1]) if spans else text


# ------------------------------------------------------------------------------------ final values and hedges


class FinalAnswers(NamedTuple):
    """What an answer text gives as its final answer.

    Attributes:
        values: Each final value, in order, without repeats: one for a plain answer; several for more than one
            box with different contents, or values joined by ``or`` / ``and`` / commas between math spans.
        hedged: Whether the answer says it is unsure (``maybe``, ``perhaps``, ``possibly``, ``probably``), or
            states another value beside its final one that cannot be read as one plain value (``\\boxed{5} or 6
            if rounding up``, ``$6$ then $5$``).
        restated: Values stated beside the final one, each a plain number or a math span, joined to it by ``or``
            or a comma, or in brackets (``\\boxed{\\frac{3}{2}}, or 1.5``, ``\\boxed{\\frac14} (0.25)``,
            ``$18$ (or $\\frac{36}{2}$)``). The same value restated is no hedge, another value is: the checker
            judges them as more final values (:meth:`~reason_gym.checkers.math_answer.MathAnswerChecker.check`).
    """

    values: tuple[str, ...]
    hedged: bool
    restated: tuple[str, ...] = ()


MAX_SPLIT_CHARS = 2000
"""Answers longer than this are not split into alternatives (they are judged wrong as too long anyway)."""

_HEDGE = re.compile(r"(?<![\\\w])(?:maybe|perhaps|possibly|probably|guess|unsure|not sure)(?!\w)", re.IGNORECASE)
_STRAY_NUMBER = re.compile(r"(?<![\w.])\d")  # a number of its own, once exponents and subscripts are gone
_SCRIPT = re.compile(r"[\^_]\s*(?:\{[^{}]*\}|\\?\w)")  # ^2, _{10}, ^\circ
_JOINING = r"(?:or|nor|then|not|else|otherwise|instead|rather)(?!\w)"
_JOINED_BEFORE = re.compile(rf"(?<![\\\w]){_JOINING}\W*$", re.IGNORECASE)  # "6 or " before the value
_JOINED_AFTER = re.compile(  # the clause after the value: "\\boxed{5} or 6", "(or 6)", "\\boxed{5}, 6", "\\boxed 5 6",
    # "\\text{(or 6)}", "(5 or 6)", ", 5, 6"
    rf"[\s$,;)]*(?:(?:\(\s*|\\text\s*\{{\s*\(?\s*)?(?:-?\d[\d.,]*\s*)?{_JOINING}[^A-Za-z\d]*(?:[A-Za-z]+[^A-Za-z\d]+)?-?\d"
    r"|[\s$,;(]*-?\d[\d.,\s]*[\s$)]*$)",
    re.IGNORECASE,
)
# A value restated beside the final one: "6 or " before it (the value in a span before "or", or here), and after it
# ", or 1.5", " (or 0.5)", " (0.25)", " \\text{ or } 2.0" (only "or", a comma or brackets: "then 6" is another value).
_OR = re.compile(r"or(?!\w)", re.IGNORECASE)
_RESTATED_AFTER = re.compile(
    r"[\s$,;)]*(?:\\text\s*\{\s*or\s*\}|(?P<open>\(|\\text\s*\{)?\s*(?:(?<![\\\w])or(?!\w))?)[\s,]*", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n")  # the reasoning around a value: another sentence
_TEXT_CONNECTOR = re.compile(
    r"\\(?:text|textrm|textnormal|textbf|textit|mbox|mathrm)\s*\{\s*(or|and)\s*\}", re.IGNORECASE
)
_CONNECTOR = re.compile(r"(?<![\\\w])(?:or|and)(?!\w)|(?<!\\);", re.IGNORECASE)  # not \; (a space)
_FILLER = re.compile(r"^(?:(?:either|both|maybe|perhaps|possibly|probably)(?!\w)[\s,]*)+", re.IGNORECASE)
_SPAN_GAP = re.compile(r"[\s,;]*(?:(?:or|and|either|maybe|perhaps|possibly|probably)(?!\w)[\s,;]*)*", re.IGNORECASE)


def split_top_level(text: str, separator: re.Pattern[str]) -> list[str]:
    """``text`` split where ``separator`` matches outside every bracket (``{ ( [``, escaped or not).

    >>> split_top_level(r"x = \\frac{a=1}{2} = 3", re.compile("="))
    ['x ', ' \\\\frac{a=1}{2} ', ' 3']
    """
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        char = text[i]
        if char in "{([":
            depth += 1
        elif char in "})]":
            depth = max(depth - 1, 0)
        elif depth == 0:
            match = separator.match(text, i)
            if match is not None and match.end() > i:
                parts.append(text[start:i])
                start = i = match.end()
                continue
        i += 1
    return [*parts, text[start:]]


def has_connector(text: str) -> bool:
    """Whether ``text`` joins values with ``or`` / ``and`` / ``;`` outside brackets (``\\text{ or }`` included)."""
    if len(text) > MAX_SPLIT_CHARS or not _CONNECTOR.search(text):
        return False
    return len(split_top_level(_TEXT_CONNECTOR.sub(r" \1 ", text), _CONNECTOR)) > 1


def alternatives(text: str) -> list[str]:
    """The values ``text`` joins with ``or`` / ``and`` / ``;`` (``either``, ``both`` and hedging words dropped).

    >>> alternatives(r"x = 2 \\text{ or } x = 3"), alternatives("5, or maybe 6"), alternatives(r"\\text{a or b}")
    (['x = 2', 'x = 3'], ['5', '6'], ['\\\\text{a or b}'])
    """
    if len(text) > MAX_SPLIT_CHARS:
        return [text]
    parts = split_top_level(_TEXT_CONNECTOR.sub(r" \1 ", text), _CONNECTOR) if _CONNECTOR.search(text) else [text]
    values = [_strip_sentence_end(_FILLER.sub("", part.strip(" ,;"))) for part in parts]
    return [value for value in values if value]


def _joined_spans(text: str) -> list[str] | None:
    """The contents of the last math spans of ``text`` when only commas and connectors (``or``, ``and``) join
    them (``$5$ or $6$``), or ``None`` when the last span stands alone (``the sum of $a$ and $b$ is $7$``)."""
    spans = list(_DOLLAR_SPAN.finditer(text)) if len(text) <= MAX_SPLIT_CHARS else []
    joined = spans[-1:]
    for previous, current in zip(reversed(spans[:-1]), reversed(spans[1:]), strict=True):
        if not _SPAN_GAP.fullmatch(text, previous.end(), current.start()):
            break
        joined.insert(0, previous)
    return [_strip_sentence_end(span[1]) for span in joined] if len(joined) > 1 else None


def _states_a_number(text: str) -> bool:
    """Whether ``text`` writes a number of its own (not an exponent or subscript such as ``cm^2``)."""
    return _STRAY_NUMBER.search(_SCRIPT.sub("", text)) is not None


def _outside_boxes(text: str) -> tuple[str, str, bool]:
    """The text before the first box, the text after it outside every box, and whether every box is closed."""
    closing, position, outside = _matching_braces(text), 0, []
    first = _BOX.search(text)
    while (match := _BOX.search(text, position)) is not None:
        outside.append(text[position : match.start()])
        box = _box_at(text, match.end(), closing)
        if box is None:
            return "", "", False
        position = box[1]
    outside.append(text[position:])
    return outside[0] if first else text, "".join(outside[1:]), True


def _restated_value(text: str) -> str | None:
    """``text`` as one plain value stated again (a number as :func:`exact_number` reads it, with a currency sign or
    a unit; or one math span with no words in it), else ``None``: ``6 if rounding up`` is no value restated."""
    span = _DOLLAR_SPAN.fullmatch(text.strip())
    value = _strip_sentence_end(span[1] if span else text.strip(" \t\n$"))  # the end of the box's span: 6$
    if not value or len(value) > MAX_SPLIT_CHARS or _HEDGE.search(value) or _CONNECTOR.search(value):
        return None
    if exact_number(value) is not None:
        return value
    words = re.search(r"[A-Za-z]{2}", _COMMAND.sub(" ", value)) or re.search(r"\\(?:text|mbox|operatorname)", value)
    return value if span and not words else None  # $\frac{1+\sqrt5}{2}$, not $x \text{ if } y$


def _stray_values(text: str) -> tuple[bool, tuple[str, ...]]:
    """Whether an answer states a value besides its boxes, or besides the math span taken as its value: a number
    after it (``\\boxed{5} or 6``, ``\\boxed 5 6``, ``$5$ or 6``), or a value joined to it by ``or`` / ``then``
    (``6 or \\boxed{5}``, ``$6$ (or $5$)``, ``$6$ then $5$``). Numbers in the reasoning before it are no values
    given (``the sum of $2$ and $3$ is $5$``).

    Returns whether such a value makes a hedge by itself (it cannot be read as one plain value restated, or is
    joined by another word than ``or``: ``then``, ``not``), and the values read (``1.5`` in ``\\boxed{\\frac32},
    or 1.5``), which the checker compares with the final value as it compares several boxes."""
    boxed = _BOX.search(text)
    spans = [] if boxed else list(_DOLLAR_SPAN.finditer(text))
    if not (boxed or spans) or (spans and (_WRAPPED.fullmatch(text.strip().rstrip(".")) or _joined_spans(text))):
        return False, ()  # the whole text is the value, or values joined by "or" / commas (judged as several values)
    if boxed:  # before the boxes is reasoning ("so $AB = 1.25$, or $\boxed{1\frac14}$" restates a value)
        before, after = "", _outside_boxes(text)[1]
    else:
        before, after = text[: spans[-1].start()], text[spans[-1].end() :]
    before_spans = list(_DOLLAR_SPAN.finditer(before))
    gap_start = before_spans[-1].end() if before_spans else 0
    gap = _SENTENCE_END.split(before[gap_start:])[-1]
    stray: list[str | None] = []
    joined = _JOINED_BEFORE.search(gap)
    if joined is not None and (gap_start > 0 or _states_a_number(gap)):
        value = gap[: joined.start()].rstrip(" \t\n(,")  # "18 (or $...$": 18; "$18$ (or $...$": nothing here
        if not _OR.match(joined.group()) or (gap_start and value):
            stray.append(None)  # $6$ then $5$; $6$ is less than (or $5$)
        else:
            stray.append(_restated_value(value or before_spans[-1][0]))
    clause = _SENTENCE_END.split(after)[0]
    if _JOINED_AFTER.match(clause) is not None:
        lead = _RESTATED_AFTER.match(clause)  # every part is optional: it always matches
        opened, value = (lead["open"], clause[lead.end() :].rstrip()) if lead else (None, clause)
        if opened:  # (or 0.5), \text{(or 0.5)}: the bracket must close the clause
            value = value.rstrip("$ \t\n")
            value = value[:-1] if value.endswith(")" if opened == "(" else "}") else ""
        stray.append(_restated_value(value))
    return None in stray, tuple(value for value in stray if value is not None)


def final_answers(text: str) -> FinalAnswers:
    """The final values an answer text gives (see :class:`FinalAnswers`).

    Boxes: every box counts, not only the last (``\\boxed{5} ... \\boxed{6}`` gives two values). Without a box,
    the answer as :func:`extract_answer` reads it, or the math spans joined by ``or`` / ``and`` / commas. Each
    value is then split at top-level ``or`` / ``and``. Hedging words count inside the boxes and after the first
    one, or anywhere in an answer without a box.

    >>> final_answers(r"\\boxed{5} and again \\boxed{5}")
    FinalAnswers(values=('5',), hedged=False, restated=())
    >>> final_answers("$5$ or $6$")
    FinalAnswers(values=('5', '6'), hedged=False, restated=())
    >>> final_answers(r"\\boxed{\\frac{1}{2}} (or 0.5)")
    FinalAnswers(values=('\\\\frac{1}{2}',), hedged=False, restated=('0.5',))
    >>> final_answers("Answer: probably 18")
    FinalAnswers(values=('18',), hedged=True, restated=())
    """
    text = _after_prefix(text)
    if _BOX.search(text) is not None and not _outside_boxes(text)[2]:
        return FinalAnswers(("",), True)  # an unclosed box: no final value to read
    if last_boxed(text) is not None or _BOX.search(text) is not None:
        first_box = _BOX.search(text)
        candidates, scope = [_strip_sentence_end(box) for box in all_boxed(text)], text[first_box.start() :]  # type: ignore[union-attr]
        nested = [final_answers(box) for box in candidates if _BOX.search(box)]
        if any(
            inner.hedged or len(inner.values) > 1 or _states_a_number("".join(_outside_boxes(box)[:2]))
            for inner, box in zip(nested, [box for box in candidates if _BOX.search(box)], strict=True)
        ):
            return FinalAnswers(tuple(candidates), True)  # \boxed{\boxed{6}\boxed{5}}, \boxed{6 \boxed{5}}
        candidates = [extract_answer(box) if _BOX.search(box) else box for box in candidates]
    else:
        unboxed = _unboxed(text)
        candidates, scope = _joined_spans(unboxed) or [_unwrapped(unboxed)], text
    values: dict[str, str] = {}
    for candidate in candidates:
        for value in alternatives(candidate):
            values.setdefault(" ".join(value.split()), value)
    stray_hedge, restated = _stray_values(text)
    hedged = _HEDGE.search(scope) is not None or stray_hedge
    return FinalAnswers(tuple(values.values()) or ("",), hedged, restated)


# Not \, (a space) nor a thousands separator: 1,234, 1,\!234, 11,\! 111 (MATH), 1,\ 234 (a space command before
# the digits; "1, 234" with a plain space is a list).
_LIST_COMMA = re.compile(r"(?<!\\)(?<!\d),|(?<=\d),(?!(?:\\[!, ]\s*)?\d{3}(?!\d))")


def is_list(text: str) -> bool:
    """Whether a reference answer is a list of values (a top-level comma, a set ``\\{...\\}``, or ``\\pm``): then
    several final values may be the list, written one by one (``2 or 3`` for ``2, 3``, ``5 or -5`` for ``\\pm 5``).

    >>> is_list("2, 3"), is_list(r"\\{2\\}"), is_list("(2, 3)"), is_list("1,234"), is_list(r"0.25\\,\\text{ cm}")
    (True, True, False, False, False)
    """
    stripped = text.strip()
    if stripped.startswith(("\\{", "\\left\\{")) or re.search(r"\\[pm][mp](?![A-Za-z])", stripped):
        return True
    return len(split_top_level(stripped, _LIST_COMMA)) > 1


def bracket_kind(text: str) -> str:
    """``"set"`` for an enumerated set ``\\{1, 2\\}``, ``"tuple"`` for brackets around a top-level comma (a tuple or
    an interval, ``(0, 1)``, ``[0, 1)``), ``""`` for anything else (a set-builder ``\\{x : x > 0\\}`` included).

    >>> bracket_kind(r"\\left\\{0, 1\\right\\}"), bracket_kind("[0, 1)"), bracket_kind("(5)"), bracket_kind("0, 1")
    ('set', 'tuple', '', '')
    """
    inner = SIZE_COMMANDS.sub("", text).strip()
    if inner.startswith("\\{") and inner.endswith("\\}"):
        return "" if re.search(r":|\\mid|\|", inner) else "set"
    if inner[:1] in "([" and inner[-1:] in ")]" and len(split_top_level(inner[1:-1], _LIST_COMMA)) > 1:
        return "tuple"
    return ""


# ---------------------------------------------------------------------------------------------------- equations

_EQUALS = re.compile(r"(?<![<>!=:\\])(?::=|==|=)(?!=)")
_GREEK = (
    "alpha|beta|gamma|delta|epsilon|varepsilon|zeta|eta|theta|vartheta|iota|kappa|lambda|mu|nu|xi|rho|sigma|tau"
    "|upsilon|phi|varphi|chi|psi|omega|Gamma|Delta|Theta|Lambda|Xi|Sigma|Phi|Psi|Omega"
)  # not \pi: a constant
_NAME = re.compile(
    rf"\s*(?:[A-Za-z]|\\(?:{_GREEK})(?![A-Za-z])"  # x, \theta
    r"|[A-Z]{2,4}|\\overline\s*\{\s*[A-Z]{2}\s*\}|(?:m\s*)?\\angle\s*[A-Z]{1,3}|\[[A-Z]{3,4}\])"  # AB, \angle ABC
    r"(?:\s*_\s*(?:\{[^{}]*\}|\w))?'*(?:\s*\^\s*\{?\s*-1\s*\}?)?"  # x_1, x', f^{-1}
    r"(?:\s*(?:\\left)?\(\s*[^()=]*(?:\\right)?\))?\s*"  # f(x), P(A)
)
_TEXT_GROUP = re.compile(r"\\(?:text|textrm|textnormal|textbf|textit|mbox|mathrm|operatorname)\s*\{[^{}]*\}")
_GREEK_COMMAND = re.compile(rf"\\(?:{_GREEK})(?![A-Za-z])")
_COMMAND = re.compile(r"\\[A-Za-z]+")


def equation_sides(text: str) -> list[str]:
    """The sides of an equation (or of a chain ``a = b = c``) at the top level; ``[text]`` for no equation.

    ``<=``, ``>=``, ``!=`` and ``\\=`` are not equals signs; ``:=`` and ``==`` are.

    >>> equation_sides("x + y = 3"), equation_sides(r"\\{x : x = 1\\}"), equation_sides("x <= 3")
    (['x + y', '3'], ['\\\\{x : x = 1\\\\}'], ['x <= 3'])
    """
    if "=" not in text:
        return [text]
    return [side.strip() for side in split_top_level(text, _EQUALS)]


def is_name(text: str) -> bool:
    """Whether ``text`` names one unknown: a letter or Greek letter, with an optional subscript, primes,
    inverse and argument list (``x``, ``a_1``, ``\\theta``, ``f(x)``, ``f^{-1}(3)``), or a geometric quantity
    (``AB``, ``\\overline{AB}``, ``m\\angle ABC``, ``[ABC]``); a product (``xy``) or sum (``x + y``) is not.

    >>> is_name("x"), is_name("f(2)"), is_name(r"\\theta_0"), is_name("x + y"), is_name("2x"), is_name(r"\\pi")
    (True, True, True, False, False, False)
    """
    return _NAME.fullmatch(text) is not None


def names_unknowns(text: str) -> bool:
    """Whether ``text`` names unknowns: one (:func:`is_name`) or a tuple of them (``(x, y)``).

    >>> names_unknowns("(x, y)"), names_unknowns(r"\\left(a, b_1\\right)"), names_unknowns("(1, y)")
    (True, True, False)
    """
    if is_name(text):
        return True
    inner = SIZE_COMMANDS.sub("", text).strip()
    if not (inner.startswith("(") and inner.endswith(")")):
        return False
    return all(is_name(part) for part in inner[1:-1].split(","))


def is_constant(text: str) -> bool:
    """Whether ``text`` has no unknown: no letter outside command names and text groups, but ``e`` and ``i``
    (and no Greek letter but ``\\pi``).

    >>> is_constant(r"-\\frac{3}{2}"), is_constant(r"2\\sqrt{3} + i"), is_constant("2x + 3"), is_constant(r"\\theta")
    (True, True, False, False)
    """
    bare = _COMMAND.sub("", _GREEK_COMMAND.sub("v", _TEXT_GROUP.sub("", text)))
    return bool(bare.strip()) and set(re.findall("[A-Za-z]", bare)) <= {"e", "i"}
