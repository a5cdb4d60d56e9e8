"""How the sandbox's processes talk: length-prefixed JSON frames, and values encoded so that the tester rebuilds
them from built-in types only (anything else stays in the program, as a handle).
"""

from __future__ import annotations

import builtins
import collections
import decimal
import fractions
import json
import os
import struct
import sys
import types
import typing

if typing.TYPE_CHECKING:
    from .tester import Remote


MAX_FRAME = 32 << 20
"""The largest message between the tester and the program (a reply above it fails that test)."""
MAX_DEPTH = 100
"""Deeper values are not encoded (the program sends a handle instead; the tester refuses deeper data)."""
MAX_ITEMS = 1_000_000
"""Iterators returned by the program are materialised up to this many items."""
MAX_MESSAGE = 2000
"""Characters kept of an error or failure message."""

# ---------------------------------------------------------------------------------------------------- framing


def write_all(fd: int, data: bytes) -> None:
    """Writes every byte (``os.write`` may write fewer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_to_eof(fd: int) -> bytes:
    """Reads until the writer closes its end."""
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


class Gone(Exception):
    """The other side of a channel closed it (the program exited or was killed)."""


class Malformed(Exception):
    """The program sent something that is not a valid message."""


class Channel:
    """Length-prefixed JSON frames over a pair of pipes (reads are buffered: usually one syscall a frame)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd
        self.buffer = bytearray()

    def send(self, message: object) -> None:
        """Sends one message; raises :class:`Gone` when the other side has closed the channel."""
        data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
        try:
            write_all(self.write_fd, struct.pack(">I", len(data)) + data)
        except BrokenPipeError:
            raise Gone from None

    def _fill(self, n: int) -> None:
        while len(self.buffer) < n:
            chunk = os.read(self.read_fd, max(1 << 16, n - len(self.buffer)))
            if not chunk:
                raise Gone
            self.buffer += chunk  # bytearray: amortised linear even for a large frame

    def recv(self) -> object:
        """Receives one message; :class:`Gone` at the end, :class:`Malformed` for a frame that is not JSON."""
        self._fill(4)
        (size,) = struct.unpack(">I", self.buffer[:4])
        if size > MAX_FRAME:
            raise Malformed(f"a reply of {size} bytes (more than {MAX_FRAME})")
        self._fill(4 + size)
        data = bytes(self.buffer[4 : 4 + size])
        del self.buffer[: 4 + size]
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as error:
            raise Malformed(f"an unreadable reply ({type(error).__name__})") from None


# ---------------------------------------------------------------------------------------------------- values

_BUILTIN_TYPES = {name: value for name, value in vars(builtins).items() if isinstance(value, type)}
"""Built-in types (``int``, ``str``, ``ValueError``, ...) pass by name: tests give them as arguments (MBPP 533)."""
_SPECIAL_FLOATS = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def _encode_float(value: float) -> object:
    if value != value or value in (float("inf"), float("-inf")):
        return ["F", repr(value)]
    return value


class Encoder:
    """Plain data to JSON, with tags for what JSON lacks; anything else becomes a handle (program side only)."""

    def __init__(self, handles: dict[int, object] | None = None) -> None:
        self.handles = handles  # id -> object, on the program side; None on the tester side
        self._ids: dict[int, int] = {}

    def handle(self, value: object) -> object:
        """A handle for a value that stays in the program (with its repr and truth), or ``TypeError`` in the tester."""
        if self.handles is None:
            raise TypeError(f"a {type(value).__name__} cannot be passed to the program (only plain data)")
        key = id(value)
        if key not in self._ids:
            self._ids[key] = len(self.handles) + 1
            self.handles[self._ids[key]] = value
        try:
            text = repr(value)[:200]
        except Exception:  # the program's __repr__ may fail; the handle still works
            text = f"<{type(value).__name__} object>"
        try:
            truth = bool(value)
        except Exception:
            truth = True
        return ["H", self._ids[key], text, truth]

    def encode(self, value: object, depth: int = 0) -> object:
        """``value`` as JSON-ready data."""
        kind = type(value)
        if value is None or kind is bool or kind is str:
            return value
        if kind is int:
            return value
        if kind is float:
            return _encode_float(value)
        if depth > MAX_DEPTH:
            return self.handle(value)
        nested = depth + 1
        if kind is list or kind is tuple:
            return ["L" if kind is list else "T", [self.encode(x, nested) for x in value]]
        if kind is dict:
            return ["D", [[self.encode(k, nested), self.encode(v, nested)] for k, v in value.items()]]
        if isinstance(value, RemoteObject):
            return ["H", value._rg_id, "", True]
        return self._encode_other(value, nested)

    def _encode_other(self, value: object, nested: int) -> object:
        # Subclasses of built-in types are sent as their built-in value: the tester compares with its own types.
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return _encode_float(float(value))
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, collections.Counter):
            return ["CN", [[self.encode(k, nested), self.encode(v, nested)] for k, v in value.items()]]
        if isinstance(value, collections.OrderedDict):
            return ["OD", [[self.encode(k, nested), self.encode(v, nested)] for k, v in value.items()]]
        if isinstance(value, collections.defaultdict):
            return ["DD", [[self.encode(k, nested), self.encode(v, nested)] for k, v in value.items()]]
        if isinstance(value, dict):
            return ["D", [[self.encode(k, nested), self.encode(v, nested)] for k, v in value.items()]]
        if isinstance(value, (list, tuple, collections.deque)):
            tag = "L" if isinstance(value, list) else "T" if isinstance(value, tuple) else "DQ"
            return [tag, [self.encode(x, nested) for x in value]]
        if isinstance(value, (set, frozenset)):
            return ["S" if isinstance(value, set) else "FS", [self.encode(x, nested) for x in value]]
        if isinstance(value, (bytes, bytearray)):
            return ["B" if isinstance(value, bytes) else "BA", bytes(value).hex()]
        if isinstance(value, complex):
            return ["C", _encode_float(value.real), _encode_float(value.imag)]
        if isinstance(value, decimal.Decimal):
            return ["DEC", str(value)]
        if isinstance(value, fractions.Fraction):
            return ["FR", value.numerator, value.denominator]
        if isinstance(value, range):
            return ["R", value.start, value.stop, value.step]
        if isinstance(value, types.ModuleType):
            return ["M", value.__name__]
        if isinstance(value, type) and _BUILTIN_TYPES.get(value.__name__) is value:
            return ["TY", value.__name__]
        if value is Ellipsis:
            return ["E"]
        view = _view_tag(value)
        if view:
            items = list(value)  # type: ignore[call-overload]
            return [view, [self.encode(x, nested) for x in items]]
        if isinstance(value, collections.abc.Iterator):
            items = []
            for item in value:
                if len(items) >= MAX_ITEMS:
                    raise ValueError(f"the returned iterator has more than {MAX_ITEMS} items")
                items.append(self.encode(item, nested))
            return ["I", items]
        return self.handle(value)


def _view_tag(value: object) -> str:
    kind = type(value)
    if kind is type({}.keys()):
        return "DK"
    if kind is type({}.values()):
        return "DV"
    if kind is type({}.items()):
        return "DI"
    return ""


class RemoteObject:
    """The tester's stand-in for something that lives in the program: a function, a class, an instance.

    Calling it, reading or setting an attribute goes to the program. Comparisons and hashing are by identity: the
    tester never lets the program decide whether two things are equal.
    """

    __slots__ = ("_rg_id", "_rg_remote", "_rg_repr", "_rg_truth")

    def __init__(self, remote: Remote, handle: int, text: str, truth: bool) -> None:
        object.__setattr__(self, "_rg_remote", remote)
        object.__setattr__(self, "_rg_id", handle)
        object.__setattr__(self, "_rg_repr", text)
        object.__setattr__(self, "_rg_truth", truth)

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self._rg_remote.request(["call", self._rg_id, self._rg_remote.encode(list(args)), _kw(self, kwargs)])

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._rg_remote.request(["getattr", self._rg_id, name])

    def __setattr__(self, name: str, value: object) -> None:
        self._rg_remote.request(["setattr", self._rg_id, name, self._rg_remote.encode(value)])

    def __repr__(self) -> str:
        return self._rg_repr or f"<program object {self._rg_id}>"

    def __bool__(self) -> bool:
        # As in Python, an object's truth is its own (a regex match is true): the program reported it with the
        # handle. So a test that asserts only a truth value accepts any true object, as it would anywhere.
        return self._rg_truth


def _kw(remote_object: RemoteObject, kwargs: dict[str, object]) -> object:
    return [[str(k), remote_object._rg_remote.encode(v)] for k, v in kwargs.items()]


class Decoder:
    """JSON back to values. On the tester side every value is rebuilt from built-in types only."""

    def __init__(self, resolve: typing.Callable[[int, str, bool], object]) -> None:
        self.resolve = resolve

    def decode(self, data: object, depth: int = 0) -> object:
        """The value ``data`` stands for; :class:`Malformed` for anything unexpected."""
        if data is None or isinstance(data, (bool, int, str, float)):
            return data
        if depth > MAX_DEPTH + 2 or not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise Malformed("malformed value")
        tag, nested = data[0], depth + 1
        rest = data[1:]

        def items() -> list[object]:
            if len(rest) != 1 or not isinstance(rest[0], list):
                raise Malformed(f"malformed {tag}")
            return [self.decode(x, nested) for x in rest[0]]

        def pairs() -> list[tuple[object, object]]:
            if len(rest) != 1 or not isinstance(rest[0], list):
                raise Malformed(f"malformed {tag}")
            if not all(isinstance(p, list) and len(p) == 2 for p in rest[0]):
                raise Malformed(f"malformed {tag}")
            return [(self.decode(k, nested), self.decode(v, nested)) for k, v in rest[0]]

        simple = {"L": list, "T": tuple, "S": set, "FS": frozenset, "DQ": collections.deque, "I": iter}
        if tag in simple:
            return simple[tag](items())
        if tag == "D":
            return dict(pairs())
        if tag == "CN":
            return collections.Counter(dict(pairs()))
        if tag == "OD":
            return collections.OrderedDict(pairs())
        if tag == "DD":
            return collections.defaultdict(None, pairs())
        if tag == "DK":
            return dict.fromkeys(items()).keys()
        if tag == "DV":
            return dict(enumerate(items())).values()
        if tag == "DI":
            return dict(_pairs_of(items())).items()
        return self._decode_scalar(tag, rest)

    def _decode_scalar(self, tag: str, rest: list[object]) -> object:
        try:
            if tag == "F" and rest[0] in _SPECIAL_FLOATS:
                return _SPECIAL_FLOATS[rest[0]]  # type: ignore[index]
            if tag == "B":
                return bytes.fromhex(rest[0])  # type: ignore[arg-type]
            if tag == "BA":
                return bytearray.fromhex(rest[0])  # type: ignore[arg-type]
            if tag == "C":
                return complex(*(self.decode(x) for x in rest[:2]))  # type: ignore[misc]
            if tag == "DEC":
                return decimal.Decimal(str(rest[0]))
            if tag == "FR" and all(type(x) is int for x in rest[:2]):
                return fractions.Fraction(rest[0], rest[1])  # type: ignore[arg-type]
            if tag == "R" and all(type(x) is int for x in rest[:3]):
                return range(*rest[:3])  # type: ignore[misc]
            if tag == "E":
                return Ellipsis
            if tag == "TY" and rest[0] in _BUILTIN_TYPES:
                return _BUILTIN_TYPES[rest[0]]  # type: ignore[index]
            if tag == "M" and isinstance(rest[0], str):
                return _import_module(rest[0])
            if tag == "H" and type(rest[0]) is int and isinstance(rest[1], str) and type(rest[2]) is bool:
                return self.resolve(rest[0], rest[1][:200], rest[2])
        except (IndexError, TypeError, ValueError, ArithmeticError) as error:
            raise Malformed(f"malformed {tag}: {type(error).__name__}") from None
        raise Malformed(f"unknown value tag {tag!r}")


def _pairs_of(values: list[object]) -> list[tuple[object, object]]:
    if not all(isinstance(p, tuple) and len(p) == 2 for p in values):
        raise Malformed("malformed dict items")
    return values  # type: ignore[return-value]


_NOISY_MODULES = frozenset(
    {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "webbrowser", "test", "__main__"}
)
"""Modules that act when imported (print, open a browser, run a test suite): never imported for a program."""


def _import_module(name: str) -> object:
    """A standard-library module the program uses, imported by the tester itself (the tests get the real one).

    Only the standard library's, whatever the tester has imported already (its own modules, ``__main__``), and no
    ``__main__`` submodule: those run a tool's ``main()`` when imported (``unittest.__main__``, ``venv.__main__``)."""
    parts = name.split(".")
    if parts[0] not in sys.stdlib_module_names or parts[0] in _NOISY_MODULES or "__main__" in parts:
        raise Malformed(f"a module the tests cannot import: {name!r}")
    if not all(part.isidentifier() for part in parts):
        raise Malformed(f"bad module name {name!r}")
    __import__(name)
    return sys.modules[name]


def short(value: object, limit: int = 300) -> str:
    """``repr`` of a value, cut to ``limit`` characters (for messages)."""
    try:
        text = repr(value)
    except Exception as error:  # a value from the tester's own types; guard anyway
        text = f"<unprintable {type(value).__name__}: {type(error).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
