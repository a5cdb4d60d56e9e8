"""How a sandbox worker is started: the bubblewrap command line, or (partial isolation, only when asked for) a
keeper process that gives the worker what the kernel allows without bubblewrap (see :mod:`.inside.keeper`).

A worker is one long-lived fork server (:mod:`reason_gym.sandbox.inside.zygote`) in its own sandbox; runs are
forked from it, so a run costs a fork, not an interpreter start. Under bubblewrap the worker gets new PID, network,
IPC, UTS, cgroup and mount namespaces: it sees ``/usr`` (and the interpreter's install folder) read-only, a
``/proc`` of its own, a minimal ``/dev``, and one writable folder, ``/sandbox``, a size-limited tmpfs that is
emptied after each run. Started as root, bubblewrap keeps only ``CAP_SETUID``/``CAP_SETGID`` for the worker to
switch at once to users of its own (so the kernel's process limit counts the run's processes only, and programs
cannot signal the tester); started as another user, bubblewrap maps that user into a new user namespace and nothing
is privileged.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reason_gym.sandbox.results import Isolation

INSIDE = Path(__file__).with_name("inside")
"""The package that runs in the sandbox (bound read-only at ``/opt/reason-gym/inside`` under bubblewrap)."""
SANDBOX_WORKDIR = "/sandbox"
"""The only writable folder inside a bubblewrap sandbox (a tmpfs), and the programs' working directory."""
_MOUNT_POINT = "/opt/reason-gym"
UID_BASE = 1_800_000_000
"""Started as root, each worker gets two users no one else is: one for its fork server and programs (so that
``RLIMIT_NPROC`` counts that worker's runs only) and one for its tester (so that programs cannot signal it). The
``n``-th worker started by process ``p`` uses ``UID_BASE + 2 * (1024 * (p mod 2**16) + n mod 1024)`` and the next."""
_WORKER_NUMBERS = itertools.count()
PYTHON_FLAGS = ("-S", "-s", "-B")
"""No site-packages (programs get the standard library), no user site, no ``.pyc`` writing."""


@functools.lru_cache(maxsize=4)
def bwrap_options(bwrap: str) -> frozenset[str]:
    """The options this bubblewrap understands (older versions lack ``--size``, ``--disable-userns``)."""
    try:
        text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(word for word in text.split() if word.startswith("--"))


def _system_mounts() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for path in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives"):
        args += ["--ro-bind-try", path, path]
    return args


def _python_mounts(python: str) -> list[str]:
    """Read-only binds of the interpreter's install folder(s) (where not under ``/usr``)."""
    real = os.path.realpath(python)
    prefixes = {os.path.dirname(os.path.dirname(real))}
    if real == os.path.realpath(sys.executable):
        prefixes |= {sys.base_prefix, sys.base_exec_prefix}
    args: list[str] = []
    made: set[str] = set()
    for prefix in sorted(prefixes):
        if prefix in ("", "/") or prefix == "/usr" or prefix.startswith("/usr/"):
            continue
        # bubblewrap copies the host's modes for the folders it creates on the way (a 0700 /root would lock the
        # unprivileged programs out of an interpreter under /root): create them traversable first.
        for parent in reversed(Path(prefix).parents[:-1]):
            if str(parent) not in made:
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", prefix, prefix]
    return args


@dataclass(frozen=True)
class Launch:
    """How to start a worker.

    Attributes:
        backend: ``"bubblewrap"`` or ``"subprocess"`` (partial isolation: started by a keeper, as root).
        python: The interpreter that runs the harness and the programs.
        disk_bytes: Size of the worker's writable tmpfs (``/sandbox`` under bubblewrap, ``/tmp`` in the keeper's
            namespaces).
        bwrap: Path of the ``bwrap`` binary (bubblewrap only).
        debug: Keep the worker's stderr (harness tracebacks) on the host's stderr.
        scratch: Host folder for the runs' working directories (subprocess backend without a mount namespace).
        namespaces: Whether the keeper asks the kernel for namespaces (tests turn it off to check the uid layer).
    """

    backend: str
    python: str
    disk_bytes: int = 64 << 20
    bwrap: str = "bwrap"
    debug: bool = False
    scratch: str = ""
    namespaces: bool = True

    @property
    def as_root(self) -> bool:
        """Whether the host runs as root (workers then switch to users of their own)."""
        return os.geteuid() == 0

    def config(self, control_fd: int) -> dict[str, Any]:
        """The harness's configuration (its one command-line argument)."""
        uid = tester_uid = None
        if self.as_root:
            uid = UID_BASE + 2 * (1024 * (os.getpid() % (1 << 16)) + next(_WORKER_NUMBERS) % 1024)
            tester_uid = uid + 1
        return {
            "control_fd": control_fd,
            "backend": self.backend,
            "workdir": SANDBOX_WORKDIR if self.backend == "bubblewrap" else "",
            "uid": uid,
            "tester_uid": tester_uid,
            "seccomp": True,
            "debug": self.debug,
            "scratch": self.scratch,
            "disk_bytes": self.disk_bytes,
            "namespaces": self.namespaces,
            "host_pid": os.getpid(),
        }

    def command(self, config: dict[str, Any]) -> list[str]:
        """The worker's command line."""
        argument = json.dumps(config)
        if self.backend == "subprocess":
            return [self.python, *PYTHON_FLAGS, "-m", "inside.keeper", argument]
        return [*self._bwrap_prefix(), self.python, *PYTHON_FLAGS, "-m", "inside.zygote", argument]

    @property
    def cwd(self) -> str:
        """Where the worker starts (``-m`` finds the ``inside`` package there; the worker then moves to ``/``)."""
        return str(INSIDE.parent)

    @property
    def env(self) -> dict[str, str]:
        """The worker's whole environment: nothing of the host's (a fixed hash seed, for reproducible runs)."""
        return {"PYTHONHASHSEED": "0"}

    def _bwrap_prefix(self) -> list[str]:
        options = bwrap_options(self.bwrap)
        args = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if self.as_root:
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-user"] + (["--disable-userns"] if "--disable-userns" in options else [])
        args += ["--die-with-parent", "--new-session", "--as-pid-1", "--clearenv", "--setenv", "PYTHONHASHSEED", "0"]
        args += _system_mounts() + _python_mounts(self.python)
        args += ["--ro-bind", str(INSIDE), f"{_MOUNT_POINT}/inside", "--proc", "/proc", "--dev", "/dev"]
        if "--size" in options:
            args += ["--size", str(self.disk_bytes)]
        args += ["--perms", "1777", "--tmpfs", SANDBOX_WORKDIR]
        args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", _MOUNT_POINT]
        return args


def find_bwrap() -> str | None:
    """The ``bwrap`` binary on PATH, or ``None``."""
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=8)
def bubblewrap_problem(bwrap: str | None, python: str, disk_bytes: int, euid: int) -> str | None:
    """Why bubblewrap cannot start a worker's sandbox here, or ``None`` when it can (checked once per process).

    Runs ``true`` under the worker's exact bubblewrap options (about 5 ms), so missing user namespaces, a seccomp
    profile that refuses them, or an AppArmor rule show up when a :class:`~reason_gym.sandbox.Sandbox` is made.
    """
    if bwrap is None:
        return "bubblewrap is not installed (no `bwrap` on PATH)"
    command = [*Launch("bubblewrap", python, disk_bytes, bwrap=bwrap)._bwrap_prefix(), "/usr/bin/true"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, env={}, cwd="/")
    except (OSError, subprocess.SubprocessError) as error:
        return f"bubblewrap could not start: {error}"
    if done.returncode != 0:
        return f"bubblewrap could not start: {(done.stderr or done.stdout).strip()[-300:] or done.returncode}"
    return None


def isolation_of(launch: Launch, facts: dict[str, Any]) -> Isolation:
    """What is in force, from the facts the worker verified inside its sandbox."""
    bubblewrap = launch.backend == "bubblewrap"
    namespaces = bubblewrap or bool(facts.get("pid1"))  # the keeper's namespaces make the fork server PID 1
    private_user = facts.get("uid") != 0 and facts.get("capabilities") == 0 and bool(facts.get("no_new_privs"))
    private_tmp = bool(facts.get("private_tmp"))
    layers = {
        "pid_namespace": namespaces and bool(facts.get("pid1")),
        "network_namespace": namespaces and facts.get("interfaces") == ["lo"],
        "mount_namespace": bubblewrap and not facts.get("root_writable", True),
        "ipc_namespace": namespaces,
        "private_user": private_user,
        "seccomp": bool(facts.get("seccomp")) and bool(facts.get("sockets_blocked")),
        "disk_cap": bubblewrap or private_tmp,
        "stdlib": bool(facts.get("stdlib_readable")),
    }
    why = {
        "pid_namespace": "no PID namespace: runs can see the host's processes and their command lines (a run's "
        "processes are still all killed, by their uid of their own)",
        "network_namespace": "no network namespace (only the seccomp filter, where present, keeps runs off the "
        "network)",
        "mount_namespace": "no mount namespace of bubblewrap's: runs can read the host's files that every user may "
        "read (the task's data, the project's source); they can write only to folders every user may",
        "ipc_namespace": "no IPC namespace",
        "private_user": "runs as root or with capabilities",
        "seccomp": "no seccomp filter (needs x86-64 Linux)",
        "disk_cap": "no cap on the total a run writes (only the per-file size limit); what it leaves in /tmp, "
        "/var/tmp, /dev/shm and /run/lock is removed after the run",
        "stdlib": "the programs' user cannot read the standard library",
    }
    missing = tuple(why[name] for name, present in layers.items() if not present)
    return Isolation(backend=launch.backend, missing=missing, facts=dict(facts), **layers)  # type: ignore[arg-type]
