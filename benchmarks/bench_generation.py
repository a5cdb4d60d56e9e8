"""Generation throughput of the policy backends on the embedded tiny model: transformers, then vLLM.

    python benchmarks/bench_generation.py                         # both backends where vLLM imports, else HF only
    python benchmarks/bench_generation.py --states 64 --n 8 --json gen.json
    .venv-vllm/bin/python benchmarks/bench_generation.py          # the vLLM venv of scripts/test_vllm_cpu.sh

Both backends get the same prompts: the first ``--states`` Game24 and Arithmetic TRAIN-split states (questions,
and states one solver step in), each asked for ``--n`` samples at temperature 1 with the step limit of
``--max-new-tokens``. The figure is generated tokens (stop token included) per second of wall time for one
``propose`` call after a warm-up call; one run, so on a shared machine treat it as a rough figure. vLLM's engine
start (20-50 s on CPU with ``enforce_eager``) is reported apart. The vLLM part is skipped, with a message, where
``import vllm`` fails.

Then the hand-written decode loop with and without dropping stopped rows from its cache
(:data:`agents.policies.fast_decode.COMPACT_AT`): the same call, seeded alike, timed ``--repeats`` times
alternately; it prints the median wall times and their ratio, after checking that both ways draw the same tokens.
Last, multi-turn Game24 episodes (``--states / 4`` puzzles x 4 samples, ``--turns`` turns, each turn's prompts
extending the last's, as GRPO's rollouts do) with the decode loop reusing the last call's keys and values
(:class:`agents.policies.fast_decode.PrefixCache`) and with a full prefill every turn, checked to draw the same
tokens: median wall times, their ratio and the ratio of CPU times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import torch

from agents.models import TINY_MODEL_DIR
from agents.policies import Policy, fast_decode
from agents.policies.hf import HFPolicy
from reason_gym.envs.arithmetic import ArithmeticEnv, solution_trace
from reason_gym.envs.game24 import Game24Env


def bench_states(count: int) -> list[str]:
    """Half Game24, half Arithmetic train states: a question, then the same state one solver step on."""
    states = []
    game24, arithmetic = Game24Env(split="train"), ArithmeticEnv(split="train")
    for index in range(count // 4 + 1):
        for env, first_step in (
            (game24, lambda e: e.candidate_actions()[0] or next(a for a in e.candidate_actions() if a)),
            (arithmetic, lambda e: solution_trace(e.get_state().problem)[0]),
        ):
            obs, _ = env.reset(options={"index": index})
            states.append(obs)
            states.append(env.step(first_step(env))[0])
    return states[:count]


def measure(policy: Policy, states: list[str], n: int) -> dict[str, Any]:
    """Tokens/s of one propose call, after a warm-up call on a few states."""
    policy.propose(states[:4], n=n, temperature=1.0)
    started = time.perf_counter()
    out = policy.propose(states, n=n, temperature=1.0)
    wall = time.perf_counter() - started
    tokens = sum(c.num_tokens for candidates in out for c in candidates)
    return {
        "states": len(states),
        "n": n,
        "sequences": len(states) * n,
        "generated_tokens": tokens,
        "wall_s": round(wall, 3),
        "tokens_per_s": round(tokens / wall, 1),
        "sequences_per_s": round(len(states) * n / wall, 2),
    }


def compare_row_dropping(policy: HFPolicy, states: list[str], n: int, repeats: int) -> dict[str, Any]:
    """Median wall time of one seeded propose call with stopped rows dropped from the cache and with them kept."""
    default = fast_decode.COMPACT_AT
    times: dict[str, list[float]] = {"dropped": [], "kept": []}
    outputs = {}
    try:
        for _ in range(repeats):
            for way, compact_at in (("dropped", default), ("kept", 0.0)):
                fast_decode.COMPACT_AT = compact_at
                torch.manual_seed(0)
                started = time.perf_counter()
                out = policy.propose(states, n=n, temperature=1.0)
                times[way].append(time.perf_counter() - started)
                outputs[way] = [[c.token_ids for c in candidates] for candidates in out]
    finally:
        fast_decode.COMPACT_AT = default
    if outputs["dropped"] != outputs["kept"]:
        raise AssertionError("dropping stopped rows changed the sampled tokens")
    dropped, kept = statistics.median(times["dropped"]), statistics.median(times["kept"])
    return {
        "repeats": repeats,
        "dropped_s": round(dropped, 3),
        "kept_s": round(kept, 3),
        "speedup": round(kept / dropped, 2),
    }


def compare_prefix_cache(policy: HFPolicy, episodes: int, n: int, turns: int, repeats: int) -> dict[str, Any]:
    """Median time of playing ``episodes`` Game24 train episodes x ``n`` samples for ``turns`` turns (GRPO's
    rollout: every turn's prompts extend the last turn's), the decode loop reusing the last call's keys and values
    (:class:`agents.policies.fast_decode.PrefixCache`) against a full prefill every turn."""
    times: dict[str, list[float]] = {"cached": [], "full_prefill": []}
    cpu: dict[str, list[float]] = {"cached": [], "full_prefill": []}
    outputs: dict[str, list] = {}
    for _ in range(repeats):
        for way in times:
            envs = [Game24Env(split="train") for _ in range(episodes * n)]
            states = [env.reset(options={"index": i // n})[0] for i, env in enumerate(envs)]
            torch.manual_seed(0)
            policy._decoder = None  # a new decoder: nothing cached from the other way's run
            drawn, wall, cpu_s = [], 0.0, 0.0
            for _ in range(turns):
                running = [i for i, env in enumerate(envs) if not env.get_state().done]
                if not running:
                    break
                if way == "full_prefill" and policy._decoder is not None:
                    policy._decoder.prefix_cache = fast_decode.PrefixCache()
                started, started_cpu = time.perf_counter(), time.process_time()
                out = policy.propose([states[i] for i in running], n=1, temperature=1.0)
                wall, cpu_s = wall + time.perf_counter() - started, cpu_s + time.process_time() - started_cpu
                for i, candidates in zip(running, out, strict=True):
                    states[i] = envs[i].step(candidates[0].text)[0]
                    drawn.append(candidates[0].token_ids)
            times[way].append(wall)
            cpu[way].append(cpu_s)
            outputs[way] = drawn
    if outputs["cached"] != outputs["full_prefill"]:
        raise AssertionError("reusing the cached prefixes changed the sampled tokens")
    cached, full = statistics.median(times["cached"]), statistics.median(times["full_prefill"])
    return {
        "episodes": episodes * n,
        "turns": turns,
        "repeats": repeats,
        "cached_s": round(cached, 3),
        "full_prefill_s": round(full, 3),
        "speedup": round(full / cached, 2),
        "cpu_speedup": round(statistics.median(cpu["full_prefill"]) / statistics.median(cpu["cached"]), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--states", type=int, default=64)
    parser.add_argument("--n", type=int, default=8, help="samples per state")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--num-threads", type=int, help="torch threads of the HF backend (default: the cores)")
    parser.add_argument("--repeats", type=int, default=5, help="alternate timings of the row-dropping comparison")
    parser.add_argument("--turns", type=int, default=4, help="turns of the prefix-cache comparison's episodes")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    states = bench_states(args.states)
    results: dict[str, Any] = {"model": str(TINY_MODEL_DIR)}

    hf = HFPolicy.from_pretrained(
        TINY_MODEL_DIR, max_new_tokens=args.max_new_tokens, max_batch_sequences=512, num_threads=args.num_threads
    )
    results["transformers"] = measure(hf, states, args.n)
    print(f"transformers: {results['transformers']}", flush=True)
    if hf.uses_fast_decode() and args.repeats > 0:
        results["row_dropping"] = compare_row_dropping(hf, states, args.n, args.repeats)
        print(f"decode loop, stopped rows dropped vs kept: {results['row_dropping']}", flush=True)
        episodes = max(1, args.states // 4)
        results["prefix_cache"] = compare_prefix_cache(hf, episodes, 4, args.turns, args.repeats)
        print(f"multi-turn episodes, cached prefixes vs a full prefill: {results['prefix_cache']}", flush=True)

    try:
        from agents.policies.vllm_backend import VLLMPolicy, import_vllm

        import_vllm()
    except ImportError as error:
        print(f"vLLM: skipped ({error})")
    else:
        started = time.perf_counter()
        vllm_policy = VLLMPolicy(
            TINY_MODEL_DIR, dtype="float32", max_new_tokens=args.max_new_tokens, max_model_len=1024, enforce_eager=True
        )
        results["vllm_engine_start_s"] = round(time.perf_counter() - started, 1)
        results["vllm"] = measure(vllm_policy, states, args.n)
        print(f"vLLM (engine start {results['vllm_engine_start_s']} s): {results['vllm']}", flush=True)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=1)
    return 0


if __name__ == "__main__":  # vLLM starts worker processes: the guard keeps them from re-running the benchmark
    sys.exit(main())
