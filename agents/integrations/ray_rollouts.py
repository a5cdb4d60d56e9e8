"""``reason-gym train grpo --rollout-workers N``: GRPO's rollout groups played by Ray actors, the update here.

Each actor (:class:`RolloutWorker`) loads the policy itself, by path (``tiny``, a local folder or a hub id: the
config travels, never a live model), builds a vector env of ``group_size`` copies of the task, and plays one whole
group per remote call (every step of its G episodes inside the actor; a remote call per env step is about 100x
slower). It returns the same :class:`~agents.training.rollouts.Episode` lists as
:func:`~agents.training.rollouts.collect_groups`, so the advantages and the update are the local ones, unchanged.

Weights: after every training step (and before the first rollout, and whenever the learner's parameters changed
since the last copy, e.g. after a resume) :meth:`RayRollouts.sync` puts the learner's state dict into Ray's object
store once (``ray.put``) and every actor loads that one object; unchanged weights are not sent again.

Seeds: each group gets its own seed, drawn from the trainer's generator (checkpointed, so a resumed run draws the
same ones), and is played on its own: torch's sampling generator and the env copies are seeded with it, and its G
episodes are one generation batch. A group's episodes therefore depend only on its problem, its seed and the
weights, not on which actor plays it nor on what else that actor plays: Ray rollouts equal
:class:`LocalRollouts` (the same per-group play, in this process) for the same seeds and weights, with any number of
workers. They are not the samples of the default local path (``--rollout-workers 0``), which draws one random
stream across the whole batch in one vector env: the same distribution, other draws.

Where the cluster is: ``RAY_ADDRESS`` when set (its nodes must import ``agents`` and ``reason_gym``), else a local
cluster of this machine's CPUs, started for the run and shut down by :meth:`RayRollouts.close` (see
:func:`agents.integrations.ray_bench.ray_cluster`). Actors reserve a fraction of a CPU each
(:data:`~agents.integrations.ray_bench.CPUS_PER_WORKER`) and run on CPU, one torch thread each for a small model.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from agents.integrations.ray_bench import CPUS_PER_WORKER, ray_cluster, ray_get
from agents.training.rollouts import Episode, collect_groups, make_hf_policy, make_vector_env

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import gymnasium as gym

    from agents.policies.base import Policy
    from agents.training.grpo_config import GRPOConfig

SEED_BOUND = 2**62
"""Group seeds are drawn in ``[0, SEED_BOUND)`` (env copy ``i`` of a group is seeded with ``seed + i``)."""


def group_seeds(rng: np.random.Generator, count: int) -> list[int]:
    """One seed per group, drawn from the trainer's generator."""
    return [int(seed) for seed in rng.integers(SEED_BOUND, size=count)]


def play_group(
    envs: gym.vector.VectorEnv,
    policy: Policy,
    encode: Callable[[Sequence[str]], list[list[int]]],
    options: Mapping[str, Any],
    seed: int,
    *,
    temperature: float,
    max_turns: int,
) -> tuple[list[Episode], float]:
    """One group played on its own: the G copies of ``envs`` (seeded ``seed + i``) reset to the problem of
    ``options``, actions sampled with torch's generator seeded with ``seed`` (its previous state is restored after).

    Returns the G episodes and the seconds spent generating.
    """
    timings = {"generate_s": 0.0}
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        envs.reset(seed=seed)  # every copy's generator, for tasks that draw anything after the problem is chosen
        [group] = collect_groups(
            envs, policy, encode, [options], temperature=temperature, max_turns=max_turns, timings=timings
        )
    return group, timings["generate_s"]


class RolloutWorker:
    """Holds a policy (loaded by path) and a group's vector env; made a Ray actor by :class:`RayRollouts`."""

    def __init__(self, config: GRPOConfig) -> None:
        self.failed: Exception | None = None
        self.envs: Any = None
        self.groups_played = 0
        try:
            self._build(config)
        except Exception as error:  # kept for ready(): Ray's error for a failed __init__ drops the exception
            self.failed = error

    def _build(self, config: GRPOConfig) -> None:
        import gymnasium as gym

        from agents.policies import model_path
        from agents.policies.hf import load_model_and_tokenizer

        self.config = config
        model, self.tokenizer = load_model_and_tokenizer(model_path(config.model), device="cpu")
        self.model = model.float().eval()
        self.envs = make_vector_env(config, config.group_size)
        with gym.make(config.env_id, **config.env_kwargs) as probe:
            task = getattr(probe.unwrapped, "task", None)  # the chat prompt's system prompt, as in the trainer
        self.policy = make_hf_policy(config, self.model, self.tokenizer, task)  # the trainer's, on this actor's CPU
        self.encode = self.policy.encode  # keeps the ids for the propose() call that follows

    def ready(self) -> int:
        """Raises what building the worker raised; else its process id."""
        import os

        if self.failed is not None:
            raise self.failed
        return os.getpid()

    def load_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Copies the learner's weights into this worker's model (in place: the fast decoder sees the change)."""
        self.model.load_state_dict(state_dict)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The worker's current weights (to check that they are the learner's)."""
        return {name: tensor.detach().clone() for name, tensor in self.model.state_dict().items()}

    def play(self, index: int, options: dict[str, Any], seed: int) -> tuple[int, list[Episode], float]:
        """Group ``index`` of a batch: ``(index, its G episodes, seconds generating)`` (see :func:`play_group`)."""
        group, generate_s = play_group(
            self.envs,
            self.policy,
            self.encode,
            options,
            seed,
            temperature=self.config.temperature,
            max_turns=self.config.max_turns,
        )
        self.groups_played += 1
        return index, group, generate_s

    def played(self) -> int:
        """Groups this worker played so far."""
        return self.groups_played

    def close(self) -> None:
        if self.envs is not None:
            self.envs.close()


class LocalRollouts:
    """What the Ray workers compute, in this process, with the learner's own policy: each group played on its own
    with its seed (:func:`play_group`). The reference the Ray rollouts are tested against; it has the same
    interface as :class:`RayRollouts`."""

    def __init__(self, config: GRPOConfig, policy: Policy, encode: Callable[[Sequence[str]], list[list[int]]]) -> None:
        self.config, self.policy, self.encode = config, policy, encode
        self.envs = make_vector_env(config, config.group_size)

    def sync(self, model: torch.nn.Module) -> bool:
        """Nothing to copy: the policy samples from the learner's model itself. Returns False."""
        return False

    def weights_changed(self) -> None:
        """Nothing to do: the learner's policy is told itself (:meth:`~agents.policies.hf.HFPolicy.weights_changed`)."""

    def collect(
        self,
        model: torch.nn.Module,
        group_options: Sequence[Mapping[str, Any]],
        rng: np.random.Generator,
        *,
        timings: dict[str, float] | None = None,
    ) -> list[list[Episode]]:
        """The groups of ``group_options``, one seed each from ``rng`` (see :meth:`RayRollouts.collect`)."""
        groups = []
        for options, seed in zip(group_options, group_seeds(rng, len(group_options)), strict=True):
            group, generate_s = play_group(
                self.envs,
                self.policy,
                self.encode,
                options,
                seed,
                temperature=self.config.temperature,
                max_turns=self.config.max_turns,
            )
            groups.append(group)
            if timings is not None:
                timings["generate_s"] = timings.get("generate_s", 0.0) + generate_s
        return groups

    def close(self) -> None:
        self.envs.close()


def weights_key(model: torch.nn.Module) -> tuple[tuple[int, int], ...]:
    """Changes whenever a parameter or buffer is replaced or modified in place (an optimizer step, a load), except by
    updates that leave the version counters as they were (torch's fused AdamW on CPU, writes through ``p.data``):
    for those, :meth:`RayRollouts.weights_changed`."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


class RayRollouts:
    """``config.rollout_workers`` Ray actors playing the trainer's rollout groups; :meth:`close` ends them.

    Raises:
        ConnectionError: ``RAY_ADDRESS`` names a cluster that cannot be reached.
        Exception: What building a worker raised (a bad model path, say), unwrapped from Ray's error.
    """

    def __init__(self, config: GRPOConfig) -> None:
        import ray

        self.config = config
        self._stack = ExitStack()
        self.workers: list[Any] = []
        self.where = self._stack.enter_context(ray_cluster())
        self._synced: tuple[tuple[int, int], ...] | None = None
        try:
            actor = ray.remote(num_cpus=CPUS_PER_WORKER)(RolloutWorker)
            self.workers = [actor.remote(config) for _ in range(config.rollout_workers)]
            for worker in self.workers:
                ray_get(worker.ready.remote())
        except BaseException:
            self.close()
            raise

    def weights_changed(self) -> None:
        """Says the learner's weights changed in place: the next :meth:`sync` sends them whatever
        :func:`weights_key` says (it misses updates that move no version counter, such as torch's fused AdamW on
        CPU). The trainer calls it after every optimizer step."""
        self._synced = None

    def sync(self, model: torch.nn.Module) -> bool:
        """Sends the learner's weights to every worker if they changed since the last copy (or since
        :meth:`weights_changed`); True if it sent them.

        The state dict is put in the object store once and every worker loads that one object.
        """
        import ray

        key = weights_key(model)
        if key == self._synced:
            return False
        weights = ray.put({name: tensor.detach().cpu() for name, tensor in model.state_dict().items()})
        for ref in [worker.load_weights.remote(weights) for worker in self.workers]:
            ray_get(ref)
        self._synced = key
        return True

    def collect(
        self,
        model: torch.nn.Module,
        group_options: Sequence[Mapping[str, Any]],
        rng: np.random.Generator,
        *,
        timings: dict[str, float] | None = None,
    ) -> list[list[Episode]]:
        """The groups of ``group_options`` (one seed each, drawn from ``rng``), in that order, played by the workers
        with ``model``'s weights (synced first if they changed).

        Each worker plays one group at a time and gets the next as soon as it returns one. ``timings["generate_s"]``
        is increased by the workers' seconds in ``policy.propose``, summed over workers.
        """
        import ray

        self.sync(model)
        seeds = group_seeds(rng, len(group_options))
        todo = iter(enumerate(zip(group_options, seeds, strict=True)))
        groups: list[list[Episode] | None] = [None] * len(seeds)
        running: dict[Any, Any] = {}

        def give(worker: Any) -> None:
            job = next(todo, None)
            if job is not None:
                index, (options, seed) = job
                running[worker.play.remote(index, dict(options), seed)] = worker

        for worker in self.workers:
            give(worker)
        while running:
            [done], _ = ray.wait(list(running), num_returns=1)
            worker = running.pop(done)
            index, group, generate_s = ray_get(done)
            groups[index] = group
            if timings is not None:
                timings["generate_s"] = timings.get("generate_s", 0.0) + generate_s
            give(worker)
        return [group for group in groups if group is not None]

    def worker_weights(self) -> list[dict[str, torch.Tensor]]:
        """Every worker's current weights."""
        return [ray_get(worker.state_dict.remote()) for worker in self.workers]

    def groups_played(self) -> list[int]:
        """Groups each worker played so far."""
        return [ray_get(worker.played.remote()) for worker in self.workers]

    def close(self) -> None:
        """Ends the workers, and the cluster if it was started for them."""
        import ray
        from ray.exceptions import RayError

        try:
            if self.workers:
                ray.get([worker.close.remote() for worker in self.workers], timeout=30)
        except (RayError, TimeoutError):  # a worker that died or hangs: it is killed below anyway
            pass
        finally:
            for worker in self.workers:
                ray.kill(worker)
            self.workers = []
            self._stack.close()
