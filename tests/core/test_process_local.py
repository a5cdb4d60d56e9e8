"""reason_gym.process_local: live objects forgotten in a forked child and closed at exit by their owner only."""

import os
import subprocess
import sys
import threading
import time

from reason_gym.process_local import LiveObjects, ProcessDefault


class _Resource:
    def __init__(self, events: list[str] | None = None) -> None:
        self.pid = os.getpid()
        self.events = events if events is not None else []

    def forget(self) -> None:
        self.events.append(f"forget in {os.getpid()}")
        self.pid = os.getpid()

    def close(self) -> None:
        self.events.append(f"close in {os.getpid()}")


def _in_child(work) -> int:
    """Runs ``work`` in a forked child and returns its exit code (0 when ``work`` returns True)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if work() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_child_forgets_every_live_object_and_owns_it():
    live: LiveObjects[_Resource] = LiveObjects(forget=_Resource.forget, close=_Resource.close)
    first, second = _Resource(), _Resource()
    live.add(first)
    live.add(second)
    parent = os.getpid()

    def child() -> bool:
        me = os.getpid()
        forgotten = first.events == second.events == [f"forget in {me}"]
        return forgotten and first.pid == me and live.owned() == [first, second]

    assert _in_child(child) == 0
    assert first.events == second.events == []  # the hook ran in the child only
    assert live.owned() == [first, second] and first.pid == parent


def test_close_owned_closes_only_what_this_process_owns():
    live: LiveObjects[_Resource] = LiveObjects(forget=lambda r: None, close=_Resource.close)
    resource = _Resource()
    live.add(resource)
    live._owners[resource] = os.getpid() + 1  # as if inherited from a parent without the fork hook
    live.close_owned()
    assert resource.events == []
    live.add(resource)
    live.close_owned()
    assert resource.events == [f"close in {os.getpid()}"]


def test_objects_are_held_weakly():
    live: LiveObjects[_Resource] = LiveObjects(forget=_Resource.forget, close=_Resource.close)
    live.add(_Resource())
    assert len(live) == 0


def test_live_objects_are_closed_at_exit_in_their_process_and_not_in_a_forked_child():
    code = (
        "import os\n"
        "from reason_gym.process_local import LiveObjects\n"
        "class R:\n"
        "    def close(self):\n"
        "        print('closed in', 'child' if os.getpid() != parent else 'parent', flush=True)\n"
        "live = LiveObjects(forget=lambda r: None, close=R.close)\n"
        "parent = os.getpid()\n"
        "r = R()\n"
        "live.add(r)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    live._owners[r] = parent\n"  # the child does not own it: it must not close the parent's workers
        "    raise SystemExit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print('exiting', flush=True)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.splitlines() == ["exiting", "closed in parent"]


def test_a_forked_child_closes_at_exit_what_it_started_after_the_fork():
    code = (
        "import os\n"
        "from reason_gym.process_local import LiveObjects\n"
        "class R:\n"
        "    def close(self):\n"
        "        print('closed in', 'child' if os.getpid() != parent else 'parent', flush=True)\n"
        "live = LiveObjects(forget=lambda r: None, close=R.close)\n"
        "parent = os.getpid()\n"
        "r = R()\n"
        "live.add(r)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    raise SystemExit(0)\n"  # forgotten at the fork, so the child owns it and closes its own workers
        "os.waitpid(pid, 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert sorted(result.stdout.splitlines()) == ["closed in child", "closed in parent"]


def test_the_default_is_created_once_whatever_the_threads():
    made: list[object] = []

    def factory() -> object:
        time.sleep(0.05)
        made.append(object())
        return made[-1]

    default = ProcessDefault(factory)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(default.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(made) == 1 and seen == made * 8


def test_a_forked_child_gets_a_new_lock_for_the_default():
    default = ProcessDefault(_Resource)
    value = default.get()
    default._lock.acquire()  # as if another thread of the parent held it at the fork
    try:
        assert _in_child(lambda: default.get() is value) == 0  # would deadlock with the parent's lock
    finally:
        default._lock.release()
