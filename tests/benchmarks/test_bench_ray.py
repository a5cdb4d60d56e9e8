"""The Ray bench benchmark: its slope and ratio arithmetic on made-up timings, and a ``--quick`` run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_slopes_fixed_costs_and_ratios_from_timings(load_benchmark) -> None:
    bench = load_benchmark("bench_ray")
    config = bench.RayBenchConfig(small=10, problems=50, slow_problems=0, workers=(2,), cold=False, repeats=3)

    def repeat(local_large: float) -> dict[str, dict[str, float]]:
        # local: 0.5 s + 20 ms per episode; Ray: 2 s + 5 ms per episode (100 and 500 episodes)
        return {
            "small/local": {"wall_s": 0.5 + 100 * 0.02, "episodes": 100},
            "large/local": {"wall_s": local_large, "episodes": 500},
            "small/ray 2": {"wall_s": 2.0 + 100 * 0.005, "episodes": 100},
            "large/ray 2": {"wall_s": 2.0 + 500 * 0.005, "episodes": 500},
        }

    result = bench.summarize(config, [repeat(0.5 + 500 * 0.02), repeat(99.0), repeat(0.5 + 500 * 0.02)])
    runs, slopes = result["runs"], result["per_episode"]
    assert runs["large/local"]["wall_s"] == pytest.approx(10.5)  # the median: the outlier repeat is ignored
    assert runs["large/local"]["episodes_per_s"] == pytest.approx(500 / 10.5, abs=0.01)
    assert runs["large/ray 2"]["speed_vs_local"] == pytest.approx(10.5 / 4.5, abs=1e-3)
    assert runs["small/local"]["speed_vs_local"] == 1
    assert slopes["local"] == {"ms_per_episode": pytest.approx(20.0), "fixed_s": pytest.approx(0.5)}
    assert slopes["ray 2"]["ms_per_episode"] == pytest.approx(5.0)
    assert slopes["ray 2"]["fixed_s"] == pytest.approx(2.0)
    assert slopes["ray 2"]["overhead_ms_per_episode"] == pytest.approx(-15.0)


@pytest.mark.parametrize("flags", [["--small", "5", "--problems", "5"], ["--workers", "0"], ["--repeats", "0"]])
def test_bad_settings_are_refused(load_benchmark, flags) -> None:
    with pytest.raises(ValueError):
        load_benchmark("bench_ray").main(flags)


@pytest.mark.slow
def test_quick_run_times_every_arm_and_checks_the_records(tmp_path: Path, run_script, monkeypatch) -> None:
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local cluster, whatever the shell has
    out = tmp_path / "ray.json"
    done = run_script("benchmarks/bench_ray.py", "--quick", "--json", str(out), timeout=300)
    report = json.loads(out.read_text())
    runs, slopes = report["runs"], report["per_episode"]
    # --quick: planners greedy and bon at budget 4: 2 episodes per problem; 2, 4 and 2 (slow) problems
    expected = {"small": 4, "large": 8, "slow": 4, "cold large": 8}
    assert set(runs) == {f"{w}/local" for w in ("small", "large", "slow")} | {f"{w}/ray 2" for w in expected}
    for key, row in runs.items():
        assert row["episodes"] == expected[key.split("/")[0]], key
        assert row["wall_s"] > 0 and row["episodes_per_s"] == pytest.approx(row["episodes"] / row["wall_s"], 0.01)
        local = runs[key.split("/")[0].removeprefix("cold ") + "/local"]
        assert row["speed_vs_local"] == pytest.approx(local["wall_s"] / row["wall_s"], 0.01)
    assert runs["cold large/ray 2"]["wall_s"] > runs["large/ray 2"]["wall_s"]  # starting a cluster takes seconds
    overhead = slopes["ray 2"]["ms_per_episode"] - slopes["local"]["ms_per_episode"]
    assert slopes["ray 2"]["overhead_ms_per_episode"] == pytest.approx(overhead, abs=0.002)
    lines = done.stdout.splitlines()
    assert any(line.startswith("random, 4 problems, cluster started ") for line in lines), done.stdout
    assert any(line.strip().startswith("ray 2 ") and "Ray overhead" in line for line in lines), done.stdout
    assert report["meta"]["ray"] and report["meta"]["quick"]
