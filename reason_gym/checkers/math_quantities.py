"""Quantities in math answers: exact numbers and their units, read in-process.

Used by :mod:`reason_gym.checkers.math_answer` for its unit rule (:func:`split_unit`, :func:`units_agree`: units on
both sides must be the same unit, however spelled) and its exact fast path (:func:`exact_number`,
:func:`number_list`, :func:`base_number`). Plain string and regex work with linear-time patterns, and exact
:class:`~fractions.Fraction` arithmetic on inputs capped in length: nothing is evaluated, and anything not
recognised is left (``None``) to math-verify. Where the answer is in a text, and its form (hedges, equations), is
:mod:`reason_gym.checkers.math_forms`.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import NamedTuple

SIZE_COMMANDS = re.compile(r"\\(?:left|right|[bB]igg?[lr]?)(?![A-Za-z])")
"""LaTeX bracket sizes (``\\left``, ``\\right``, ``\\big``, ``\\Bigl``...), dropped before reading brackets."""

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
# Multipliers, powers and operations, fraction words, signs, approximations, bounds and negations: each changes or
# qualifies the number. Not "more", "fewer", "less", "times" or "dozen(s)": after a number they name what is counted
# (GSM8K asks "how many more", "how many times", "how many dozens"; the checker never sees the question), so
# "40 more", "5 fewer students", "3 \text{ times}" and "7 dozen" are 40, 5, 3 and 7 in that unit. Only as an
# operation before another number are "than" (a bound: "more than 5", "6 more than 3") and "times" ("2 times 5")
# value words; "6 more than Tom" names what is compared.
_VALUE_WORDS = (
    "hundreds?|thousands?|millions?|billions?|trillions?|halves|half|thirds|fourths|fifths|sixths|sevenths"
    "|eighths|ninths|tenths|hundredths|thousandths|factorial|plus|minus|over|negative|below|above|under"
    "|approximately|approx|about|around|roughly|nearly|almost|least|most|not|or|nor"
)
_BEFORE_A_NUMBER = r"(?=[\s{}$~(+-]*(?:\\\$|\\(?!text)[A-Za-z]|[\d.]))"  # than 5, times \frac12 (not "than Tom")
_VALUE_WORD = re.compile(
    rf"(?<![\\A-Za-z])(?:{_VALUE_WORDS})(?![A-Za-z])"  # 5 thousand, 5 \text{ at most}, 5 \text{ (or 6)}
    rf"|(?<![\\A-Za-z])(?:than|times)(?![A-Za-z]){_BEFORE_A_NUMBER}"  # more than 5, 2 times 5
    r"|(?<=[\d}])\s*(?:\\text\s*\{\s*)?(?:squared|cubed)(?![A-Za-z])"  # 5 squared (cm squared is a unit)
    r"|\\(?:neg|lnot|approx|sim|simeq)(?![A-Za-z])|^\s*~",  # \neg 5, \approx 5, ~5
    re.IGNORECASE,
)


def value_words(text: str) -> frozenset[str]:
    """The words and signs in ``text`` that change or qualify a value, so never a unit: multipliers (``thousand``),
    operations (``squared``, ``factorial``, ``halves``, ``times`` before a number), signs and bounds (``negative``,
    ``below``, ``at most``, ``than`` before a number), approximations (``about``, ``\\approx``, a leading ``~``)
    and negations (``not``, ``\\neg``); and ``or`` inside a text group (``5 \\text{ (or 6)}``). Not count words
    after a number (``40 more``, ``5 fewer``, ``3 times``, ``7 dozen``, ``6 more than Tom``): units.

    >>> sorted(value_words(r"5 \text{ thousand}")), sorted(value_words("5 cm squared")), sorted(value_words("~5"))
    (['thousand'], [], ['~'])
    >>> sorted(value_words("more than 5")), sorted(value_words("6 more than Tom")), sorted(value_words("7 dozen"))
    (['than'], [], [])
    """
    return frozenset(
        " ".join(match.group().lower().replace("\\text", "").strip(" {").split())
        for match in _VALUE_WORD.finditer(text)
    )


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
    if value_words(words):
        return False  # 5 thousand, 5 \text{ at most}: not 5 in some unit
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


_SPACED_THOUSANDS = re.compile(r"(?<=\d),\\[!, ]\s*(?=\d{3}(?!\d))")
"""A thousands separator with a space command and spaces after it (MATH writes ``11,\\! 111``)."""


def _normalized(text: str) -> str:
    text = _SPACED_THOUSANDS.sub(",", text.replace("{,}", ",").replace("−", "-"))
    return _LATEX_SPACING.sub("", text).strip()


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


_MAYBE_THOUSANDS = re.compile(r"\d,\d{3}(?!\d)|\{,\}")


def number_list(text: str) -> NumberList | None:
    """Reads a list of at least two plain numbers, ``(1, -2)``, ``[0, 1)``, ``\\{3, 5\\}``, ``1, 2``, or returns
    ``None`` (also where a comma could be a thousands separator, ``(1,234)``: math-verify decides those).

    >>> number_list(r"\\left( 3, \\frac{1}{2} \\right)").kind, number_list("1, -2").kind, number_list("(1,234)")
    ('()', 'list', None)
    """
    if len(text) > 4 * _MAX_NUMBER_CHARS:
        return None
    text = SIZE_COMMANDS.sub("", _normalized(text))
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
