"""Process reward models against the exact step values: ROC-AUC, Brier, calibration, intervals, labelling cost.

    python scripts/eval_prm.py --data runs/prm_data/game24_test \
        --prms mc-bce=runs/prm/mc_s0/model mc-bce=runs/prm/mc_s1/model td=runs/prm/td_s0/model rule \
        --out runs/eval_prm/test.json --plot runs/eval_prm/test.png

Every PRM scores every step of the step-data folder's trajectories (``--data``, see
:mod:`agents.training.prm_data`; those with exact labels, e.g. Game24 ``step_solvable``), and its scores are compared
with the exact labels: ``roc_auc`` (ties count one half), ``brier`` (mean squared error) and ``calibration`` (mean
score, share of exactly good steps and count per tenth of the score range), as
:func:`agents.training.prm.evaluate_prm` computes them, plus a 95% bootstrap interval of the ROC-AUC and the Brier
score over trajectories (``--bootstrap`` resamples).

A PRM is ``[NAME=]SPEC``: ``hf:PATH`` or a bare folder (a learned PRM: ``make_prm("hf:PATH")``), ``mean:hf:A+hf:B``
(an ensemble: the mean of their scores), ``rule`` (the exact rule-based scorer: the oracle, 1.0 by construction on
Game24) or ``label:mc_soft`` (the data's own labels of that name as scores: what the raw Monte-Carlo estimate gets).
PRMs that share a NAME (the seeds of one method) form a
group: its mean, standard deviation and the 95% Student-t interval of the mean over its members. A learned PRM's
``training.json`` gives its labelling cost: the policy calls, tokens and wall time of its step data (``meta.json``'s
``compute``; for value iteration and exact labels without the Monte-Carlo completions they do not use, where the
data counts them apart) plus, for value iteration, its proposals (``proposal_cost``).

``--choose-from mc-bce td`` states a selection rule in advance: the member of those groups with the best ROC-AUC on
``--data`` (run it on validation data, not the test split) is named under ``chosen`` in the JSON.

The table is printed; ``--out`` gets the JSON, ``--plot`` a PNG with the ROC curves and the calibration diagram.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.cli import parse, run_script

T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
"""Two-sided 95% Student-t quantiles by degrees of freedom (beyond 10: 1.96)."""


@dataclass
class EvalPRMConfig:
    """PRMs against the exact step labels of a step-data folder (every field is a flag: ``--choose-from``)."""

    data: str = "runs/prm_data/game24_test"
    """a step-data folder whose records have exact labels (labels.exact)"""
    prms: tuple[str, ...] = ("rule",)
    """PRMs as [NAME=]SPEC: hf:PATH or a folder (learned), mean:hf:A+hf:B (an ensemble), rule (exact, the oracle),
    label:mc_soft (the data's own labels); PRMs sharing a NAME are one group (its seeds)"""
    out: str | None = None
    """write the figures as JSON here"""
    plot: str | None = None
    """write the ROC curves and the calibration diagram here (PNG)"""
    bins: int = 10
    """equal-width score bins of the calibration"""
    bootstrap: int = 1000
    """bootstrap resamples over trajectories for the 95% intervals of each PRM (0: none)"""
    seed: int = 0
    """seeds the bootstrap"""
    choose_from: tuple[str, ...] = ()
    """groups among which the best ROC-AUC is named `chosen` (a selection rule, for validation data)"""
    target_auc: float = 0.9
    """the ROC-AUC target the table marks as met or not"""
    batch_size: int = 64
    """trajectories per forward pass of a learned PRM"""
    num_threads: int | None = 1
    """torch CPU threads (None: every core)"""

    def __post_init__(self) -> None:
        self.prms, self.choose_from = tuple(self.prms), tuple(self.choose_from)
        if not self.prms:
            raise ValueError("pass at least one PRM with --prms (e.g. --prms rule mc=runs/prm/model)")
        if self.bins < 1 or self.bootstrap < 0 or self.batch_size < 1:
            raise ValueError(f"bins and batch_size must be >= 1 and bootstrap >= 0, got {self.bins}, "
                             f"{self.batch_size}, {self.bootstrap}")  # fmt: skip
        names = {name for name, _ in map(split_spec, self.prms)}
        unknown = [group for group in self.choose_from if group not in names]
        if unknown:
            raise ValueError(f"--choose-from names {unknown}, not among the PRMs' names {sorted(names)}")


def split_spec(text: str) -> tuple[str, str]:
    """``NAME=SPEC`` as ``(NAME, SPEC)``; a bare spec is its own name.

    >>> split_spec("td=runs/prm/td/model"), split_spec("rule")
    (('td', 'runs/prm/td/model'), ('rule', 'rule'))
    """
    name, equals, spec = text.partition("=")
    return (name, spec) if equals and name and spec else (text, text)


# ------------------------------------------------------------------------------------------------- scoring


def step_scores(spec: str, records: Sequence[dict[str, Any]], batch_size: int = 64) -> tuple[np.ndarray, dict]:
    """Every step's score under the PRM ``spec`` (records in order, steps in order), and what the PRM's
    ``training.json`` says of its cost (empty for ``rule`` and ``label:``).

    Raises:
        ValueError: An unknown spec, a label the records lack, or a PRM ``make_prm`` refuses.
    """
    kind, _, rest = spec.partition(":")
    if kind == "label":
        if any(r["labels"].get(rest) is None for r in records):
            raise ValueError(f"label:{rest}: some records of the data have no {rest!r} labels")
        return np.asarray([float(v) for r in records for v in r["labels"][rest]]), {}
    from agents.prm import make_prm
    from agents.training.prm import prm_step_scores

    if spec != "rule" and kind not in ("hf", "mean"):
        if not Path(spec).is_dir():
            raise ValueError(f"PRM {spec!r}: not rule, label:NAME, hf:PATH, mean:hf:A+hf:B or a folder")
        spec = f"hf:{spec}"
    return np.asarray(prm_step_scores(make_prm(spec), records, batch_size), dtype=float), _cost(spec)


def _summed(counters: list[dict[str, Any]]) -> dict[str, Any]:
    """The counters of several step-data folders added up (``wall_s`` too: they were labelled one after another).

    >>> _summed([{"samples": 2, "wall_s": 1.5}, {"samples": 3}])
    {'samples': 5, 'wall_s': 1.5}
    """
    total: dict[str, Any] = {}
    for counter in counters:
        for name, value in counter.items():
            total[name] = total.get(name, 0) + value
    return total


def _cost(spec: str) -> dict[str, Any]:
    """The labelling cost a learned PRM's ``training.json`` records (its data's compute, TD proposals included); for
    a ``mean:`` of PRMs, the members' costs added, each data set's labelling charged once."""
    if spec.startswith("mean:"):
        return _mean_cost([_cost(member) for member in spec[len("mean:") :].split("+")])
    if not spec.startswith("hf:"):
        return {}
    path = Path(spec[3:]) / "training.json"
    if not path.exists():
        return {}
    info = json.loads(path.read_text())
    metas = info.get("data_meta") or []
    metas = [metas] if isinstance(metas, dict) else metas  # one folder's meta (older runs) or one per folder
    data = _summed([meta.get("compute") or {} for meta in metas])
    proposals = info.get("proposal_cost") or {}
    cost = {
        "data": (info.get("config") or {}).get("data"),
        "method": (info.get("config") or {}).get("method"),
        "label": (info.get("config") or {}).get("label"),
        "seed": (info.get("config") or {}).get("seed"),
        "train_steps": info.get("steps"),
        "train_s": round((info.get("metrics") or {}).get("time/train_s", float("nan")), 1),
    }
    # value iteration and exact labels use the trajectories, not the Monte-Carlo completions of their data
    completions = [meta.get("compute_completions") for meta in metas]
    completions = _summed(completions) if completions and None not in completions else None  # no split, not a wrong one
    unused = completions if cost["method"] == "td" or cost["label"] == "exact" else None
    cost["charged"] = "trajectories" if unused else "trajectories and Monte-Carlo completions"
    for counter in ("policy_calls", "samples", "tokens"):
        cost[counter] = data.get(counter, 0) - (unused or {}).get(counter, 0) + proposals.get(counter, 0)
    cost["label_wall_s"] = data.get("wall_s")
    cost["proposal_cost"] = proposals or None
    return cost


def _mean_cost(members: list[dict[str, Any]]) -> dict[str, Any]:
    """An ensemble's cost: every member's proposals and training, and the labelling of each distinct data set once
    (seeds of one configuration share their data).

    >>> member = {"data": ["d"], "policy_calls": 10, "samples": 20, "tokens": 30, "train_s": 5.0,
    ...           "proposal_cost": {"policy_calls": 2, "samples": 4, "tokens": 6}}
    >>> _mean_cost([member, member])["policy_calls"], _mean_cost([member, member])["train_s"]
    (12, 10.0)
    """
    if not all(members):
        return {}  # a member without a training.json: its cost is unknown, so is the ensemble's
    total: dict[str, Any] = {"members": len(members), "data": [], "train_s": sum(m["train_s"] for m in members)}
    for counter in ("policy_calls", "samples", "tokens"):
        total[counter] = 0
    for member in members:
        proposals = member.get("proposal_cost") or {}
        first = member["data"] not in total["data"]  # its data's labelling not charged yet
        if first:
            total["data"].append(member["data"])
        for counter in ("policy_calls", "samples", "tokens"):
            labelling = member[counter] - proposals.get(counter, 0)
            total[counter] += (labelling if first else 0) + proposals.get(counter, 0)
    return total


# ------------------------------------------------------------------------------------------------- figures


def bootstrap(scores: np.ndarray, labels: np.ndarray, owners: np.ndarray, resamples: int, seed: int) -> dict:
    """95% percentile intervals of the ROC-AUC and the Brier score, resampling trajectories (``owners[i]`` is the
    trajectory of step ``i``) with replacement."""
    from agents.training.prm import roc_auc

    if resamples == 0:
        return {}
    rng = np.random.default_rng(seed)
    count = int(owners.max()) + 1
    members = [np.flatnonzero(owners == t) for t in range(count)]
    aucs, briers = [], []
    for _ in range(resamples):
        rows = np.concatenate([members[t] for t in rng.integers(count, size=count)])
        aucs.append(roc_auc(scores[rows], labels[rows]))
        briers.append(float(np.mean((scores[rows] - labels[rows]) ** 2)))
    aucs_finite = np.asarray([a for a in aucs if not math.isnan(a)])
    return {
        "roc_auc_95": [float(np.percentile(aucs_finite, 2.5)), float(np.percentile(aucs_finite, 97.5))],
        "brier_95": [float(np.percentile(briers, 2.5)), float(np.percentile(briers, 97.5))],
    }


def group_summary(values: Sequence[float]) -> dict[str, Any]:
    """Mean, standard deviation and the 95% Student-t interval of the mean of a group's members.

    >>> g = group_summary([0.8, 0.9, 1.0])
    >>> round(g["mean"], 3), round(g["sd"], 3), [round(x, 3) for x in g["ci95"]]
    (0.9, 0.1, [0.652, 1.148])
    """
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return {"mean": float(x.mean()), "sd": None, "ci95": None, "n": len(x)}
    sd = float(x.std(ddof=1))
    half = T_975.get(len(x) - 1, 1.96) * sd / math.sqrt(len(x))
    return {"mean": float(x.mean()), "sd": sd, "ci95": [float(x.mean() - half), float(x.mean() + half)], "n": len(x)}


def evaluate(config: EvalPRMConfig) -> dict[str, Any]:
    """The figures of every PRM and group of ``config`` (the JSON ``--out`` gets)."""
    from agents.policies.hf import configure_threads
    from agents.training.prm import score_metrics
    from agents.training.prm_records import load_step_data

    configure_threads(config.num_threads)
    records = [r for r in load_step_data(config.data) if r["labels"].get("exact") is not None and r["steps"]]
    if not records:
        raise ValueError(f"{config.data} has no record with exact step labels: evaluate on a task with an exact check")
    labels = np.asarray([v for r in records for v in r["labels"]["exact"]], dtype=float)
    owners = np.asarray([t for t, r in enumerate(records) for _ in r["steps"]])
    rows = []
    for number, text in enumerate(config.prms):
        name, spec = split_spec(text)
        scores, cost = step_scores(spec, records, config.batch_size)
        if scores.shape != labels.shape:
            raise ValueError(f"PRM {text!r} gave {scores.size} scores for {labels.size} steps")
        row = {"name": name, "spec": spec, **score_metrics(scores, labels, config.bins)}
        row |= bootstrap(scores, labels, owners, config.bootstrap, config.seed + number)
        row |= {"cost": cost, "curve": roc_curve(scores, labels)}
        rows.append(row)
    groups = {}
    for name in dict.fromkeys(row["name"] for row in rows):
        members = [row for row in rows if row["name"] == name]
        auc = group_summary([m["roc_auc"] for m in members])
        groups[name] = {
            "roc_auc": auc,
            "brier": group_summary([m["brier"] for m in members]),
            "members": [m["spec"] for m in members],
            "target_met": bool(auc["mean"] >= config.target_auc),
        }
        costs = [m["cost"] for m in members if m["cost"]]
        if costs:
            groups[name]["cost_mean"] = {
                k: float(np.mean([c[k] for c in costs])) for k in ("policy_calls", "samples", "tokens")
            }
    result = {
        "config": asdict(config),
        "data": config.data,
        "trajectories": len(records),
        "steps": int(labels.size),
        "positives": int(labels.sum()),
        "prms": rows,
        "groups": groups,
    }
    if config.choose_from:
        pool = [row for row in rows if row["name"] in config.choose_from]
        best = max(pool, key=lambda row: (row["roc_auc"], -row["brier"]))
        result["chosen"] = {"rule": f"the best ROC-AUC on {config.data} among {list(config.choose_from)}",
                            "name": best["name"], "spec": best["spec"], "roc_auc": best["roc_auc"]}  # fmt: skip
    return result


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> list[tuple[float, float]]:
    """The ROC curve's (false positive rate, true positive rate) points, one per distinct score."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order] > 0.5
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last step of each run of equal scores
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    p, n = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return [(0.0, 0.0)] + [(float(f / n), float(t / p)) for f, t in zip(fp, tp, strict=True)]


def format_table(result: dict[str, Any], target: float) -> str:
    """One line per PRM, then one per group (mean and 95% interval over its members)."""
    lines = [f"{result['data']}: {result['trajectories']} trajectories, {result['steps']} steps, "
             f"{result['positives']} exactly good"]  # fmt: skip
    header = (
        f"{'name':<12} {'roc_auc':>8} {'95% (bootstrap)':>17} {'brier':>7} {'policy calls':>12} {'tokens':>9}  spec"
    )
    lines += [header, "-" * len(header)]
    for row in result["prms"]:
        interval = row.get("roc_auc_95")
        shown = f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        cost = row["cost"]
        lines.append(f"{row['name']:<12} {row['roc_auc']:>8.3f} {shown:>17} {row['brier']:>7.4f} "
                     f"{cost.get('policy_calls', ''):>12} {cost.get('tokens', ''):>9}  {row['spec']}")  # fmt: skip
    lines += ["", f"{'group':<12} {'n':>2} {'roc_auc mean [95% t]':>28} {'brier mean [95% t]':>28}  >= {target}"]
    for name, group in result["groups"].items():
        cells = []
        for key in ("roc_auc", "brier"):
            g = group[key]
            cells.append(f"{g['mean']:.3f}" + (f" [{g['ci95'][0]:.3f}, {g['ci95'][1]:.3f}]" if g["ci95"] else ""))
        met = "met" if group["target_met"] else "not met"
        lines.append(f"{name:<12} {group['roc_auc']['n']:>2} {cells[0]:>28} {cells[1]:>28}  {met}")
    if "chosen" in result:
        lines.append(f"\nchosen ({result['chosen']['rule']}): {result['chosen']['name']} {result['chosen']['spec']}")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str | Path) -> None:
    """ROC curves (left) and the calibration diagram (right), one colour per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    colours = {name: f"C{i}" for i, name in enumerate(result["groups"])}
    seen: set[str] = set()
    for row in result["prms"]:
        label = (
            None
            if row["name"] in seen
            else f"{row['name']} (AUC {result['groups'][row['name']]['roc_auc']['mean']:.3f})"
        )
        seen.add(row["name"])
        fpr, tpr = zip(*row["curve"], strict=True)
        left.plot(fpr, tpr, color=colours[row["name"]], alpha=0.8, label=label)
    for name in result["groups"]:  # one reliability curve per group: its members' bins pooled, by count
        cells = [c for row in result["prms"] if row["name"] == name for c in row["calibration"]]
        bins = result["config"]["bins"]
        pooled = {}
        for mean_score, share, count in cells:
            b = min(int(mean_score * bins), bins - 1)
            total = pooled.setdefault(b, [0.0, 0.0, 0])
            total[0], total[1], total[2] = total[0] + mean_score * count, total[1] + share * count, total[2] + count
        points = [(s / n, g / n, n) for s, g, n in (pooled[b] for b in sorted(pooled))]
        right.plot([p[0] for p in points], [p[1] for p in points], "-", color=colours[name], alpha=0.7, label=name)
        right.scatter([p[0] for p in points], [p[1] for p in points], s=[6 + p[2] for p in points], color=colours[name],
                      alpha=0.7)  # fmt: skip
    left.plot([0, 1], [0, 1], ":", color="grey")
    right.plot([0, 1], [0, 1], ":", color="grey")
    left.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC against the exact step values")
    right.set(xlabel="PRM score (bin mean)", ylabel="share of exactly good steps", xlim=(-0.02, 1.02),
              ylim=(-0.02, 1.02), title="calibration (seeds pooled; dot area: steps)")  # fmt: skip
    left.legend(loc="lower right", fontsize=8)
    right.legend(loc="upper left", fontsize=8)
    figure.suptitle(f"{result['data']}: {result['trajectories']} trajectories, {result['steps']} steps")
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parses the flags (``--help`` lists them), evaluates, prints the table, writes the JSON and the plot."""
    config = parse(EvalPRMConfig, argv, "eval_prm.py", description=__doc__.split("\n\n")[0])
    result = evaluate(config)
    print(format_table(result, config.target_auc))
    if config.out:
        Path(config.out).parent.mkdir(parents=True, exist_ok=True)
        Path(config.out).write_text(json.dumps(result, indent=1) + "\n")
    if config.plot:
        plot(result, config.plot)
    return result


if __name__ == "__main__":
    raise SystemExit(run_script(main, "eval_prm.py"))
