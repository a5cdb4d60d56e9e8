"""The sandbox fails closed, and partial isolation, when asked for, still keeps its promises.

Fail closed: where full isolation is not available (no bubblewrap, a bubblewrap that cannot start, a layer the
first worker could not verify), ``Sandbox()`` and every code environment refuse at construction with a message that
says what is missing and how to get it; weaker isolation runs only when asked for (``allow_partial=True`` or
``REASON_GYM_SANDBOX_ALLOW_PARTIAL=1``), with one warning.

Promises, checked in every mode this machine offers (bubblewrap, and the partial modes): no process a program
starts outlives its run, its sandbox or its host, whatever it does to its parent; no run sees a file an earlier run
left, wherever it wrote it; the writable space is capped where the mode says so; cleanup survives any folder shape;
sandboxes are closed at exit; the whole standard library imports.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import warnings

import gymnasium
import pytest
from sandbox_modes import AVAILABLE, IS_ROOT, ISOLATION, MODES, open_sandbox

import reason_gym  # noqa: F401  (registers the environments)
from reason_gym.process_local import ProcessDefault
from reason_gym.sandbox import Limits, Sandbox, SandboxError, Status, TestSuite, pool
from reason_gym.sandbox.inside.files import remove_tree
from reason_gym.sandbox.launch import UID_BASE

pytestmark = pytest.mark.filterwarnings("ignore:reason_gym sandbox. partial isolation:RuntimeWarning")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADD = "def add(a, b):\n    return a + b\n"
SUITE = TestSuite.from_asserts(["assert add(2, 2) == 4"])
CODE_ENVS = ["reason_gym/HumanEval-v0", "reason_gym/MBPP-v0"]


@pytest.fixture(params=list(MODES))
def mode(request):
    if request.param not in ISOLATION:
        pytest.skip(f"{request.param} isolation cannot run here: {MODES[request.param].unavailable}")
    return request.param


# ---------------------------------------------------------------------------------------------------- fail closed


def _fake_bwrap(folder, message: str) -> str:
    fake = folder / "bwrap"
    fake.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 1\n")
    fake.chmod(0o755)
    return str(folder)


SITUATIONS = {
    # name: (how the machine is made to lack full isolation, words the refusal must contain)
    "bubblewrap not installed": (lambda tmp: str(tmp), "not installed"),
    "bubblewrap cannot create namespaces": (
        lambda tmp: _fake_bwrap(tmp, "bwrap: No permissions to create new namespace"),
        "No permissions to create new namespace",
    ),
    "bubblewrap refused by a security module": (
        lambda tmp: _fake_bwrap(tmp, "bwrap: setting up uid map: Permission denied"),
        "Permission denied",
    ),
}


@pytest.fixture(params=sorted(SITUATIONS))
def no_full_isolation(request, monkeypatch, tmp_path):
    """A PATH on which ``bwrap`` is missing or cannot start; yields the words its refusal must contain."""
    make_path, words = SITUATIONS[request.param]
    monkeypatch.setenv("PATH", make_path(tmp_path))
    monkeypatch.delenv(pool.ALLOW_PARTIAL_ENV, raising=False)
    # A fresh process-wide default: one made earlier in this process saw a working bubblewrap.
    monkeypatch.setattr(pool, "_DEFAULT", ProcessDefault(Sandbox))
    return words


@pytest.mark.parametrize("kwargs", [{}, {"backend": "auto"}, {"backend": "bubblewrap"}, {"workers": 1}])
def test_without_full_isolation_a_sandbox_refuses_at_construction(no_full_isolation, kwargs):
    with pytest.raises(SandboxError) as refused:
        Sandbox(**kwargs)
    message = str(refused.value)
    for words in (no_full_isolation, "apt-get install bubblewrap", "allow_partial=True", pool.ALLOW_PARTIAL_ENV):
        assert words in message, message


@pytest.mark.parametrize("env_id", CODE_ENVS)
def test_without_full_isolation_the_code_environments_refuse_at_construction(no_full_isolation, env_id):
    with pytest.raises(SandboxError, match="bubblewrap"):
        gymnasium.make(env_id)


@pytest.mark.parametrize(
    "kwargs",
    [{"backend": "subprocess"}, {"backend": "subprocess", "allow_partial": False}, {"allow_partial": False}],
)
def test_partial_isolation_is_never_implied(monkeypatch, kwargs):
    monkeypatch.delenv(pool.ALLOW_PARTIAL_ENV, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")  # no bubblewrap either
    with pytest.raises(SandboxError, match="allow_partial=True"):
        Sandbox(**kwargs)


@pytest.mark.parametrize("value", ["0", "", "no", "false"])
def test_only_a_true_environment_value_allows_partial_isolation(monkeypatch, value):
    monkeypatch.setenv(pool.ALLOW_PARTIAL_ENV, value)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SandboxError):
        Sandbox()


def test_partial_isolation_without_root_is_refused_too(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SandboxError, match="needs root"):
        Sandbox(allow_partial=True)


def test_a_layer_missing_under_bubblewrap_is_refused_unless_allowed(monkeypatch):
    if "bubblewrap" not in ISOLATION:
        pytest.skip("bubblewrap cannot run here")
    real = pool.isolation_of

    def without_seccomp(launch, facts):
        return real(launch, {**facts, "seccomp": False})  # as on a machine that is not x86-64

    monkeypatch.setattr(pool, "isolation_of", without_seccomp)
    monkeypatch.delenv(pool.ALLOW_PARTIAL_ENV, raising=False)
    with pytest.raises(SandboxError, match="seccomp"):
        Sandbox(workers=1).run(ADD, SUITE)
    with pytest.warns(RuntimeWarning, match="seccomp"), Sandbox(workers=1, allow_partial=True) as box:
        assert box.run(ADD, SUITE).passed


@pytest.mark.skipif(not IS_ROOT, reason="partial isolation needs root")
@pytest.mark.parametrize("how", ["argument", "environment"])
def test_asking_for_partial_isolation_runs_with_one_warning(no_full_isolation, monkeypatch, how):
    if how == "environment":
        monkeypatch.setenv(pool.ALLOW_PARTIAL_ENV, "1")
    kwargs = {"allow_partial": True} if how == "argument" else {}
    pool._WARNED.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            with Sandbox(workers=1, **kwargs) as box:
                assert box.isolation.level == "partial" and box.isolation.backend == "subprocess"
                assert any(no_full_isolation in line for line in box.isolation.missing)
                assert box.run(ADD, SUITE).passed
    assert sum("partial isolation, as asked for" in str(w.message) for w in caught) == 1


@pytest.mark.skipif(not IS_ROOT, reason="partial isolation needs root")
def test_a_code_environment_runs_with_partial_isolation_when_asked(no_full_isolation, monkeypatch):
    monkeypatch.setenv(pool.ALLOW_PARTIAL_ENV, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gymnasium.make("reason_gym/MBPP-v0", sandbox=Sandbox(workers=1))
    env.reset(seed=0)
    env.close()


# ---------------------------------------------------------------------------------------------------- processes


def _marker() -> str:
    return f"{secrets.randbelow(10**6)}.{secrets.randbelow(1000):03d}"


def _sleepers(marker: str) -> list[int]:
    """Processes running ``sleep MARKER`` anywhere on the host."""
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as file:
                if file.read() == f"sleep\0{marker}\0".encode():
                    found.append(int(name))
        except OSError:
            continue
    return found


def _gone(marker: str, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while _sleepers(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


_DAEMON = (  # a grandchild in a new session, detached from the program; {extra} runs in it before `sleep`
    "import os, signal, time, ctypes\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        {extra}\n"
    "        os.execv('/bin/sleep', ['sleep', '{{marker}}'])\n"
    "    os._exit(0)\n"
    "time.sleep(0.2)\n"
)
ESCAPES = {
    # name: a program that leaves `sleep MARKER` behind by its trick, then returns normally
    "orphan": "import os\nif os.fork() == 0:\n    os.execv('/bin/sleep', ['sleep', '{marker}'])\n",
    "new session, double fork": _DAEMON.format(extra="pass"),
    "new process group, SIGTERM and SIGHUP ignored": _DAEMON.format(
        extra="os.setpgid(0, 0); signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)"
    ),
    "cleared parent-death signal, double fork": _DAEMON.format(extra="ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)"),
    "kills its parent, the fork server": _DAEMON.format(extra="ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)")
    + "try:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError:\n    pass\n",
    "kills every process it may": _DAEMON.format(extra="pass")
    + "try:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n",
}


@pytest.mark.parametrize("trick", sorted(ESCAPES))
def test_no_process_outlives_its_run(mode, trick):
    marker = _marker()
    with open_sandbox(mode, workers=1) as box:
        box.run(ESCAPES[trick].format(marker=marker) + "import time\ntime.sleep(0.3)\n", limits=Limits(timeout=3))
        assert _gone(marker), f"{trick}: a process outlived its run ({mode})"
        assert box.run(ADD, SUITE).passed  # the sandbox still works (a killed worker was replaced)
    assert _gone(marker)


_HOST = """
import sys, time
sys.path.insert(0, {tests!r})
from sandbox_modes import open_sandbox
from reason_gym.sandbox import Limits
box = open_sandbox({mode!r}, workers=1)
print("ready", flush=True)
box.run({program!r}, limits=Limits(timeout=60))
"""


@pytest.mark.slow
@pytest.mark.parametrize("trick", ["new session, double fork", "cleared parent-death signal, double fork"])
def test_no_process_outlives_a_host_that_is_killed(mode, trick):
    marker = _marker()
    program = ESCAPES[trick].format(marker=marker) + "import time\ntime.sleep(60)\n"
    code = _HOST.format(tests=os.path.join(ROOT, "tests", "sandbox"), mode=mode, program=program)
    folders_before = set(_scratch_folders())
    host = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert host.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 10
        while not _sleepers(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _sleepers(marker), "the daemon never started"
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait()
    assert _gone(marker, within=10), f"the daemon outlived its host ({mode})"
    deadline = time.monotonic() + 10  # the keepers remove the scratch folder a killed host could not
    while set(_scratch_folders()) - folders_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set(_scratch_folders()) <= folders_before


# ---------------------------------------------------------------------------------------------------- files

SHARED = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", "."]


def test_no_run_sees_a_file_an_earlier_run_left(mode):
    token = secrets.token_hex(6)
    leave = (
        f"import os\nfor folder in {SHARED!r}:\n    try:\n"
        f"        open(os.path.join(folder, 'rg-{token}'), 'w').write('left')\n"
        f"        os.makedirs(os.path.join(folder, 'rg-dir-{token}', 'a', 'b'))\n"
        "        print(folder, 'WROTE')\n    except OSError as error:\n        print(folder, type(error).__name__)\n"
    )
    look = (
        f"import os\nfor folder in {SHARED!r}:\n    try:\n        names = os.listdir(folder)\n"
        "    except OSError:\n        continue\n"
        f"    print(folder, [n for n in names if '{token}' in n])\n"
    )
    with open_sandbox(mode, workers=2) as box:
        wrote = box.run(leave)
        assert wrote.status is Status.PASSED and "WROTE" in wrote.output  # at least its working directory
        for _ in range(4):  # on every worker
            seen = box.run(look)
            assert f"'rg-{token}'" not in seen.output and f"rg-dir-{token}" not in seen.output, (mode, seen.output)
    for folder in SHARED[:-1]:
        assert not [n for n in os.listdir(folder) if token in n] if os.path.isdir(folder) else True, folder


def test_the_writable_space_is_capped(mode):
    if not ISOLATION[mode].disk_cap:
        pytest.skip(f"{mode} mode has no total disk cap (it says so in Sandbox().isolation.missing)")
    program = (
        "import os\nwritten = 0\nfor n, folder in enumerate(('.', '/tmp', '/var/tmp', '/dev/shm')):\n"
        "    for i in range(40):\n        try:\n"
        "            with open(os.path.join(folder, f'f{n}-{i}'), 'wb') as file:\n"
        "                file.write(b'x' * (1 << 20))\n            written += 1 << 20\n"
        "        except OSError:\n            break\nprint(written >> 20)\n"
    )
    with open_sandbox(mode, workers=1, disk_bytes=16 << 20) as box:
        result = box.run(program, limits=Limits(timeout=20, file_size_bytes=2 << 20))
        assert result.status is Status.PASSED, result
        assert int(result.output) <= 16, f"{result.output.strip()} MiB written past a 16 MiB cap ({mode})"
        assert box.run("print(1)").passed


def test_a_per_file_size_limit_applies_in_every_mode(mode):
    program = (
        "try:\n    open('big', 'wb').write(b'x' * (3 << 20))\n    print('WROTE')\n"
        "except OSError:\n    print('capped')\n"
    )
    with open_sandbox(mode, workers=1) as box:
        result = box.run(program, limits=Limits(timeout=10, file_size_bytes=1 << 20))
    assert "WROTE" not in result.output


NESTING = {
    "deep folders": "import os\nfor _ in range({depth}):\n    os.mkdir('d')\n    os.chdir('d')\n",
    "deep folders, locked": (
        "import os\nbase = os.getcwd()\nfor _ in range({depth}):\n    os.mkdir('d')\n    os.chdir('d')\n"
        "os.chdir(base)\nos.chmod('d', 0)\n"
    ),
    "many files": "for i in range(3000):\n    open(f'f{{i}}', 'w').close()\n",
    "a folder without permissions": (
        "import os\nos.makedirs('a/b/c')\nopen('a/b/c/x', 'w').close()\nos.chmod('a/b', 0)\n"
    ),
    "symlinks out of the folder": "import os\nos.symlink('/usr', 'usr')\nos.symlink('/', 'root')\n",
}


@pytest.mark.parametrize("shape", sorted(NESTING))
def test_cleanup_survives_whatever_a_program_leaves(mode, shape):
    program = "import os\nos.chdir('/tmp') if os.access('/tmp', os.W_OK) and {tmp} else None\n" + NESTING[shape]
    with open_sandbox(mode, workers=1) as box:
        for in_tmp in (False, True):
            box.run(program.format(depth=3000, tmp=in_tmp), limits=Limits(timeout=20))
            assert box.run("import os\nprint(sorted(os.listdir('.')))\n").output == "[]\n", (mode, shape)
        scratch = box.scratch
    assert not scratch or not os.path.exists(scratch)
    assert os.path.exists("/usr/bin")  # the symlinks were removed, never followed


def test_remove_tree_handles_any_depth_and_any_modes(tmp_path):
    deep = tmp_path / "top"
    os.makedirs(deep)
    here = os.open(deep, os.O_RDONLY)
    try:
        for _ in range(5000):  # deeper than PATH_MAX and than Python's recursion limit
            os.mkdir("d", dir_fd=here)
            child = os.open("d", os.O_RDONLY, dir_fd=here)
            os.close(here)
            here = child
        os.chmod(here, 0o000)
    finally:
        os.close(here)
    (tmp_path / "top" / "file").write_text("x")
    assert remove_tree(str(deep)) and not deep.exists()
    assert remove_tree(str(tmp_path / "never-there"))


def test_sandboxes_are_closed_at_exit(mode):
    before = set(_scratch_folders())
    code = (
        f"import sys\nsys.path.insert(0, {os.path.join(ROOT, 'tests', 'sandbox')!r})\n"
        "from sandbox_modes import open_sandbox\n"
        f'box = open_sandbox({mode!r}, workers=2)\nbox.start()\nprint(box.run(\'open("x", "w").write("1")\').status)\n'
        "from reason_gym.sandbox import default_sandbox\n"
    )
    host = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    out, err = host.communicate(timeout=120)
    assert host.returncode == 0 and out.strip() == b"Status.PASSED", err
    assert set(_scratch_folders()) <= before
    assert not _processes_of_users_of(host.pid)


def test_the_default_sandbox_is_closed_at_exit():
    if not AVAILABLE:
        pytest.skip("no sandbox can run here")
    env = dict(os.environ)
    if AVAILABLE[0] != "bubblewrap":
        env[pool.ALLOW_PARTIAL_ENV] = "1"
    before = set(_scratch_folders())
    code = "from reason_gym.sandbox import default_sandbox\nprint(default_sandbox().run('print(2)').output)\n"
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, env=env,
                          timeout=120, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "2", done.stderr
    assert set(_scratch_folders()) <= before


def _scratch_folders() -> list[str]:
    folder = tempfile.gettempdir()
    return [name for name in os.listdir(folder) if name.startswith("reason-gym-sandbox-")]


def _processes_of_users_of(host_pid: int) -> list[int]:
    """Processes still running as the private users a host process gave its workers (root only)."""
    time.sleep(0.2)
    first = UID_BASE + 2 * 1024 * (host_pid % (1 << 16))
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/status") as file:
                status = dict(line.split(":\t", 1) for line in file.read().splitlines() if ":\t" in line)
            uid = int(status["Uid"].split()[0])
        except (OSError, KeyError, ValueError):
            continue
        if first <= uid < first + 2048 and not status.get("State", "").startswith("Z"):  # zombies are dead
            found.append(int(name))
    return found


# ---------------------------------------------------------------------------------------------------- imports

STDLIB = [
    "wave", "sqlite3", "multiprocessing", "csv", "json", "xml.etree.ElementTree", "unittest", "zoneinfo",
    "email.mime.text", "ctypes", "asyncio", "concurrent.futures", "difflib", "textwrap", "pathlib", "array",
    "cmath", "numbers", "enum", "struct", "zlib", "gzip", "pickle", "calendar", "unicodedata",
]  # fmt: skip


def test_the_whole_standard_library_imports(mode):
    program = (
        f"import importlib\nfor name in {STDLIB!r}:\n    try:\n        importlib.import_module(name)\n"
        "    except Exception as error:\n        print(name, type(error).__name__, error)\n"
        "import sqlite3\nprint(sqlite3.connect(':memory:').execute('select 6 * 7').fetchone()[0])\n"
    )
    with open_sandbox(mode, workers=1) as box:
        assert box.isolation.stdlib
        result = box.run(program, limits=Limits(timeout=20))
    assert result.status is Status.PASSED and result.output == "42\n", (mode, result.output)
