"""``reason-gym bench --ray`` against a local run: bench episodes/s in-process and in 1 and 2 Ray actors, side by side.

Run it from the repository root (``REASON_GYM_DATA_DIR`` names the folder that holds ``game24/24.csv``)::

    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_ray.py --json ray.json
    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_ray.py --quick   # about 30 s

Every run is :func:`agents.bench.run_bench` on a fresh folder (records, summary and plot written, as the command
does), Game24 test problems, the planners and budgets below, driven by the random policy (random legal steps, no
model). Each repeat plays, in this order:

1. the local runs (no Ray running): ``--small`` and ``--problems`` problems with ``random``, ``--slow-problems``
   problems with ``--slow-policy`` (a policy call that sleeps, a stand-in for a model);
2. unless ``--no-cold``: the ``--problems`` run with ``--ray`` as the command runs it (a local cluster started and
   stopped by the run), with 1 and 2 workers;
3. the same Ray runs on a cluster already up (started once for the repeat, or the one at ``RAY_ADDRESS``), for each
   worker count: ``--small``, ``--problems`` and ``--slow-problems``.

Figures are medians over ``--repeats``: wall seconds and episodes/s of each run, each Ray run's speed against the
local one (ratio > 1: Ray faster), and, from the slope between the ``--small`` and ``--problems`` runs (fixed costs
cancel), the seconds per episode of each arm, the Ray overhead per episode (Ray's slope less the local one) and
each arm's fixed cost (the intercept: actors built, summary and plot). Every Ray run's records are checked equal to
the local run's (but for wall time) before any figure is printed.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import reason_gym  # noqa: F401  (registers the environments)
from agents.bench import BenchConfig, run_bench


@dataclass
class RayBenchConfig:
    """bench episodes/s in-process and in 1 and 2 Ray actors, and the Ray overhead per episode."""

    planners: tuple[str, ...] = ("greedy", "bon", "beam", "mcts", "tot")
    """the planners of every run"""
    budgets: tuple[int, ...] = (4, 16)
    """the budgets of every run"""
    small: int = 10
    """problems of the small random-policy run (for the slope)"""
    problems: int = 100
    """problems of the large random-policy run"""
    slow_problems: int = 10
    """problems of the run with the slow policy (0: none)"""
    slow_policy: str = "random:0.01"
    """a policy whose calls take a while (random:SECONDS sleeps that long per call)"""
    workers: tuple[int, ...] = (1, 2)
    """Ray actor counts compared with the local run"""
    cold: bool = True
    """also time the --ray run as the command runs it, starting and stopping a local cluster"""
    repeats: int = 3
    """repeats; figures are medians"""
    seed: int = 0
    """the bench's seed"""
    quick: bool = False
    """greedy and bon at budget 4, 2 and 4 problems, 2 slow ones, 1 worker count (2), 1 repeat"""
    json: str | None = None
    """also write the figures to this file"""

    def __post_init__(self) -> None:
        if self.quick:
            self.planners, self.budgets, self.small, self.problems = ("greedy", "bon"), (4,), 2, 4
            self.slow_problems, self.workers, self.repeats = 2, (2,), 1
        self.planners, self.budgets, self.workers = tuple(self.planners), tuple(self.budgets), tuple(self.workers)
        if not 1 <= self.small < self.problems:
            raise ValueError(f"need 1 <= small < problems for the slope, got {self.small} and {self.problems}")
        if self.slow_problems < 0 or self.repeats < 1 or not self.workers or min(self.workers) < 1:
            raise ValueError("slow_problems must be >= 0, repeats >= 1 and workers a list of counts >= 1")


def timed_run(config: RayBenchConfig, folder: Path, policy: str, problems: int, workers: int | None) -> dict:
    """One bench run (``workers`` None: local) on a fresh folder; returns its wall seconds, episodes and records."""
    bench = BenchConfig(
        planners=config.planners,
        budgets=config.budgets,
        limit=problems,
        policy=policy,
        seed=config.seed,
        out=folder,
        progress=False,
        ray=workers is not None,
        ray_workers=workers,
    )
    started = time.perf_counter()
    run_bench(bench)
    wall = time.perf_counter() - started
    lines = (folder / "episodes.jsonl").read_text().splitlines()
    records = sorted(json.dumps({k: v for k, v in json.loads(line).items() if k != "wall_s"}) for line in lines)
    return {"wall_s": wall, "episodes": len(lines), "records": records}


def one_repeat(config: RayBenchConfig, scratch: Path) -> dict[str, dict[str, float]]:
    """Every run of one repeat (see the module docstring); returns wall seconds by workload and arm."""
    from agents.integrations.ray_bench import ray_cluster

    workloads = {"small": ("random", config.small), "large": ("random", config.problems)}
    if config.slow_problems:
        workloads["slow"] = (config.slow_policy, config.slow_problems)
    runs: dict[tuple[str, str], dict] = {}
    counter = iter(range(10**6))

    def run(workload: str, arm: str, workers: int | None) -> None:
        policy, problems = workloads[workload.removeprefix("cold ")]
        runs[workload, arm] = timed_run(config, scratch / str(next(counter)), policy, problems, workers)

    timed_run(config, scratch / "warm-up", "random", 1, None)  # imports, data and plotting loaded: not timed
    for workload in workloads:
        run(workload, "local", None)
    if config.cold:
        workloads["cold large"] = workloads["large"]
        for workers in config.workers:
            run("cold large", f"ray {workers}", workers)
    with ray_cluster():  # the runs below find it connected, so they neither start nor stop it
        timed_run(config, scratch / "ray-warm-up", "random", 1, max(config.workers))  # not timed
        for workers in config.workers:
            for workload in ("small", "large", "slow"):
                if workload in workloads:
                    run(workload, f"ray {workers}", workers)
    for (workload, arm), result in runs.items():
        local = runs[workload.removeprefix("cold "), "local"]
        if result["records"] != local["records"]:
            raise RuntimeError(f"the {arm} run of the {workload} workload gave other records than the local run")
    return {f"{load}/{arm}": {"wall_s": r["wall_s"], "episodes": r["episodes"]} for (load, arm), r in runs.items()}


def significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits: a ratio of 0.045 keeps its precision, as one of 4.5 does."""
    return float(f"{value:.{digits}g}")


def summarize(config: RayBenchConfig, repeats: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Medians over the repeats: each run's wall time and episodes/s, ratios to local, slopes and intercepts."""
    runs: dict[str, dict[str, float]] = {}
    for key in repeats[0]:
        wall = statistics.median(r[key]["wall_s"] for r in repeats)
        episodes = repeats[0][key]["episodes"]
        runs[key] = {"episodes": episodes, "wall_s": round(wall, 4), "episodes_per_s": significant(episodes / wall)}
    for key, row in runs.items():
        workload, arm = key.split("/")
        local = runs[f"{workload.removeprefix('cold ')}/local"]
        row["speed_vs_local"] = significant(local["wall_s"] / row["wall_s"])  # > 1: faster than the local run
    slopes: dict[str, dict[str, float]] = {}
    arms = ["local", *(f"ray {w}" for w in config.workers)]
    for arm in arms:
        per_repeat = []
        for r in repeats:
            small, large = r[f"small/{arm}"], r[f"large/{arm}"]
            slope = (large["wall_s"] - small["wall_s"]) / (large["episodes"] - small["episodes"])
            per_repeat.append((slope, small["wall_s"] - slope * small["episodes"]))
        slopes[arm] = {
            "ms_per_episode": round(1000 * statistics.median(s for s, _ in per_repeat), 3),
            "fixed_s": round(statistics.median(f for _, f in per_repeat), 3),
        }
    for arm in arms[1:]:
        slopes[arm]["overhead_ms_per_episode"] = round(
            slopes[arm]["ms_per_episode"] - slopes["local"]["ms_per_episode"], 3
        )
    return {"runs": runs, "per_episode": slopes}


def print_table(config: RayBenchConfig, result: dict[str, Any]) -> None:
    runs, arms = result["runs"], ["local", *(f"ray {w}" for w in config.workers)]
    where = f"RAY_ADDRESS={os.environ['RAY_ADDRESS']}" if os.environ.get("RAY_ADDRESS") else "a local cluster"
    print(
        f"bench episodes/s, Game24 test, planners {','.join(config.planners)}, budgets "
        f"{','.join(map(str, config.budgets))}; Ray on {where}; {os.cpu_count()} CPUs; median of {config.repeats}"
    )
    workloads = dict.fromkeys(key.split("/")[0] for key in runs)
    print("wall s, episodes/s and (speed against the local run); Ray runs on a cluster already up but the last row")
    labels = {
        "small": f"random, {config.small} problems",
        "large": f"random, {config.problems} problems",
        "slow": f"{config.slow_policy}, {config.slow_problems} problems",
        "cold large": f"random, {config.problems} problems, cluster started",
    }
    names = {"local": "local", **{f"ray {w}": f"--ray, {w} worker{'s' * (w > 1)}" for w in config.workers}}
    header = f"{'workload':<40} {'episodes':>8}" + "".join(f" {names[arm]:>26}" for arm in arms)
    print(header + "\n" + "-" * len(header))
    for workload in ("small", "large", "slow", "cold large"):
        if workload not in workloads:
            continue
        episodes = runs[f"{workload.removeprefix('cold ')}/local"]["episodes"]
        cells = []
        for arm in arms:
            row = runs.get(f"{workload}/{arm}")
            if row is None:  # the cold workload has no local run of its own: the local run is the same
                cells.append(f"{'(as above)':>26}")
                continue
            ratio = "" if arm == "local" else f" ({row['speed_vs_local']:.2f}x)"
            cells.append(f"{row['wall_s']:>7.2f} s {row['episodes_per_s']:>7.1f}/s{ratio:>9}")
        print(f"{labels[workload]:<40} {episodes:>8}" + "".join(f" {cell:>26}" for cell in cells))
    slopes = result["per_episode"]
    print(f"\nper episode (slope between {config.small} and {config.problems} problems), and fixed cost per run:")
    for arm in arms:
        row = slopes[arm]
        extra = "" if arm == "local" else f" (Ray overhead {row['overhead_ms_per_episode']:+.3f} ms)"
        print(f"  {arm:<8} {row['ms_per_episode']:>8.3f} ms/episode{extra}, fixed {row['fixed_s']:.3f} s")


def main(argv: Sequence[str] | None = None) -> int:
    from agents.cli import parse

    args = parse(RayBenchConfig, argv, "bench_ray.py", description=__doc__.split("\n\n")[0])
    try:
        import ray
    except ImportError as error:
        raise ValueError(f"bench_ray.py needs Ray ({error}): pip install -e .[ray]") from None
    repeats = []
    with tempfile.TemporaryDirectory(prefix="bench_ray_") as scratch:
        for number in range(args.repeats):
            repeats.append(one_repeat(args, Path(scratch) / str(number)))
            print(f"repeat {number + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    result = summarize(args, repeats)
    print_table(args, result)
    if args.json:
        meta = {
            "python": platform.python_version(),
            "ray": ray.__version__,
            "cpus": os.cpu_count(),
            "ray_address": os.environ.get("RAY_ADDRESS") or None,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            **asdict(args),
        }
        Path(args.json).write_text(json.dumps({"meta": meta, **result, "repeats": repeats}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from agents.cli import run_script

    raise SystemExit(run_script(main, "bench_ray.py"))
