"""``ast.parse`` that is safe to call from several threads at once.

CPython before 3.11.8 and 3.12.1 keeps the depth counter of the AST constructor in interpreter-wide state
(gh-106905): two threads parsing at the same moment (``reason-gym serve`` steps its sessions in threads, and every
checker parses model output) can make one of them fail with ``SystemError: AST constructor recursion depth
mismatch``. Parsing holds the GIL anyway, so one lock costs no throughput.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse_python(source: str, mode: str = "exec") -> ast.AST:
    """``ast.parse(source, mode=mode)``, one thread at a time (see the module docstring)."""
    with _LOCK:
        return ast.parse(source, mode=mode)
