"""The sandbox: results, values across the process boundary, the attack table, leaks, threads and forks.

Each attack must be contained with a clear status and leave the machine as it was. The attack table runs in every
isolation mode this machine offers: bubblewrap (full), and the partial modes a user may ask for (namespaces without
bubblewrap, and a uid of its own per worker alone, as in a container that refuses ``unshare``). Tests that rely on
an isolation layer say which (``@pytest.mark.needs(...)``) and are skipped, with the reason, in a mode without it.
Fail-closed behaviour and the partial modes' own promises are in ``test_sandbox_modes.py``.
"""

from __future__ import annotations

import copy
import gc
import os
import pickle
import secrets
import socket
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from sandbox_modes import AVAILABLE, ISOLATION, MODES, open_sandbox

from reason_gym.sandbox import Limits, Sandbox, SandboxError, Statement, Status, TestSuite
from reason_gym.sandbox.launch import UID_BASE

FAST = Limits(timeout=1.0)
DEFAULT_MODE = AVAILABLE[0] if AVAILABLE else "bubblewrap"


@pytest.fixture(scope="module", params=list(MODES))
def mode(request):
    """One isolation mode; the module's tests run once per mode this machine offers."""
    if request.param not in ISOLATION:
        pytest.skip(f"{request.param} isolation cannot run here: {MODES[request.param].unavailable}")
    return request.param


@pytest.fixture(autouse=True)
def _needs(request):
    """Skips a test marked ``needs(layer, ...)`` in a mode where one of those layers is not in force."""
    marker = request.node.get_closest_marker("needs")
    if marker is None or "mode" not in request.fixturenames:
        return
    isolation = ISOLATION[request.getfixturevalue("mode")]
    missing = [layer for layer in marker.args if not getattr(isolation, layer)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}, not in force in {request.getfixturevalue('mode')} mode")


@pytest.fixture(scope="module")
def sandbox(mode):
    box = open_sandbox(mode, workers=2)
    box.start()
    yield box
    box.close()


def add_tests(*asserts: str) -> TestSuite:
    return TestSuite.from_asserts(list(asserts) or ["assert add(2, 2) == 4", "assert add(1, 1) == 2"])


ADD = "def add(a, b):\n    return a + b\n"


# ---------------------------------------------------------------------------------------------------- results


def test_a_correct_program_passes_with_every_test_reported(sandbox):
    result = sandbox.run(ADD, add_tests())
    assert result.status is Status.PASSED and result.passed
    assert [t.passed for t in result.tests] == [True, True] and result.fraction_passed == 1.0
    assert result.error == "" and result.wall_time > 0


def test_a_failing_test_says_what_was_got_and_expected(sandbox):
    result = sandbox.run(ADD, add_tests("assert add(2, 2) == 4", "assert add(1, 1) == 3", "assert add(0, 0) < 0"))
    assert result.status is Status.FAILED and result.num_passed == 1 and result.fraction_passed == pytest.approx(1 / 3)
    assert result.tests[1].message == "assertion failed: got 2, expected 3"
    assert result.tests[2].message == "assertion failed: 0 < 0 is false"
    assert result.error == "2 of 3 tests failed"


def test_output_is_captured_in_order_and_the_program_can_use_its_working_directory(sandbox):
    program = "import sys\nprint('a')\nprint('b', file=sys.stderr)\n"
    program += "open('f.txt', 'w').write('x')\nprint(open('f.txt').read())\n"
    result = sandbox.run(program)
    assert result.status is Status.PASSED and result.output == "a\nb\nx\n"


@pytest.mark.parametrize(
    ("program", "expected"),
    [
        ("def add(a, b)\n    return a + b\n", "SyntaxError"),
        ("def add(a, b):\n    return a + b\nundefined_name\n", "NameError"),
        ("import no_such_module_xyz\n", "ModuleNotFoundError"),
        ("raise ValueError('at load')\n", "ValueError: at load"),
    ],
)
def test_a_program_that_does_not_load_fails_with_its_error(sandbox, program, expected):
    result = sandbox.run(program, add_tests())
    assert result.status is Status.FAILED and expected in result.error
    assert all(not t.passed and "did not load" in t.message for t in result.tests)
    assert expected.split(":")[0] in result.output and 'program.py", line' in result.output


def test_a_missing_entry_point_is_a_failure_naming_it(sandbox):
    result = sandbox.run("def plus(a, b):\n    return a + b\n", add_tests())
    assert result.status is Status.FAILED
    assert "add" in result.tests[0].message and "not defined" in result.tests[0].message


def test_exceptions_of_the_program_fail_the_test_and_keep_their_type_for_the_tests(sandbox):
    program = "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return 1 / x\n"
    tests = TestSuite.from_asserts(
        [
            "assert f(0) == 0",
            "try:\n    f(-1)\n    raise AssertionError('no error')\n"
            "except ValueError as e:\n    assert 'negative' in str(e)",
        ]
    )
    result = sandbox.run(program, tests)
    assert result.tests[0].message == "the program raised ZeroDivisionError: division by zero"
    assert result.tests[1].passed


@pytest.mark.parametrize(
    ("returned", "test"),
    [
        ("{1, 2, 3}", "assert f() == {3, 2, 1}"),
        ("{(1, 2): [3.5, None], 'k': {'n': True}}", "assert f() == {(1, 2): [3.5, None], 'k': {'n': True}}"),
        ("float('nan')", "import math\nassert math.isnan(f())"),
        ("(float('inf'), -0.0, 0.1 + 0.2)", "assert f() == (float('inf'), -0.0, 0.30000000000000004)"),
        ("2 ** 20000", "assert f() == 2 ** 20000"),
        ("b'\\x00\\xff' + bytes(bytearray(b'a'))", "assert f() == b'\\x00\\xffa'"),
        ("complex(1, -2)", "assert f() == 1 - 2j"),
        ("__import__('fractions').Fraction(1, 3)", "from fractions import Fraction\nassert f() == Fraction(1, 3)"),
        ("__import__('decimal').Decimal('1.10')", "from decimal import Decimal\nassert str(f()) == '1.10'"),
        ("__import__('collections').Counter('aab')", "assert f() == {'a': 2, 'b': 1}"),
        ("(x * x for x in range(4))", "assert list(f()) == [0, 1, 4, 9]"),
        ("map(str, [1, 2])", "assert f() != ['1', '2'] and list(f()) == ['1', '2']"),
        ("__import__('collections').namedtuple('P', 'x y')(1, 2)", "assert f() == (1, 2)"),
        ("True", "assert f() is True and type(f()) is bool"),
        ("int", "assert f() is int"),
        ("'é\\u2603'", "assert f() == 'é☃'"),
        ("{'a': 1}.keys()", "assert f() == {'a'}"),
    ],
)
def test_values_cross_the_boundary_as_the_same_builtin_values(sandbox, returned, test):
    result = sandbox.run(f"def f():\n    return {returned}\n", TestSuite.from_asserts([test]))
    assert result.passed, result.tests[0].message


def test_objects_of_the_program_pass_as_handles(sandbox):
    program = (
        "class Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n"
        "def longest(pairs):\n    return max(p.b - p.a for p in pairs)\n"
        "class Node:\n    def __init__(self, v):\n        self.v, self.left = v, None\n"
        "def depth(n):\n    return 0 if n is None else 1 + depth(n.left)\n"
    )
    tests = TestSuite.from_asserts(
        ["assert longest([Pair(1, 5), Pair(2, 3)]) == 4", "assert depth(root) == 2", "assert root.left.v == 2"],
        setup=["root = Node(1)\nroot.left = Node(2)"],
    )
    assert sandbox.run(program, tests).passed


def test_arguments_the_tests_cannot_send_fail_the_test_clearly(sandbox):
    result = sandbox.run("def f(g):\n    return g(1)\n", TestSuite.from_asserts(["assert f(lambda x: x) == 1"]))
    assert result.status is Status.FAILED and "cannot be passed to the program" in result.tests[0].message


def test_a_suite_of_statements_runs_setup_steps_between_tests(sandbox):
    suite = TestSuite(
        (
            Statement.from_source("x = add(1, 2)", test=False),
            Statement.from_source("assert x == 3"),
            Statement.from_source("x = add(x, 1)", test=False),
            Statement.from_source("assert x == 4", name="four"),
        )
    )
    result = sandbox.run(ADD, suite)
    assert result.passed and [t.name for t in result.tests] == ["assert x == 3", "four"]


def test_runs_are_reproducible_random_state_and_hash_order(sandbox):
    program = "import random\ndef f():\n    return [random.random(), list({'apple', 'pear', 'fig', 'kiwi'})]\n"
    got = TestSuite.from_asserts(["assert f() == None"])
    messages = {sandbox.run(program, got).tests[0].message for _ in range(6)}  # both workers, several runs
    assert len(messages) == 1


def test_limits_and_arguments_are_validated():
    too_many = ({"open_files": 10**9}, {"processes": 10**12}, {"memory_bytes": 2**70}, {"cpu_seconds": 2**63})
    for bad in ({"timeout": 0}, {"timeout": "1"}, {"timeout": True}, {"memory_bytes": 10}, {"processes": 0}, *too_many):
        with pytest.raises(ValueError):
            Limits(**bad)
    with pytest.raises(ValueError):
        Limits(cpu_seconds=0.5)  # type: ignore[arg-type]
    for bad in ({"workers": 0}, {"backend": "docker"}, {"limits": {"timeout": 1}}, {"disk_bytes": 5}):
        with pytest.raises(ValueError):
            Sandbox(**bad)
    with open_sandbox(DEFAULT_MODE, workers=1) as box:
        with pytest.raises(TypeError):
            box.run(b"print(1)")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            box.run("print(1)", ["assert True"])  # type: ignore[arg-type]
        for bad_limits in ("x", {"timeout": 1}):
            with pytest.raises(TypeError, match="limits must be a Limits"):
                box.run("print(1)", limits=bad_limits)  # type: ignore[arg-type]
        # the greatest limits a Limits takes are ones the kernel sets: a correct program still passes
        most = Limits(cpu_seconds=3600, memory_bytes=1 << 40, open_files=1 << 12, processes=1 << 12)
        assert box.run(ADD, add_tests(), limits=most).passed
    with pytest.raises(SandboxError, match="closed"):
        box.run("print(1)")


def test_isolation_is_reported(sandbox):
    isolation = sandbox.isolation
    assert isolation.rlimits and isolation.level in ("full", "partial")
    assert isolation.full == (not isolation.missing)


def test_every_mode_runs_and_judges_programs(sandbox):
    assert sandbox.run(ADD, add_tests()).passed
    assert sandbox.run(ADD, add_tests("assert add(1, 1) == 3")).status is Status.FAILED


# ---------------------------------------------------------------------------------------------------- attacks

INFINITE = "while True:\n    pass\n"


@pytest.mark.parametrize(
    ("name", "program"),
    [
        ("busy loop at load", INFINITE),
        ("busy loop in the call", "def add(a, b):\n    while True:\n        pass\n"),
        ("sleeping", "import time\ntime.sleep(60)\n"),
    ],
)
def test_attack_infinite_loops_time_out_at_the_deadline(sandbox, name, program):
    start = time.monotonic()
    result = sandbox.run(program, add_tests(), limits=FAST)
    assert result.status is Status.TIMEOUT, name
    assert time.monotonic() - start < 6
    assert all(not t.passed for t in result.tests)


def test_attack_cpu_time_limit_is_enforced_by_the_kernel(sandbox):
    result = sandbox.run(INFINITE, add_tests(), limits=Limits(timeout=30.0, cpu_seconds=1))
    assert result.status is Status.TIMEOUT and "CPU" in result.error


@pytest.mark.parametrize(
    "program",
    [
        "x = bytearray(10 ** 11)\n",
        "x = [0] * 10 ** 10\n",
        "blocks = []\nwhile True:\n    blocks.append(bytearray(10 ** 7))\n",
        "def add(a, b):\n    return 'x' * 10 ** 11\n",
    ],
)
def test_attack_memory_hogs_hit_the_address_space_limit(sandbox, program):
    result = sandbox.run(program, add_tests(), limits=Limits(timeout=10.0, memory_bytes=512 << 20))
    assert result.status is Status.MEMORY, result.error


def _processes_of_worker_users() -> list[int]:
    """Host processes running as one of the sandbox's private uids (root only)."""
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/status") as file:
                uid = next(int(line.split()[1]) for line in file if line.startswith("Uid:"))
        except (OSError, StopIteration, ValueError):
            continue
        if UID_BASE <= uid < UID_BASE + (1 << 28):
            found.append(int(name))
    return found


def _pids_seen_inside(sandbox) -> int:
    result = sandbox.run("import os\nprint(sum(n.isdigit() for n in os.listdir('/proc')))\n")
    return int(result.output)


@pytest.mark.needs("pid_namespace")
def test_attack_fork_bomb_is_capped_and_leaves_no_process(sandbox):
    before = _processes_of_worker_users()
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = sandbox.run(bomb, add_tests(), limits=FAST)
    assert result.status in (Status.TIMEOUT, Status.CRASHED)
    assert _pids_seen_inside(sandbox) <= 3  # the fork server, the tester, this program
    if os.geteuid() == 0:
        assert len(_processes_of_worker_users()) <= len(before)


def test_attack_too_many_processes_fail_to_start(sandbox):
    program = (
        "import os, time\npids = []\nfor _ in range(100):\n    try:\n        pid = os.fork()\n"
        "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(5)\n        os._exit(0)\n"
        "    pids.append(pid)\nprint(len(pids))\n"
    )
    result = sandbox.run(program, limits=Limits(timeout=5.0, processes=8))
    assert result.status is Status.PASSED and int(result.output) < 8


def test_attack_network_to_loopback_never_arrives(mode):
    isolation = ISOLATION[mode]
    if not (isolation.seccomp or isolation.network_namespace):
        pytest.skip("needs seccomp or network_namespace")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    program = (
        "import socket\n"
        f"for family in ('AF_INET', 'AF_INET6', 'AF_UNIX', 'AF_PACKET', 'AF_NETLINK'):\n"
        "    try:\n"
        "        socket.socket(getattr(socket, family), socket.SOCK_STREAM if family != 'AF_NETLINK' else 3)\n"
        "        print(family, 'created')\n"
        "    except OSError as error:\n"
        "        print(family, type(error).__name__)\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'leak')\n"
        "    print('connected')\n"
        "except OSError as error:\n"
        "    print('connect', type(error).__name__)\n"
    )
    try:
        with open_sandbox(mode, workers=1) as box:
            result = box.run(program)
        assert "connected" not in result.output, result.output
        if isolation.seccomp:
            assert "created" not in result.output, result.output  # no socket of any family
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()


@pytest.mark.needs("network_namespace")
def test_the_sandbox_has_no_network_interface_but_loopback(sandbox):
    assert sandbox.isolation.facts["interfaces"] == ["lo"]


def test_attack_reading_the_parents_environment_finds_nothing(monkeypatch, mode):
    secret = secrets.token_hex(16)
    monkeypatch.setenv("REASON_GYM_TEST_SECRET", secret)
    program = (
        "import os\nprint(dict(os.environ))\n"
        f"for path in ('/proc/self/environ', '/proc/1/environ', '/proc/{os.getpid()}/environ', "
        f"'/proc/{os.getppid()}/environ'):\n"
        "    try:\n        print(path, open(path, 'rb').read())\n"
        "    except OSError as error:\n        print(path, type(error).__name__)\n"
    )
    with open_sandbox(mode, workers=1) as box:  # started after the secret was set
        result = box.run(program)
    assert result.status is Status.PASSED and "{}" in result.output
    if ISOLATION[mode].pid_namespace or ISOLATION[mode].private_user:
        assert secret not in result.output


@pytest.mark.needs("mount_namespace")
def test_attack_writing_outside_the_working_directory_fails(sandbox, tmp_path):
    token = secrets.token_hex(8)
    targets = [f"/tmp/rg-{token}", f"/rg-{token}", f"/usr/rg-{token}", f"{tmp_path}/rg-{token}", f"/dev/shm/rg-{token}"]
    program = (
        f"import os\nfor path in {targets!r} + [os.path.expanduser('~/rg-{token}')]:\n"
        "    try:\n        open(path, 'w').write('x')\n        print(path, 'WRITTEN')\n"
        "    except OSError as error:\n        print(path, type(error).__name__)\n"
        f"open('rg-{token}', 'w').write('inside')\nprint(os.listdir('.'))\n"
    )
    result = sandbox.run(program)
    assert "WRITTEN" not in result.output and f"['rg-{token}']" in result.output, result.output
    for path in targets:
        assert not os.path.exists(path)
    # the next run (on any worker) starts in an empty working directory
    assert all(sandbox.run("import os\nprint(os.listdir('.'))\n").output == "[]\n" for _ in range(4))


def _host_processes_with(needle: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as file:
                if needle.encode() in file.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


def test_attack_an_orphan_daemon_does_not_outlive_the_run(sandbox):
    marker = f"{secrets.randbelow(10**6)}.25"
    program = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
        "    os._exit(0)\n"
        "time.sleep(0.3)\n"
        "def add(a, b):\n    return a + b\n"
    )
    result = sandbox.run(program, add_tests())
    assert result.status is Status.PASSED  # the program did its job; its daemon is gone all the same
    assert _host_processes_with(marker) == []


def test_attack_signalling_the_parent_and_the_host_hits_nothing(sandbox):
    program = (
        "import os, signal\n"
        f"for pid in (os.getppid(), 1, {os.getpid()}, {os.getppid()}):\n"
        "    for sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGINT, signal.SIGTERM):\n"
        "        try:\n            os.kill(pid, sig)\n        except OSError as error:\n            pass\n"
        "try:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"
        "def add(a, b):\n    return 0\n"
    )
    result = sandbox.run(program, add_tests(), limits=FAST)
    assert not result.passed
    assert sandbox.run(ADD, add_tests()).passed  # the workers survived (or, killed by uid, were replaced)
    assert os.getpid() > 0  # and so did we


def test_attack_huge_output_stops_at_the_output_limit(sandbox):
    limits = Limits(timeout=10.0, output_bytes=64 << 10)
    for program in ("print('x' * 10 ** 8)\n", "while True:\n    print('spam' * 100)\n"):
        result = sandbox.run(program, add_tests(), limits=limits)
        assert result.status is Status.OUTPUT_LIMIT and result.output_truncated
        assert len(result.output) <= 64 << 10


EXIT_TRICKS = {
    "sys.exit before the tests": "import sys\nsys.exit(0)\n",
    "os._exit before the tests": "import os\nos._exit(0)\n",
    "SystemExit in the call": "def add(a, b):\n    raise SystemExit(0)\n",
    "os._exit in the call": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "redefining the test functions": (
        "def check(candidate):\n    pass\ncandidate = check\ndef add(a, b):\n    return 0\n"
    ),
    "printing a fake verdict": (
        "import sys\nfor stream in (sys.stdout, sys.stderr):\n"
        '    print(\'{"test": 0, "passed": true}\\n{"done": true, "program": "ok"}\\npassed\', file=stream)\n'
        "def add(a, b):\n    return 0\n"
    ),
    "writing a fake verdict to every descriptor": (
        "import os\nfor fd in range(3, 1024):\n    try:\n"
        '        os.write(fd, b\'{"test": 0, "passed": true}\\n{"test": 1, "passed": true}\\n\')\n'
        "    except OSError:\n        pass\ndef add(a, b):\n    return 0\n"
    ),
    "an object equal to everything": (
        "class Anything:\n    def __eq__(self, other):\n        return True\n    __ne__ = lambda s, o: False\n"
        "def add(a, b):\n    return Anything()\n"
    ),
    "an int subclass equal to everything": (
        "class Int(int):\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return Int(0)\n"
    ),
    "patching builtins": (
        "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\nbuiltins.abs = lambda x: 0\n"
        "builtins.isinstance = lambda *a: True\ndef add(a, b):\n    return 0\n"
    ),
    "an endless iterator": "import itertools\ndef add(a, b):\n    return itertools.count()\n",
    "a deeply nested value": (
        "def add(a, b):\n    x = []\n    for _ in range(10 ** 5):\n        x = [x]\n    return x\n"
    ),
    "raising in __repr__ and __eq__": (
        "class Bad:\n    def __repr__(self):\n        raise SystemExit(0)\n    __eq__ = __repr__\n"
        "def add(a, b):\n    return Bad()\n"
    ),
}


@pytest.mark.parametrize("trick", sorted(EXIT_TRICKS))
def test_attack_exit_tricks_and_fake_evidence_never_pass(sandbox, trick):
    result = sandbox.run(EXIT_TRICKS[trick], add_tests(), limits=Limits(timeout=5.0))
    assert not result.passed and not any(t.passed for t in result.tests), (trick, result)
    assert result.status in (Status.FAILED, Status.CRASHED)


def test_attack_the_hidden_tests_are_not_in_the_programs_memory(sandbox):
    token = str(10**15 + secrets.randbelow(10**14))
    program = (
        "import gc, re\n"
        "def guess():\n"
        "    found = set()\n"
        "    for obj in gc.get_objects():\n"
        "        for text in (obj if isinstance(obj, (list, tuple)) else [obj]):\n"
        "            if isinstance(text, (str, bytes)):\n"
        "                found.update(int(m) for m in re.findall(r'\\d{16}', str(text)))\n"
        "    maps = open('/proc/self/maps').read().splitlines()\n"
        "    mem = open('/proc/self/mem', 'rb', 0)\n"
        "    for line in maps:\n"
        "        start, end = (int(x, 16) for x in line.split()[0].split('-'))\n"
        "        if 'r' not in line.split()[1] or end - start > 1 << 28:\n            continue\n"
        "        try:\n            mem.seek(start)\n            chunk = mem.read(end - start)\n"
        "        except (OSError, ValueError, OverflowError):\n            continue\n"
        "        found.update(int(m) for m in re.findall(rb'\\d{16}', chunk))\n"
        "    for pid in ('1', '2', '3'):\n"
        "        try:\n            open(f'/proc/{pid}/mem', 'rb').read(1)\n            print('READ', pid)\n"
        "        except OSError:\n            pass\n"
        "    return max(found) if found else 0\n"
    )
    result = sandbox.run(program, TestSuite.from_asserts([f"assert guess() == {token}"]), limits=Limits(timeout=20.0))
    assert result.status is Status.FAILED and token not in result.tests[0].message
    assert "READ" not in result.output


def test_attack_killing_or_tracing_the_tester_never_passes(sandbox):
    program = (
        "import os, signal, ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def add(a, b):\n"
        "    for name in os.listdir('/proc'):\n"
        "        if name.isdigit() and int(name) != os.getpid():\n"
        "            libc.ptrace(16, int(name), 0, 0)\n"  # PTRACE_ATTACH
        "            for sig in (signal.SIGSTOP, signal.SIGKILL):\n"
        "                try:\n                    os.kill(int(name), sig)\n"
        "                except OSError:\n                    pass\n"
        "    return 0\n"
    )
    result = sandbox.run(program, add_tests(), limits=Limits(timeout=3.0))
    assert not result.passed
    assert sandbox.run(ADD, add_tests()).passed  # a broken worker was replaced


@pytest.mark.needs("seccomp")
def test_attack_ptrace_and_keyrings_are_refused_by_the_syscall_filter(sandbox):
    program = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.ptrace(0, 0, 0, 0), ctypes.get_errno())\n"  # PTRACE_TRACEME
        "print(libc.syscall(250, 0, 0, 0, 0, 0), ctypes.get_errno())\n"  # keyctl
        "print(libc.syscall(29, 0, 4096, 0o1600), ctypes.get_errno())\n"  # shmget
        "print(libc.unshare(0x10000000), ctypes.get_errno())\n"  # CLONE_NEWUSER
    )
    result = sandbox.run(program)
    assert result.output.split() == ["-1", "1"] * 4


# ---------------------------------------------------------------------------------------------------- concurrency


def test_runs_from_many_threads_get_their_own_results(sandbox):
    def one(n: int) -> bool:
        suite = TestSuite.from_asserts([f"assert f() == {n}"])
        return sandbox.run(f"def f():\n    return {n if n % 3 else -1}\n", suite).passed == bool(n % 3)

    with ThreadPoolExecutor(6) as pool:
        assert all(pool.map(one, range(36)))


def test_a_forked_child_gets_its_own_workers():
    with open_sandbox(DEFAULT_MODE, workers=1) as box:
        assert box.run(ADD, add_tests()).passed
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: the parent's workers are not ours; new ones start on first use
            ok = False
            try:
                ok = box.run(ADD, add_tests()).passed
            finally:
                os.write(write, b"1" if ok else b"0")
                os._exit(0)
        os.close(write)
        assert os.read(read, 1) == b"1"
        os.close(read)
        os.waitpid(pid, 0)
        assert box.run(ADD, add_tests()).passed


# ---------------------------------------------------------------------------------------------------- leaks


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _children() -> list[int]:
    me = str(os.getpid())
    kids = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat", "rb") as file:
                if file.read().rsplit(b")", 1)[1].split()[1].decode() == me:
                    kids.append(int(name))
        except (OSError, IndexError):
            continue
    return kids


@pytest.mark.slow
def test_nothing_leaks_after_a_thousand_runs(mode, tmp_path):
    programs = [
        (ADD, add_tests()),
        ("def add(a, b):\n    return 0\n", add_tests()),
        (
            "import os\nopen('junk', 'w').write('x' * 1000)\nos.mkdir('d')\ndef add(a, b):\n    return a + b\n",
            add_tests(),
        ),
        (
            "import os\nif os.fork() == 0:\n    import time\n    time.sleep(30)\ndef add(a, b):\n    return a + b\n",
            add_tests(),
        ),
        ("def add(a, b)\n", add_tests()),
    ]
    children_before = set(_children())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open_sandbox(mode, workers=2) as box:
            box.start()
            for program, suite in programs:
                box.run(program, suite)
            gc.collect()
            fds, children = _open_fds(), len(_children())
            threads = threading.active_count()
            with ThreadPoolExecutor(4) as pool:
                results = list(pool.map(lambda i: box.run(*programs[i % len(programs)]), range(1000)))
            assert sum(r.passed for r in results) == 600
            gc.collect()
            assert _open_fds() <= fds
            assert len(_children()) <= children
            assert threading.active_count() <= threads
            scratch = box.scratch
            assert not scratch or os.listdir(scratch) == []  # every run's working directory was removed
    assert not scratch or not os.path.exists(scratch)
    time.sleep(0.2)
    assert set(_children()) <= children_before  # closing the sandbox stopped and reaped every worker


def test_a_sandbox_pickles_as_its_settings_and_deep_copies_as_itself(sandbox):
    twin = pickle.loads(pickle.dumps(sandbox))
    try:
        assert twin is not sandbox and twin.workers == sandbox.workers and twin.limits == sandbox.limits
        assert twin.run(ADD, add_tests()).passed
    finally:
        twin.close()
    assert copy.deepcopy(sandbox) is sandbox


def test_closing_a_sandbox_stops_its_workers(mode):
    box = open_sandbox(mode, workers=2)
    assert box.run(ADD, add_tests()).passed
    pids = [w.process.pid for w in box._live]
    box.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize(
    ("program", "test"),
    [
        (
            "class T:\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return T()\n",
            "assert f(1) == 2",
        ),
        ("def f(x):\n    raise StopIteration\n", "assert all(map(f, [1, 2, 3])) and False"),
        ("def f(x):\n    raise StopIteration\n", "assert all(map(f, [1, 2, 3]))"),
        (
            "class T:\n    def __repr__(self):\n        return 'True'\ndef f():\n    return T()\n",
            "_rg_expect_output(f(), 'True')",
        ),
    ],
)
def test_attack_program_objects_never_decide_a_test(sandbox, program, test):
    result = sandbox.run(program, TestSuite((Statement(test, "t"),)))
    assert result.status is Status.FAILED, result.tests


FAKE_SERVER = """
import fcntl, json, os, struct, time
def frame(message):
    data = json.dumps(message).encode()
    return struct.pack(">I", len(data)) + data
writable = []
loaded = ["loaded", ["D", [["f", 1], ["_rg_assert_failed", ["H", 7, "s", True]], ["abs", ["H", 7, "s", True]]]]]
for fd in range(3, 64):  # speak the protocol ourselves: answer "loaded" with names of the tests' own
    try:
        os.write(fd, frame(loaded))
        writable.append(fd)
    except OSError:
        pass
deadline = time.monotonic() + 2
while time.monotonic() < deadline:  # and answer every request with None (a swallowed assertion failure)
    for fd in range(3, 64):
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK)
            if os.read(fd, 1 << 16):
                for out in writable:
                    os.write(out, frame(["ok", None]))
        except OSError:
            pass
    time.sleep(0.01)
"""


def test_attack_unrequested_names_do_not_reach_the_tests(sandbox):
    result = sandbox.run(FAKE_SERVER, TestSuite.from_asserts(["assert f == 2", "assert abs(f) == 2"]))
    assert not result.passed and not any(t.passed for t in result.tests), result.tests
    assert result.tests[0].message == "assertion failed: got 1, expected 2"


# ---------------------------------------------------------------------------------------------------- audit cases


def _descendants(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as file:
            children = [int(child) for child in file.read().split()]
    except OSError:
        return []
    return children + [grandchild for child in children for grandchild in _descendants(child)]


@pytest.mark.parametrize("victim", ["the worker's process", "its child", "its youngest descendant"])
def test_a_worker_killed_while_idle_is_replaced_and_the_next_program_runs(mode, victim):
    # from outside (an OOM killer, a user's kill): the worker's fork server or its tester, whichever the mode has
    with open_sandbox(mode, workers=1) as box:
        assert box.run(ADD, add_tests()).passed
        (worker,) = box._live
        family = [worker.process.pid, *_descendants(worker.process.pid)]
        pids = {"the worker's process": family[:1], "its child": family[1:2], "its youngest descendant": family[-1:]}
        pids = pids[victim]
        for pid in pids:
            os.kill(pid, 9)
        deadline = time.monotonic() + 10
        while worker.alive and time.monotonic() < deadline:  # the rest of the worker follows its fork server
            time.sleep(0.05)
        result = box.run(ADD, add_tests())
        assert result.passed, result.error


def test_output_past_the_limit_after_the_tests_finished_fails_and_harms_no_later_run(sandbox):
    # a daemon thread floods stdout while the tests finish: whichever comes first, the run is no pass, and the
    # abort the host may send for it must not stop the worker that runs the next program
    flood = (
        "import os, threading\nos.write(1, b'a' * (250 * 1024))\n"
        "def spam():\n    while True:\n        os.write(1, b'b' * 4096)\n"
        "def add(a, b):\n    threading.Thread(target=spam, daemon=True).start()\n    return a + b\n"
    )
    limits = Limits(timeout=3.0)
    for _ in range(8):
        result = sandbox.run(flood, add_tests("assert add(2, 2) == 4"), limits=limits)
        over = result.output_truncated or result.status is Status.OUTPUT_LIMIT
        assert result.status is Status.OUTPUT_LIMIT if over else result.passed, (result.status, result.error)
        after = sandbox.run(ADD, add_tests(), limits=limits)
        assert after.passed, (after.status, after.error)


CHECKS_IN_SETUP_STEPS = {
    "the result kept in a name": [
        Statement.from_source("result = add(2, 2)", test=False),
        Statement.from_source("assert result == 4", test=False),
    ],
    "a helper that asserts": [
        Statement.from_source("def helper(a, b, want):\n    assert add(a, b) == want", test=False),
        Statement.from_source("helper(2, 2, 4)", test=False),
    ],
}


@pytest.mark.parametrize("steps", list(CHECKS_IN_SETUP_STEPS.values()), ids=list(CHECKS_IN_SETUP_STEPS))
def test_a_setup_step_that_raises_fails_the_run_even_with_no_test(sandbox, steps):
    assert sandbox.run(ADD, TestSuite(tuple(steps))).passed
    wrong = sandbox.run("def add(a, b):\n    return 0\n", TestSuite(tuple(steps)))
    assert wrong.status is Status.FAILED and "test setup failed" in wrong.error, (wrong.status, wrong.error)
    with_a_test = TestSuite((*steps, Statement.from_source("assert add(1, 1) == 2")))
    wrong = sandbox.run("def add(a, b):\n    return 2\n", with_a_test)
    assert wrong.status is Status.FAILED and wrong.tests[0].passed, (wrong.status, wrong.tests)


def test_a_failing_test_setup_fails_a_suite_without_tests(sandbox):
    result = sandbox.run(ADD, TestSuite((), setup=("raise ValueError('broken setup')",)))
    assert result.status is Status.FAILED and "broken setup" in result.error


def test_standard_modules_the_tests_use_unimported_are_the_testers_not_the_programs(sandbox):
    # MBPP 596: `sys.getsizeof(...)` in the tests without `import sys`: a program defining `sys` must not supply
    # the expected side of the assertion
    tests = TestSuite.from_asserts(["assert tuple_size((1, 2)) == sys.getsizeof((1, 2))"])
    assert tests.modules == ("sys",) and tests.program_names == ("tuple_size",)
    cheat = "class sys:\n    @staticmethod\n    def getsizeof(x):\n        return 0\ndef tuple_size(t):\n    return 0\n"
    assert not sandbox.run(cheat, tests).passed
    assert sandbox.run("import sys\ndef tuple_size(t):\n    return sys.getsizeof(t)\n", tests).passed


@pytest.mark.parametrize(
    ("tests", "modules", "program_names"),
    [
        (["assert f(1) == math.pi"], ("math",), ("f",)),
        (["assert math(2) == 4"], (), ("math",)),  # called: a function of the program's named like a module
        (["assert f(1) == 1", "import re\nassert re.sub('a', '', f('a')) == ''"], (), ("f",)),
        (["assert f(Node(1)) == Node(1).value"], (), ("Node", "f")),  # not a standard module: the program's
    ],
)
def test_which_free_names_are_standard_modules(tests, modules, program_names):
    suite = TestSuite.from_asserts(tests)
    assert (suite.modules, suite.program_names) == (modules, program_names)


@pytest.mark.parametrize("module", ["unittest.__main__", "venv.__main__", "__main__", "inside.tester", "test"])
def test_a_program_cannot_make_the_tester_import_a_module_that_acts_or_is_its_own(sandbox, module):
    program = f"import types\ndef add(a, b):\n    return types.ModuleType({module!r})\n"
    result = sandbox.run(program, add_tests("assert add(2, 2) == 4"))
    assert not result.passed and "a module the tests cannot import" in result.tests[0].message + result.error
    assert sandbox.run(ADD, add_tests()).passed
