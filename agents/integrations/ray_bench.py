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
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.bench import BenchConfig

CPUS_PER_WORKER = 0.5
"""CPUs each actor reserves: a fraction, so the pool leaves room for other tasks (see the module docstring)."""
CONNECT_TIMEOUT_S = 5.0
"""How long an address in ``RAY_ADDRESS`` may take to accept a connection."""

Episode = tuple[str, int, int]


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
    of ``todo`` as they finish, in any order.

    ``config.ray_workers`` actors (``None``: one per CPU of the cluster, at most one per episode).

    Raises:
        ConnectionError: ``RAY_ADDRESS`` names a cluster that cannot be reached.
        Exception: What building the policy or the probe raised in the actor (unwrapped from Ray's error).
    """
    import ray

    if not todo:  # a finished run: no cluster needed
        yield iter(())
        return
    with ray_cluster():
        workers = config.ray_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor = ray.remote(num_cpus=CPUS_PER_WORKER)(EpisodeWorker)
        pool = [actor.remote(config) for _ in range(min(workers, len(todo)))]
        try:
            _get(pool[0].probe.remote(todo[0][2]))
            yield _play(pool, todo)
            ray.get([worker.close.remote() for worker in pool], timeout=30)  # a served env's session ends
        finally:
            for worker in pool:
                ray.kill(worker)


def _play(pool: list[Any], todo: Sequence[Episode]) -> Iterator[dict[str, Any]]:
    """Keeps every actor busy with one episode at a time; yields each record as it comes back."""
    import ray

    queue = iter(todo)
    running: dict[Any, Any] = {}
    for worker, episode in zip(pool, queue, strict=False):
        running[worker.play.remote(episode)] = worker
    while running:
        [done], _ = ray.wait(list(running), num_returns=1)
        worker = running.pop(done)
        record = _get(done)
        episode = next(queue, None)
        if episode is not None:
            running[worker.play.remote(episode)] = worker
        yield record


def _get(ref: Any) -> Any:
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
