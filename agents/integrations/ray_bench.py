"""``reason-gym bench --ray``: the bench's episodes played by Ray actors, on a cluster or on this machine.

Each actor builds its own env, policy and PRM from the run's :class:`~agents.bench.BenchConfig` (specs and paths
travel, never a live model) and plays whole episodes: one remote call per episode, not per step (a call per step is
about 70x slower). The driver hands the next episode to whichever actor is free and appends each record to
``episodes.jsonl`` as it arrives, so a killed driver resumes as a local run does; every episode is seeded from the
episode alone (:func:`agents.bench.episode_seed`), so records are the same as a local run's, in another order.

Where the cluster is:

- ``RAY_ADDRESS`` set (``HOST:PORT`` of a running cluster's GCS, ``ray://HOST:PORT`` for Ray Client, or ``auto``):
  that cluster; an address nothing answers at fails within :data:`CONNECT_TIMEOUT_S` with an error naming it. The
  cluster's Python must import ``agents`` and ``reason_gym`` (install the project on its nodes) and see the data
  (``REASON_GYM_DATA_DIR``).
- unset: a local cluster of this machine's CPUs, started for the run and shut down after it.

Actors ask for :data:`CPUS_PER_WORKER` (a fraction) of a CPU each, so a pool as large as the cluster's CPU count
never reserves every CPU (whole-CPU actors filling a cluster starve any later task: it waits forever, no error).

An actor that dies mid-run (its process killed, out of memory, its node lost) costs only the episode it held: that
episode goes back to the front of the queue for the next free actor, the dead actor is replaced by a new one (built
from the same specs), and the run goes on, every episode still written once (the driver writes a record only when
its call returns). Both are bounded: an episode that has lost :data:`MAX_EPISODE_TRIES` actors stops the run (it
may be what kills them), and so does a pool that has no living actor left once :data:`REPLACEMENTS_PER_WORKER`
replacements per worker are spent, each time with a :class:`WorkersLostError` that says what died; the episodes
already written stay, and a rerun resumes the rest. Each loss is reported as a :class:`WorkerLostWarning`.

Running on a cluster of several machines (setup, how models reach the actors, what scales): ``docs/ray.md``.
"""

from __future__ import annotations

import os
import socket
import warnings
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.bench import BenchConfig

CPUS_PER_WORKER = 0.5
"""CPUs each actor reserves: a fraction, so the pool leaves room for other tasks (see the module docstring)."""
CONNECT_TIMEOUT_S = 5.0
"""How long an address in ``RAY_ADDRESS`` may take to accept a connection."""
MAX_EPISODE_TRIES = 3
"""Actors one episode may lose (each death while it played counts) before the run stops."""
REPLACEMENTS_PER_WORKER = 2
"""Dead actors replaced in a run, per actor of the pool; past that the run goes on with the actors left."""
START_TIMEOUT_S = 600.0
"""How long the run waits for a replacement actor (placed, env and policy built) when no other actor is playing."""

Episode = tuple[str, int, int]


class WorkerLostWarning(UserWarning):
    """A Ray actor died mid-run; its episode is played again by another actor."""


class WorkersLostError(RuntimeError):
    """Ray actors kept dying: an episode lost :data:`MAX_EPISODE_TRIES` actors, or no actor is left alive."""


class EpisodeWorker:
    """Plays whole episodes of one run; made a Ray actor by :func:`ray_episodes`."""

    def __init__(self, config: BenchConfig) -> None:
        from agents.bench import _make_policy, make_bench_env, make_bench_prm

        self.config, self.env, self.failed = config, None, None
        try:
            self.env = make_bench_env(config)
            self.policy = _make_policy(config.policy)
            self.prm = make_bench_prm(config.prm)
        except Exception as error:  # kept for probe: Ray's error for a failed __init__ drops the exception
            self.failed = error

    def probe(self, index: int) -> None:
        """One greedy proposal (see :func:`agents.bench.probe`): raises what the policy raises, or what building
        the env, policy or PRM raised."""
        from agents.bench import probe

        if self.failed is not None:
            raise self.failed
        probe(self.env, self.policy, self.config.split, index)

    def play(self, episode: Episode) -> dict[str, Any]:
        """The record of one (planner, budget, index) episode, as :func:`agents.bench.play_episode` makes it."""
        from agents.bench import play_episode

        if self.failed is not None:  # a replacement actor that could not build what the first one built
            raise self.failed
        return play_episode(self.env, self.policy, self.prm, self.config, *episode)

    def close(self) -> None:
        if self.env is not None:
            self.env.close()


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raises :class:`ConnectionError` naming ``address`` when nothing accepts a TCP connection there in time.

    ``ray.init`` retries an address that does not answer for a long while; this bounds the wait. ``auto`` and
    ``local`` are left to Ray.
    """
    target = address.removeprefix("ray://")
    if target in ("auto", "local"):
        return
    host, separator, port = target.rpartition(":")
    if not separator or not port.isdigit():
        raise ConnectionError(f"RAY_ADDRESS={address!r} is not HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(
            f"cannot reach the Ray cluster at RAY_ADDRESS={address!r} ({error}): start it (`ray start --head`), "
            "fix the address, or unset RAY_ADDRESS to run on a local cluster"
        ) from None


@contextmanager
def ray_cluster(num_cpus: int | None = None) -> Iterator[str]:
    """Connects to ``RAY_ADDRESS`` or starts a local cluster; yields where it runs. A cluster started here (not
    one already connected, nor a remote one) is shut down on exit."""
    import ray

    if ray.is_initialized():
        yield "the Ray cluster already connected"
        return
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if address:
        check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=True)
        except Exception as error:  # Ray raises ConnectionError, RuntimeError or its own errors here
            raise ConnectionError(f"cannot connect to the Ray cluster at RAY_ADDRESS={address!r}: {error}") from None
        where = f"the Ray cluster at {address}"
    else:
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False)
        where = "a local Ray cluster"
    try:
        yield where
    finally:
        ray.shutdown()


@contextmanager
def ray_episodes(config: BenchConfig, todo: Sequence[Episode]) -> Iterator[Iterator[dict[str, Any]]]:
    """Starts the actors (and probes the policy in one of them, to fail before any episode); yields the records
    of ``todo`` as they finish, in any order, each once, replacing actors that die (see the module docstring).

    ``config.ray_workers`` actors (``None``: one per CPU of the cluster, at most one per episode).

    Raises:
        ConnectionError: ``RAY_ADDRESS`` names a cluster that cannot be reached.
        WorkersLostError: Actors kept dying (see :data:`MAX_EPISODE_TRIES`, :data:`REPLACEMENTS_PER_WORKER`).
        Exception: What building the policy or the probe raised in the actor (unwrapped from Ray's error).
    """
    import ray

    if not todo:  # a finished run: no cluster needed
        yield iter(())
        return
    with ray_cluster():
        workers = config.ray_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor_class = ray.remote(num_cpus=CPUS_PER_WORKER)(EpisodeWorker)
        pool = RetryingPool(lambda: actor_class.remote(config))
        try:
            for _ in range(min(workers, len(todo))):
                pool.start()
            try:
                ray_get(pool.living[0].probe.remote(todo[0][2]))
            except _actor_lost_errors() as error:
                raise WorkersLostError(
                    f"the Ray actor that probes the policy died before any episode ({type(error).__name__}: "
                    f"{_first_line(error)}): out of memory building the policy?"
                ) from None
            yield pool.play(todo)
            pool.close()  # a served env's session ends
        finally:
            pool.kill()


class RetryingPool:
    """The actors of one run: hands out work items (``actor.play.remote(item)``: bench episodes, labelling
    batches), replaces the actors that die, replays the items they held, and hands back each result once."""

    def __init__(self, make_actor: Callable[[], Any], noun: str = "episode") -> None:
        self.make_actor = make_actor
        self.noun = noun  # what an item is called in errors and warnings
        self.living: list[Any] = []  # every actor not known dead, started or starting
        self.every: list[Any] = []  # every actor made, to kill at the end
        self.replaced = 0
        self.deaths: list[str] = []

    def start(self) -> Any:
        actor = self.make_actor()
        self.living.append(actor)
        self.every.append(actor)
        return actor

    def play(self, todo: Sequence[Hashable]) -> Iterator[Any]:
        """Keeps every living actor busy with one item at a time; yields each result as it comes back."""
        import ray

        lost_errors = _actor_lost_errors()
        queue, idle = deque(todo), list(self.living)
        running: dict[Any, tuple[Any, Hashable]] = {}  # a play call: its actor and item
        starting: dict[Any, Any] = {}  # the readiness call of a replacement: its actor
        tries: Counter[Hashable] = Counter()
        limit = REPLACEMENTS_PER_WORKER * len(self.living)

        def lost(actor: Any, error: Exception, episode: Hashable | None = None) -> None:
            self.living.remove(actor)
            ray.kill(actor)  # an actor only unreachable for now must not come back holding resources
            self.deaths.append(f"{type(error).__name__}: {_first_line(error)}")
            if episode is not None:
                tries[episode] += 1
                if tries[episode] >= MAX_EPISODE_TRIES:
                    raise WorkersLostError(
                        f"{self.noun} {episode} lost its Ray actor {tries[episode]} times (it may be what kills them, "
                        f"e.g. out of memory); last: {self.deaths[-1]}. The {self.noun}s done so far are written: "
                        "rerun the command to resume the rest"
                    )
                queue.appendleft(episode)
            replacing = self.replaced < limit
            if replacing:
                self.replaced += 1
                replacement = self.start()
                starting[replacement.__ray_ready__.remote()] = replacement
            elif not self.living:
                raise WorkersLostError(
                    f"every Ray actor died ({len(self.deaths)} deaths, {self.replaced} replacements, the most "
                    f"allowed for {limit // REPLACEMENTS_PER_WORKER} workers); last: {self.deaths[-1]}. The "
                    f"{self.noun}s done so far are written: rerun the command to resume the rest"
                )
            warnings.warn(
                f"a Ray actor died ({self.deaths[-1]})"
                + (f"; its {self.noun} {episode} is played again" if episode is not None else "")
                + (f"; started a replacement ({self.replaced} of {limit})" if replacing else ""),
                WorkerLostWarning,
                stacklevel=3,
            )

        def hand_out() -> None:
            while idle and queue:
                actor, episode = idle.pop(), queue.popleft()
                running[actor.play.remote(episode)] = (actor, episode)

        hand_out()
        while running or (queue and starting):
            # A call per episode ends when the episode does; only when nothing plays may a start take too long.
            timeout = None if running else START_TIMEOUT_S
            done, _ = ray.wait([*running, *starting], num_returns=1, timeout=timeout)
            if not done:
                raise WorkersLostError(
                    f"no replacement Ray actor started within {START_TIMEOUT_S:.0f} s and none is left playing "
                    f"(deaths: {self.deaths[-3:]}); does the cluster still have {CPUS_PER_WORKER} of a CPU free? "
                    f"The {self.noun}s done so far are written: rerun the command to resume the rest"
                )
            ref = done[0]
            if ref in starting:
                actor = starting.pop(ref)
                try:
                    ray.get(ref)
                except lost_errors as error:
                    lost(actor, error)
                else:
                    idle.append(actor)
                hand_out()
                continue
            actor, episode = running.pop(ref)
            try:
                record = ray_get(ref)
            except lost_errors as error:
                lost(actor, error, episode)
                hand_out()
                continue
            idle.append(actor)
            hand_out()
            yield record
        for actor in starting.values():  # replacements no longer needed: every episode is played
            self.living.remove(actor)
            ray.kill(actor)

    def close(self) -> None:
        """Closes the env of every living actor (an actor that died since its last episode has nothing to close)."""
        import ray

        for ref in [actor.close.remote() for actor in self.living]:
            with suppress(*_actor_lost_errors()):
                ray.get(ref, timeout=30)

    def kill(self) -> None:
        import ray

        for actor in self.every:
            ray.kill(actor)


def _actor_lost_errors() -> tuple[type[Exception], ...]:
    """The errors of a call whose actor is gone: died or unreachable (:class:`~ray.exceptions.RayActorError`),
    killed for memory, its node or worker process lost. A call's own exception is a ``RayTaskError`` instead."""
    from ray.exceptions import NodeDiedError, OutOfMemoryError, RayActorError, WorkerCrashedError

    return (RayActorError, OutOfMemoryError, NodeDiedError, WorkerCrashedError)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else ""


def ray_get(ref: Any) -> Any:
    """``ray.get``, raising the actor's own exception (a ValueError from a bad spec) rather than Ray's wrapper."""
    import ray
    from ray.exceptions import RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError as error:
        cause = error.cause
        if isinstance(cause, Exception):
            raise cause from None
        raise
