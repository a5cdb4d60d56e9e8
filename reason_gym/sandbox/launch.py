"""How a sandbox worker is started: the bubblewrap command line, or a plain subprocess where bubblewrap cannot run.

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
        backend: ``"bubblewrap"`` or ``"subprocess"``.
        python: The interpreter that runs the harness and the programs.
        disk_bytes: Size of the ``/sandbox`` tmpfs (bubblewrap only).
        bwrap: Path of the ``bwrap`` binary (bubblewrap only).
        debug: Keep the worker's stderr (harness tracebacks) on the host's stderr.
        scratch: Host folder for the runs' working directories (subprocess only; bubblewrap runs use a private
            tmpfs).
    """

    backend: str
    python: str
    disk_bytes: int = 64 << 20
    bwrap: str = "bwrap"
    debug: bool = False
    scratch: str = ""

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
            "workdir": SANDBOX_WORKDIR if self.backend == "bubblewrap" else "",
            "uid": uid,
            "tester_uid": tester_uid,
            "seccomp": True,
            "debug": self.debug,
            "scratch": self.scratch,
        }

    def command(self, config: dict[str, Any]) -> list[str]:
        """The worker's command line."""
        argument = json.dumps(config)
        if self.backend == "subprocess":
            return [self.python, *PYTHON_FLAGS, "-m", "inside.zygote", argument]
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


def isolation_of(launch: Launch, facts: dict[str, Any]) -> Isolation:
    """What is in force, from the facts the worker verified inside its sandbox."""
    bubblewrap = launch.backend == "bubblewrap"
    layers = {
        "pid_namespace": bubblewrap and bool(facts.get("pid1")),
        "network_namespace": bubblewrap and facts.get("interfaces") == ["lo"],
        "mount_namespace": bubblewrap and not facts.get("root_writable", True),
        "ipc_namespace": bubblewrap,
        "private_user": facts.get("uid") != 0 and facts.get("capabilities") == 0 and bool(facts.get("no_new_privs")),
        "seccomp": bool(facts.get("seccomp")) and bool(facts.get("sockets_blocked")),
    }
    why = {
        "pid_namespace": "no PID namespace: a run's orphans are found and killed by walking /proc, and runs can "
        "see the host's processes",
        "network_namespace": "no network namespace (only the seccomp filter, where present, keeps runs off the "
        "network)",
        "mount_namespace": "no mount namespace: runs see the host's files and may write where the worker's user "
        "may (a fresh temporary working directory is still used and removed)",
        "ipc_namespace": "no IPC namespace",
        "private_user": "runs as root or with capabilities",
        "seccomp": "no seccomp filter (needs x86-64 Linux)",
    }
    missing = tuple(why[name] for name, present in layers.items() if not present)
    return Isolation(backend=launch.backend, missing=missing, facts=dict(facts), **layers)
