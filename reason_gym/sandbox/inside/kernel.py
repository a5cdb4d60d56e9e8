"""The kernel's side of the sandbox's isolation, from inside: prctl, the seccomp filter, rlimits, privileges, fds."""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import struct
import typing

EXIT_CODE = 70
"""Exit status of a child whose harness itself failed (never the program's own)."""
HOST_GONE = 75
"""Exit status of a fork server whose host hung up without saying "close": the host died (or is dying)."""

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 1, 4, 38, 36
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2


def prctl(option: int, value: int, pointer: object = None) -> None:
    """Calls prctl(2); raises ``OSError`` when the kernel refuses."""
    if _libc.prctl(option, ctypes.c_ulong(value), pointer, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


# ---------------------------------------------------------------------------------------------------- seccomp

_SECCOMP_ALLOW, _SECCOMP_KILL = 0x7FFF0000, 0x80000000
_EPERM_RET, _ENOSYS_RET = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
_AUDIT_ARCH_X86_64 = 0xC000003E
_X86_64_DENIED = {
    # reading or changing other processes
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "pidfd_getfd": 438,
    "process_madvise": 440,
    # kernel keyrings, SysV IPC and POSIX message queues outlive a process: channels between runs
    "add_key": 248, "request_key": 249, "keyctl": 250, "shmget": 29, "semget": 64, "msgget": 68, "mq_open": 240,
    # sockets of every family: no network, no host daemons (socketpair stays allowed)
    "socket": 41,
    # namespaces, mounts and privileged interfaces (kernel attack surface)
    "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428, "mount_setattr": 442,
    "open_by_handle_at": 304, "name_to_handle_at": 303, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "init_module": 175,
    "finit_module": 313, "delete_module": 176, "kexec_load": 246, "kexec_file_load": 320, "reboot": 169,
    "swapon": 167, "swapoff": 168, "acct": 163, "quotactl": 179, "quotactl_fd": 443, "syslog": 103, "iopl": 172,
    "ioperm": 173, "modify_ldt": 154, "lookup_dcookie": 212, "vhangup": 153, "uselib": 134, "personality": 135,
    "fanotify_init": 300, "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159,
    "sethostname": 170, "setdomainname": 171,
}  # fmt: skip
_X86_64_CLONE, _X86_64_UNSHARE, _X86_64_CLONE3 = 56, 272, 435
_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
_CLONE_NEWTIME = 0x80  # unshare only: in clone() these bits hold the exit signal


def _bpf(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k


def seccomp_filter_x86_64() -> bytes:
    """A seccomp BPF program (x86-64) that makes the syscalls above fail with ``EPERM``.

    It also refuses new namespaces through ``clone``/``unshare`` and answers ``clone3`` with ``ENOSYS`` (its flags
    sit in memory a filter cannot read; glibc then falls back to ``clone``). Other architectures' and the x32 ABI's
    syscalls kill the process, so the table cannot be bypassed with another calling convention.
    """
    ld_w_abs, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    denied = sorted(set(_X86_64_DENIED.values()))
    body: list[bytes] = []
    # Layout: [arch checks][nr load][x32 check][one jeq per denied nr][clone/unshare/clone3][allow][flag checks]...
    n_denied = len(denied)
    # instruction indices, relative to the start of the program
    head = [
        _bpf(ld_w_abs, 4),  # 0: A = arch
        _bpf(jeq, _AUDIT_ARCH_X86_64, 1, 0),  # 1
        _bpf(ret, _SECCOMP_KILL),  # 2
        _bpf(ld_w_abs, 0),  # 3: A = nr
        _bpf(jge, 0x40000000, 0, 1),  # 4: x32 ABI
        _bpf(ret, _SECCOMP_KILL),  # 5
    ]
    first_denied = len(head)
    after_denied = first_denied + n_denied
    # after the denied list: clone, unshare, clone3 checks, then allow, then the shared returns
    idx_clone, idx_unshare, idx_clone3, idx_allow = after_denied, after_denied + 1, after_denied + 2, after_denied + 3
    idx_clone_flags = idx_allow + 1  # A = flags; jset ns -> eperm; allow
    idx_unshare_flags = idx_clone_flags + 3
    idx_eperm = idx_unshare_flags + 3
    idx_enosys = idx_eperm + 1
    for i, nr in enumerate(denied):
        here = first_denied + i
        body.append(_bpf(jeq, nr, idx_eperm - here - 1, 0))
    body.append(_bpf(jeq, _X86_64_CLONE, idx_clone_flags - idx_clone - 1, 0))
    body.append(_bpf(jeq, _X86_64_UNSHARE, idx_unshare_flags - idx_unshare - 1, 0))
    body.append(_bpf(jeq, _X86_64_CLONE3, idx_enosys - idx_clone3 - 1, 0))
    body.append(_bpf(ret, _SECCOMP_ALLOW))  # idx_allow
    body.append(_bpf(ld_w_abs, 16))  # idx_clone_flags: A = low 32 bits of args[0]
    body.append(_bpf(jset, _NAMESPACE_FLAGS, idx_eperm - (idx_clone_flags + 1) - 1, 0))
    body.append(_bpf(ret, _SECCOMP_ALLOW))
    body.append(_bpf(ld_w_abs, 16))  # idx_unshare_flags
    body.append(_bpf(jset, _NAMESPACE_FLAGS | _CLONE_NEWTIME, idx_eperm - (idx_unshare_flags + 1) - 1, 0))
    body.append(_bpf(ret, _SECCOMP_ALLOW))
    body.append(_bpf(ret, _EPERM_RET))  # idx_eperm
    body.append(_bpf(ret, _ENOSYS_RET))  # idx_enosys
    return b"".join(head + body)


def install_seccomp() -> bool:
    """Installs the filter in this process (inherited by every child); False where the architecture has no table."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    program = seccomp_filter_x86_64()

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    fprog = SockFprog(len(program) // 8, program)
    prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog))
    return True


# ---------------------------------------------------------------------------------------------------- limits


def apply_limits(limits: dict[str, int]) -> None:
    """setrlimit on this process; the kernel enforces these on it and everything it starts."""
    table = {
        "cpu": resource.RLIMIT_CPU,
        "memory": resource.RLIMIT_AS,
        "file_size": resource.RLIMIT_FSIZE,
        "open_files": resource.RLIMIT_NOFILE,
        "processes": resource.RLIMIT_NPROC,
    }
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, value in limits.items():
        soft = hard = int(value)
        if name == "cpu":
            hard = soft + 1  # SIGXCPU at the soft limit, SIGKILL one second later
        resource.setrlimit(table[name], (soft, hard))


def redirect(stdin: int, stdout: int, stderr: int) -> None:
    """Makes descriptors 0, 1 and 2 copies of the given ones."""
    for target, source in ((0, stdin), (1, stdout), (2, stderr)):
        if source != target:
            os.dup2(source, target)


PRESERVED_FDS: set[int] = set()
"""Descriptors every process of the worker keeps: the standard library's folders, where the programs' user could
not reach them by path (see :func:`open_unreachable_paths`)."""


def keep_only(fds: typing.Iterable[int]) -> None:
    """Closes every file descriptor above 2 except ``fds`` (the zygote's socket and other jobs' pipes)."""
    low = 3
    for fd in sorted(set(fds) | PRESERVED_FDS):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def drop_to(uid: int) -> None:
    """Becomes ``uid`` (and the same gid) with no groups and no capabilities (inheritable ones included)."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # all uids non-zero: the kernel clears the permitted and effective sets
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable (two words each): all empty
    if _libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def quiet() -> None:
    """Points stdin, stdout and stderr at ``/dev/null``."""
    devnull = os.open(os.devnull, os.O_RDWR)
    redirect(devnull, devnull, devnull)
    os.close(devnull)


# ---------------------------------------------------------------------------------------------------- namespaces

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = (
    0x20000,
    0x4000000,
    0x8000000,
    0x20000000,
    0x40000000,
)
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_BIND, _MS_REC, _MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18


def unshare(flags: int) -> bool:
    """Calls unshare(2); False when the kernel refuses (no privilege, or a container's seccomp profile)."""
    return _libc.unshare(ctypes.c_int(flags)) == 0


def _mount(source: str, target: str, fstype: str, flags: int, data: str = "") -> None:
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags), data.encode()) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {fstype or source} on {target}: {os.strerror(error)}")


def private_mounts(size_bytes: int) -> tuple[str, ...]:
    """In a new mount and PID namespace (as root there): a private ``/proc``, and one size-limited tmpfs that is
    ``/tmp``, ``/var/tmp`` and ``/dev/shm`` at once (so its size caps what runs can write in all three); returns
    the folders it covers. Nothing propagates to the host's mounts."""
    _mount("none", "/", "", _MS_REC | _MS_PRIVATE)
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    _mount("tmpfs", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={size_bytes},mode=1777")
    covered = ["/tmp"]
    for folder in ("/var/tmp", "/dev/shm", "/run/lock"):
        if os.path.isdir(folder) and not os.path.islink(folder):
            _mount("/tmp", folder, "", _MS_BIND)
            covered.append(folder)
    return tuple(covered)


def _traversable_by_others(path: str) -> bool:
    """Whether a user with no rights of its own can reach ``path`` (every folder on the way has ``o+x``)."""
    path = os.path.abspath(path)
    while True:
        try:
            if not os.stat(path).st_mode & 0o001:
                return False
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def open_unreachable_paths(paths: list[str], hidden: tuple[str, ...] = ()) -> list[str]:
    """``paths`` with each folder other users cannot reach (an interpreter under a 0700 home), or that a mount
    over one of ``hidden`` will cover, replaced by ``/proc/self/fd/N`` of a descriptor opened now, while we still
    may: lookups below it need only its own modes, so a process that drops to another user still imports the
    standard library from it."""
    result = []
    for path in paths:
        covered = any(path == top or path.startswith(top + "/") for top in hidden)
        if path and os.path.isdir(path) and (covered or not _traversable_by_others(path)):
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            os.set_inheritable(fd, True)
            PRESERVED_FDS.add(fd)
            path = f"/proc/self/fd/{fd}"
        result.append(path)
    return result
