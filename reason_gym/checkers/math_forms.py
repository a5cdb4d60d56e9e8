"""Reading math answers: where the answer is in an ``Answer:`` text, its parts, and the forms read exactly in-process.

Used by :mod:`reason_gym.checkers.math_answer` for its extraction, its rules on the form of an answer (hedges,
equations, units) and its exact fast paths. Everything here is plain string and regex work with linear-time
patterns, and exact :class:`~fractions.Fraction` arithmetic on inputs capped in length: nothing is evaluated, and
anything not recognised is left (``None``) to math-verify.
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
_BOX = re.compile(r"\\(?:boxed|fbox)")
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
        hedged: Whether the answer says it is unsure (``maybe``, ``perhaps``, ``possibly``, ``probably``).
    """

    values: tuple[str, ...]
    hedged: bool


MAX_SPLIT_CHARS = 2000
"""Answers longer than this are not split into alternatives (they are judged wrong as too long anyway)."""

_HEDGE = re.compile(r"(?<![\\\w])(?:maybe|perhaps|possibly|probably)(?!\w)", re.IGNORECASE)
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


def final_answers(text: str) -> FinalAnswers:
    """The final values an answer text gives (see :class:`FinalAnswers`).

    Boxes: every box counts, not only the last (``\\boxed{5} ... \\boxed{6}`` gives two values). Without a box,
    the answer as :func:`extract_answer` reads it, or the math spans joined by ``or`` / ``and`` / commas. Each
    value is then split at top-level ``or`` / ``and``. Hedging words count inside the boxes and after the first
    one, or anywhere in an answer without a box.

    >>> final_answers(r"\\boxed{5} and again \\boxed{5}"), final_answers("$5$ or $6$")
    (FinalAnswers(values=('5',), hedged=False), FinalAnswers(values=('5', '6'), hedged=False))
    >>> final_answers("Answer: probably 18")
    FinalAnswers(values=('18',), hedged=True)
    """
    text = _after_prefix(text)
    if last_boxed(text) is not None:
        first_box = _BOX.search(text)
        candidates, scope = [_strip_sentence_end(box) for box in all_boxed(text)], text[first_box.start() :]  # type: ignore[union-attr]
        candidates = [extract_answer(box) if _BOX.search(box) else box for box in candidates]
    else:
        unboxed = _unboxed(text)
        candidates, scope = _joined_spans(unboxed) or [_unwrapped(unboxed)], text
    values: dict[str, str] = {}
    for candidate in candidates:
        for value in alternatives(candidate):
            values.setdefault(" ".join(value.split()), value)
    hedged = _HEDGE.search(scope) is not None
    return FinalAnswers(tuple(values.values()) or ("",), hedged)


_LIST_COMMA = re.compile(r"(?<!\\)(?<!\d),|(?<=\d),(?!(?:\\!)?\d{3}(?!\d))")  # not \, (a space) nor 1,234


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
    inner = _SIZE_COMMANDS.sub("", text).strip()
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


# ------------------------------------------------------------------------------------------------------- units

_LATEX_SPACING = re.compile(r"\\[!,;: ]|\\q?quad\b|~")
_CURRENCY = re.compile(r"^([-+]?)\s*(\\\$|\$|€|£|US\$)\s*")
_CURRENCY_UNITS = {"\\$": "dollar", "$": "dollar", "US$": "dollar", "€": "euro", "£": "pound sterling"}
_UNIT_PIECE = re.compile(
    r"(?:(?P<degree>\^\s*\{?\s*\\circ\s*\}?|°|\\degree(?![A-Za-z]))"  # 30^\circ, 20°C, 20^\circ\text{F}
    r"(?:\s*\\(?:text|mathrm|rm)\s*\{\s*(?P<scale>[CF])\s*\}|\s*(?P<bare_scale>[CF])(?![A-Za-z]))?"
    r"|(?P<percent>\\?%)"
    r"|(?P<cent>¢)"
    r"|\\(?:text|textrm|textnormal|textbf|textit|mathrm|mbox|rm|operatorname)\s*\{(?P<text>[A-Za-z ./^\d]*)\}"
    r"|(?P<space>\s)(?P<word>[A-Za-z][A-Za-z./]*)"
    r"|(?<=\d)(?P<glued>[A-Za-z]{2,3}(?:/[A-Za-z]{1,3})?))"  # 5cm, 60km/h: only known units (checked below)
    r"(?P<power>\s*\^\s*\{?\s*[23]\s*\}?|[²³])?\s*$"
)
_PROSE_WORDS = frozenset(("and", "or", "if", "for", "when", "where", "with", "to", "is", "not", "no", "of", "the"))
_MATH_WORDS = _PROSE_WORDS | frozenset((
    "pi", "sqrt", "inf", "infty", "infinity", "ln", "log", "exp", "sin", "cos", "tan", "cot", "sec", "csc",
    "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "mod", "times", "cdot", "div", "frac", "dfrac", "tfrac",
    "left", "right", "circ", "text",
))  # fmt: skip
_UNIT_ALIASES = {
    canonical: canonical
    for canonical in ("mm", "cm", "m", "km", "in", "ft", "yd", "mi", "mg", "g", "kg", "lb", "oz", "ml", "l", "s")
} | {
    alias: canonical
    for canonical, aliases in {
        "mm": "millimeter millimetre", "cm": "centimeter centimetre", "m": "meter metre", "km": "kilometer kilometre",
        "in": "inch inches", "ft": "foot feet", "yd": "yard", "mi": "mile", "mg": "milligram", "g": "gram gm",
        "kg": "kilogram kilo", "lb": "pound lbs", "oz": "ounce", "ml": "milliliter millilitre cc",
        "l": "liter litre", "gal": "gallon", "s": "second sec secs", "min": "minute mins", "h": "hour hr hrs",
        "day": "days", "week": "wk", "month": "months", "year": "yr yrs", "dollar": "usd buck", "cent": "¢",
        "euro": "eur", "degree": "deg", "degree c": "celsius centigrade", "degree f": "fahrenheit",
        "radian": "rad", "%": "percent pct", "unit": "units",
        "km/h": "kph kmh", "mi/h": "mph", "m/s": "mps", "ft/s": "fps",
    }.items()
    for alias in aliases.split()
}  # fmt: skip
_KNOWN_UNITS = frozenset(_UNIT_ALIASES.values())
_POWER_WORDS = {"square": "^2", "sq": "^2", "cubic": "^3", "cu": "^3"}


def _unit_word(word: str) -> str:
    """The canonical spelling of one unit word: ``centimeters`` -> ``cm``, ``Dollars`` -> ``dollar``."""
    lower = word.lower().rstrip(".")
    if word in ("mL", "L"):
        return "ml" if word == "mL" else "l"
    for candidate in (lower, lower[:-1] if lower.endswith("s") else lower):
        if candidate in _UNIT_ALIASES:
            return _UNIT_ALIASES[candidate]
    return lower[:-1] if len(lower) > 3 and lower.endswith("s") and not lower.endswith("ss") else lower


def canonical_unit(text: str) -> str:
    """One spelling for a unit: ``square centimeters`` = ``cm^2`` = ``cm²``; ``km per hour`` = ``km/h`` =
    ``kph``; ``dollars`` = ``dollar``; ``degrees`` = ``degree``. No conversion: ``m`` and ``cm`` stay different.

    >>> canonical_unit("square centimeters"), canonical_unit(r"cm^{2}"), canonical_unit("miles per hour")
    ('cm^2', 'cm^2', 'mi/h')
    """
    text = re.sub(r"\^\s*\{?\s*([23])\s*\}?", r" ^\1 ", text).replace("²", " ^2 ").replace("³", " ^3 ")
    parts: list[str] = []
    pending = ""  # the power of "square" / "cubic", for the next word
    for token in re.sub(r"\s+per\s+|/", " / ", f" {text} ", flags=re.IGNORECASE).split():
        word = token.lower().rstrip(".")
        if token == "/":
            parts.append(token)
        elif token in ("^2", "^3") or word in ("squared", "cubed"):
            if parts and parts[-1] != "/":
                parts[-1] += "^2" if token == "^2" or word == "squared" else "^3"
        elif word in _POWER_WORDS:
            pending = _POWER_WORDS[word]
        else:
            parts.append(_unit_word(token) + pending)
            pending = ""
    unit = " ".join(parts).replace(" / ", "/").replace("degree degree", "degree")  # degrees Celsius
    return _UNIT_ALIASES.get(unit, unit)


def _is_unit(words: str, *, in_text_mode: bool) -> bool:
    """Whether trailing words are a unit. In ``\\text{}`` any words but prose (``and``, ``if``); in math mode no
    math word (``pi``) and no variable: a one-letter word, or two letters that are not a known unit (``cm``)."""
    for word in re.split(r"[\s/]+", words.strip()):
        bare = word.lower().rstrip(".")
        if bare in (_PROSE_WORDS if in_text_mode else _MATH_WORDS):
            return False
        if not in_text_mode and (len(bare) < 2 or (len(bare) == 2 and _unit_word(word) not in _KNOWN_UNITS)):
            return False
    return bool(words.strip())


def _unit_piece(match: re.Match[str]) -> str | None:
    """The unit a trailing piece names, or ``None`` when it is not a unit (a variable, a math word)."""
    power = match["power"] or ""
    if match["degree"]:
        scale = match["scale"] or match["bare_scale"]
        return f"degree {scale}" if scale else "degree"
    if match["percent"]:
        return "%"
    if match["cent"]:
        return "cent"
    if match["text"] is not None:
        return match["text"] + power if _is_unit(match["text"], in_text_mode=True) else None
    if match["glued"]:
        words = match["glued"]
        known = all(_unit_word(part) in _KNOWN_UNITS for part in words.split("/"))
        return words + power if known and len(words) > 1 else None
    words = match["word"]
    if "/" in words:  # km/h, m/s: every part a known unit
        known = all(_unit_word(part) in _KNOWN_UNITS for part in words.split("/") if part)
        return words + power if known else None
    return words + power if _is_unit(words, in_text_mode=False) else None


def split_unit(text: str) -> tuple[str, str]:
    """``text`` without its unit, and the unit in :func:`canonical_unit` spelling (``""`` for none).

    A unit is a leading currency sign, or trailing ``\\text{...}`` words, degrees, ``%``, ``¢`` or unit words
    (``dollars``, ``cm``, ``km/h``; in math mode not a one-letter variable, and only after a number or a
    bracket). ``\\text{(C)}`` alone is an answer, not a unit.

    >>> split_unit(r"5\\sqrt{2}\\text{ cm}^2"), split_unit(r"\\$18.50"), split_unit("18 dollars per hour")
    (('5\\\\sqrt{2}', 'cm^2'), ('18.50', 'dollar'), ('18', 'dollar/h'))
    >>> split_unit("2 pi"), split_unit("5 m"), split_unit(r"30^\\circ"), split_unit(r"\\text{east}")
    (('2 pi', ''), ('5 m', ''), ('30', 'degree'), ('\\\\text{east}', ''))
    """
    original = text.strip()
    currency = _CURRENCY.match(original)
    text = _CURRENCY.sub(r"\1", original) if currency else original
    pieces: list[str] = []
    math_mode_words = False
    for _ in range(5):  # "5 \text{ cm}^2", "18 dollars per hour": a few pieces at most
        match = _UNIT_PIECE.search(text)
        piece = None if match is None else _unit_piece(match)
        if piece is None:
            break
        pieces.insert(0, piece)
        math_mode_words = math_mode_words or match["word"] is not None  # type: ignore[index]
        text = text[: match.start()].rstrip()  # type: ignore[union-attr]
    if not text or (math_mode_words and not re.search(r"[\d)}\]!]$", text)):
        return original, ""  # no expression left, or a word after a letter: a product such as "2x abc"
    units = [canonical_unit(" ".join(pieces))] if pieces else []
    if currency:
        units.insert(0, _CURRENCY_UNITS[currency[2]])
    return text.strip(), " ".join(dict.fromkeys(units))


def units_agree(first: str, second: str) -> bool:
    """Whether two units (in :func:`canonical_unit` spelling) name the same unit: equal; degrees and degrees of a
    scale (``20°`` for ``20°C``, not ``20°F``); or, when neither is a known unit, words one of which adds to the
    other (``ways`` and ``different ways``, not ``apples`` and ``pears``).

    >>> units_agree("cm^2", "cm^2"), units_agree("cm^2", "cm^3"), units_agree("degree", "degree c")
    (True, False, True)
    >>> units_agree("way", "different way"), units_agree("apple", "pear"), units_agree("dollar", "dollar bill")
    (True, False, False)
    """
    units = {first, second}
    if len(units) == 1 or ("degree" in units and all(unit.startswith("degree ") for unit in units - {"degree"})):
        return True
    words, other = set(first.split()), set(second.split())
    return not (words | other) & _KNOWN_UNITS and (words <= other or other <= words)


# ---------------------------------------------------------------------------------------------- exact fast path


class ExactNumber(NamedTuple):
    """A plain number read exactly from text.

    Attributes:
        value: Its exact value.
        form: How it was written: ``"integer"``, ``"decimal"`` (with a decimal point or in scientific notation)
            or ``"fraction"`` (``a/b``, ``\\frac{a}{b}``, a mixed number, ``½``).
        unit: Its unit in :func:`canonical_unit` spelling (``"%"`` for a percentage), ``""`` for none.
    """

    value: Fraction
    form: str
    unit: str = ""


_VULGAR = {
    "½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5), "⅖": (2, 5), "⅗": (3, 5),
    "⅘": (4, 5), "⅙": (1, 6), "⅚": (5, 6), "⅐": (1, 7), "⅛": (1, 8), "⅜": (3, 8), "⅝": (5, 8), "⅞": (7, 8),
    "⅑": (1, 9), "⅒": (1, 10),
}  # fmt: skip
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_TIMES_TEN = (
    r"\s*(?:\\times|×|\\cdot|·|\*|x)\s*10\s*"
    r"(?:\^\s*(?:\{\s*(?P<exp>[-+]?\d{1,3})\s*\}|(?P<bare>[-+]?\d{1,3}))|(?P<sup>[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]{1,3}))"
)
_NUMBER = re.compile(
    r"(?P<sign>[-+]?)\s*(?:"
    r"(?P<decimal>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+)"  # 1,234.5  18  18.  .5
    r"(?:\\overline\s*\{\s*(?P<repeat>\d{1,20})\s*\})?"  # 0.1\overline{6}: repeating digits
    rf"(?:{_TIMES_TEN}|[eE](?P<e>[-+]?\d{{1,3}}))?"  # 6.02 \times 10^{23}, 6.02e23
    rf"|(?P<whole>\d+)?\s*(?P<vulgar>[{''.join(_VULGAR)}])"  # ½, 3½
    r"|(?:(?P<mixed>\d+)\s+)?(?P<num>\d+)\s*[/⁄]\s*(?P<den>\d+)"  # 3/4, 3 1/2
    r"|(?:(?P<lmixed>\d+)\s*)?"  # 3\frac{1}{2}: a mixed number, as math-verify reads it
    r"(?:\\[dt]?frac\s*\{\s*(?P<fnum>[-+]?\d+)\s*\}\s*\{\s*(?P<fden>[-+]?\d+)\s*\}"  # \frac{3}{4}
    r"|\\[dt]?frac(?P<snum>\d)(?P<sden>\d)))"  # \frac34
)
_MAX_NUMBER_CHARS = 100


def _normalized(text: str) -> str:
    return _LATEX_SPACING.sub("", text.replace("{,}", ",").replace("−", "-")).strip()


def exact_number(text: str) -> ExactNumber | None:
    """Reads a plain number exactly, or returns ``None`` for anything else (left to math-verify).

    Accepted: integers and decimals with an optional sign (``-``, ``−``), GSM8K/LaTeX thousands separators
    (``1,234``, ``1{,}234``, ``1\\!,\\!234``), ``a/b`` and ``\\frac{a}{b}`` (also ``\\dfrac``, ``\\tfrac``,
    ``\\frac34``), mixed numbers (``3 1/2``, ``3\\frac{1}{2}``), Unicode fractions (``½``, ``3½``), scientific
    notation (``6.02 \\times 10^{23}``, ``6.02e23``, ``6.02 × 10^23``, ``6.02×10²³``), repeating decimals
    (``0.\\overline{3}``), with the units :func:`split_unit` reads: a
    currency sign, ``\\text{...}`` words, degrees, ``%``, ``¢`` and unit words (never a math word such as ``pi``
    or a one-letter variable).

    >>> exact_number("1,234").value, exact_number(r"-\\dfrac{3}{4}").value, exact_number("$18.50 dollars")
    (Fraction(1234, 1), Fraction(-3, 4), ExactNumber(value=Fraction(37, 2), form='decimal', unit='dollar'))
    >>> exact_number("3½").value, exact_number("6.02e23").value == 602 * 10**21, exact_number("18.0%").unit
    (Fraction(7, 2), True, '%')
    >>> exact_number("2 pi"), exact_number("5x"), exact_number("1/0")
    (None, None, None)
    """
    if len(text) > _MAX_NUMBER_CHARS:
        return None
    expression, unit = split_unit(_normalized(text))
    number = _read_number(expression)
    return None if number is None else number._replace(unit=unit)


def _read_number(text: str) -> ExactNumber | None:
    """The number that ``text`` is, exactly as :data:`_NUMBER` reads it (no units, no spacing commands)."""
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    sign = -1 if match["sign"] == "-" else 1
    if match["decimal"] is not None:
        digits = match["decimal"].replace(",", "")
        exponent = match["exp"] or match["bare"] or match["e"] or (match["sup"] or "").translate(_SUPERSCRIPTS)
        if match["repeat"] and "." not in digits:
            return None
        value = _decimal_value(digits, match["repeat"]) * Fraction(10) ** int(exponent or 0)
        return ExactNumber(sign * value, "decimal" if "." in digits or exponent else "integer")
    if match["vulgar"] is not None:
        numerator, denominator = _VULGAR[match["vulgar"]]
        return ExactNumber(sign * (int(match["whole"] or 0) + Fraction(numerator, denominator)), "fraction")
    numerator = match["num"] or match["fnum"] or match["snum"]
    denominator = match["den"] or match["fden"] or match["sden"]
    if int(denominator) == 0:
        return None
    whole = int(match["mixed"] or match["lmixed"] or 0)
    return ExactNumber(sign * (whole + Fraction(int(numerator), int(denominator))), "fraction")


def _decimal_value(digits: str, repeat: str | None) -> Fraction:
    """The exact value of a decimal, with its repeating digits if any (``0.1\\overline{6}`` = 1/6)."""
    if not repeat:
        return Fraction(digits.rstrip(".") or "0")
    whole, _, decimals = digits.partition(".")
    shift = 10 ** len(decimals)
    return Fraction(int(whole + decimals + repeat) - int(whole + decimals), shift * (10 ** len(repeat) - 1))


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
