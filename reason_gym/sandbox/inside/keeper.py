"""The keeper: supervises one worker started without bubblewrap (partial isolation, which the user asked for).

Run as root by the host (``python -S -s -B -m inside.keeper CONFIG``). It asks the kernel for new PID, network,
IPC, UTS and mount namespaces for the worker; where the kernel refuses (a container without ``CAP_SYS_ADMIN``),
the worker runs in the host's namespaces and its programs are contained by their user instead: a uid no other
process has. Either way the keeper outlives everything the programs can do, since they cannot signal it (it is
root, they are not), and when the worker ends, or the host dies (the keeper's parent-death signal), it kills every
process of the worker: the namespace's init, whose death the kernel turns into the death of every process in the
namespace, or every process of the worker's uids. So no process a program starts outlives its worker, whatever it
does to its parent (``setsid``, a cleared parent-death signal, a double fork, killing the fork server).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time

from .files import remove_tree
from .kernel import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUTS,
    EXIT_CODE,
    HOST_GONE,
    PR_SET_CHILD_SUBREAPER,
    PR_SET_PDEATHSIG,
    prctl,
    unshare,
)

PYTHON_FLAGS = ("-S", "-s", "-B")


def _processes_of(uid: int) -> list[int]:
    """The live processes whose real, effective or saved uid is ``uid`` (zombies are dead: their parents reap them,
    or init does)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as file:
                status = dict(line.split(":\t", 1) for line in file.read().splitlines() if ":\t" in line)
        except OSError:
            continue
        if str(uid) in status.get("Uid", "").split()[:3] and not status.get("State", "Z").startswith("Z"):
            found.append(int(name))
    return found


def kill_user(uid: int, give_up_after: float = 5.0) -> bool:
    """SIGKILLs every process of ``uid`` (which only the worker uses) until none is left; False if some remain.

    A child that becomes ``uid`` calls ``kill(-1)``: the kernel signals every process that user may signal (all of
    its own but the caller) in one pass, so a fork bomb cannot outrun it; repeated until none is left.
    """
    deadline = time.monotonic() + give_up_after
    while _processes_of(uid):
        if time.monotonic() > deadline:
            return False
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        _reap()
        time.sleep(0.001)
    return True


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


_STOP = [False]
"""Set by SIGTERM: our parent-death signal (the host, or the host thread that started us, ended) or the host's
``terminate()``. Either way the fork server is given a few seconds to end on its own, then killed."""
GRACE_SECONDS = 5.0


def _stop(signum: int, frame: object) -> None:
    _STOP[0] = True


def _wait_for(zygote: int) -> int | None:
    """The fork server's exit status; ``None`` if it had to be killed after a stop request and its grace time."""
    handle = os.pidfd_open(zygote)
    give_up = None
    while True:
        if _STOP[0] and give_up is None:
            give_up = time.monotonic() + GRACE_SECONDS
        timeout = None if give_up is None else max(0.0, give_up - time.monotonic())
        try:
            ready = select.select([handle], [], [], 0.2 if timeout is None else min(timeout, 0.2))[0]
        except InterruptedError:
            ready = []
        if ready:
            return os.waitpid(zygote, 0)[1]
        if give_up is not None and time.monotonic() >= give_up:
            return None


def main(argv: list[str]) -> None:
    """Starts the fork server in new namespaces (where allowed), waits for it, then kills what the worker left."""
    config = json.loads(argv[1])
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # the host (thread) is gone: clean up
    if os.getppid() != config["host_pid"]:
        return  # the host died before the signal was armed
    host = os.pidfd_open(config["host_pid"])  # to tell, at the end, whether the host is gone
    prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of the worker come back to us, and we reap them
    # The scratch folder's parent, held open: in our new mount namespace the worker's tmpfs covers /tmp, and a
    # descriptor still reaches the host's folder when we must remove the scratch folder ourselves.
    scratch = config.get("scratch") or ""
    scratch_parent = os.open(os.path.dirname(scratch), os.O_RDONLY | os.O_DIRECTORY) if scratch else -1
    wanted = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS
    config["namespaces"] = bool(config.get("namespaces")) and unshare(wanted)
    zygote = os.fork()  # in new namespaces, PID 1 of its own
    if zygote == 0:
        try:
            command = [sys.executable, *PYTHON_FLAGS, "-m", "inside.zygote", json.dumps(config)]
            os.execv(sys.executable, command)
        finally:
            os._exit(EXIT_CODE)
    os.close(config["control_fd"])  # only the fork server talks to the host
    status = None
    try:
        status = _wait_for(zygote)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(zygote, signal.SIGKILL)  # the namespace's init: its death kills the namespace
        for uid in (config.get("uid"), config.get("tester_uid")):
            if uid is not None and not config["namespaces"]:
                kill_user(uid)
        _reap()
        # The fork server saw the host hang up without "close" (or never ended): the host died, or is dying, without
        # closing its sandbox, so nobody else will remove the scratch folder.
        host_gone = status is None or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == HOST_GONE)
        if host_gone and scratch_parent >= 0 and select.select([host], [], [], GRACE_SECONDS)[0]:
            os.fchdir(scratch_parent)
            remove_tree(os.path.basename(scratch))


if __name__ == "__main__":
    main(sys.argv)
