"""Monte-Carlo tree search over reasoning steps: PUCT selection, expansion by the policy, PRM or rollout values.

One simulation walks down the tree from the root, at each node taking the edge that maximises the PUCT score

    Q(child) + c_puct * P(step) * sqrt(N(node)) / (1 + N(edge))

(AlphaZero's rule), until it reaches a leaf. A leaf that has not been expanded is expanded: the policy proposes
``expansions`` steps at once, the env takes each, rejected steps are dropped, identical siblings (steps that lead to
the same state) are merged into one edge whose prior sums theirs, and children whose state the task calls equal
(``env.canonical_state()``, a transposition) share one node. The leaf is then evaluated and the value is backed up:
every node and edge on the path gains a visit and the value.

Values: with ``value="prm"``, the PRM scores every node once, when it is created, and that score is the node's value
when it is evaluated and its ``Q`` until it is first visited (expanding a child costs ``expansions`` samples, so
selection should know which new children look promising; a PRM call is cheap next to that). With
``value="rollout"``, a leaf is worth the mean ``outcome`` of ``rollouts`` policy rollouts from it, and a child not
yet visited has its parent's mean value as ``Q``. A final answer is worth its PRM score or its outcome; a dead end,
whose every proposed step was rejected, is worth 0.

Progressive widening lets a node visited ``N`` times hold ``expansions * N ** widening`` proposals: when a
simulation passes a node that is due, the policy proposes ``expansions`` more steps there and the new distinct ones
join as children, so the tree keeps growing as long as the budget lasts instead of running out of leaves. A node is
not widened once the steps proposed there hold nearly all of the policy's probability (by their log-probs; for a
policy without log-probs, once a widening round proposes nothing new).

Simulations go on until the budget is exhausted, ``max_simulations`` have run, ``max_idle`` simulations in a row
cost nothing (they only revisit final answers and dead ends), or, with rollout values, a finished trajectory
already has the best possible outcome. The answer is found by following the most-visited edges
from the root; when that path stops short of an answer, or with rollout values (whose outcomes are exact) when a
better finished trajectory is known, the best-valued finished trajectory the search saw is returned.

Priors ``P`` come from the candidates' log-probabilities (normalised over the merged siblings) when the policy
reports them, else they are uniform over the distinct siblings.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import ClassVar

from agents.budget import Budget
from agents.planners.base import Finished, PlanResult, Search, Transition, resolve_value
from agents.policies.base import Policy
from reason_gym.core import PRM, EpisodeState, ReasoningEnv


@dataclass(eq=False)
class Node:
    """A state in the tree (shared by every path that reaches it).

    Attributes:
        state: The env state.
        finished: For a final answer, the finished trajectory; ``None`` for other states.
        edges: ``None`` until expanded; then the distinct valid next steps, highest prior first (empty: a dead end).
        visits: Simulations that passed through the node (by any path).
        value_sum: The sum of their values.
        value: The cached evaluation of a final answer (computed once).
        estimate: With PRM values, the PRM's score of the state, computed when the node is created: the ``Q`` of
            the node until it is visited, so selection knows which new children look promising.
        proposed: Candidates sampled here so far (expansion and widening).
        saturated: The policy's choices here are all known (see :meth:`_Tree.expand`): no more widening.
        proposals: Every distinct step text proposed here (rejected ones too), with its log-probability.
        children: The edges by their child's state key, in the order the children were first reached.
    """

    state: EpisodeState
    finished: Finished | None = None
    edges: list[Edge] | None = None
    visits: int = 0
    value_sum: float = 0.0
    value: float | None = None
    estimate: float | None = None
    proposed: int = 0
    saturated: bool = False
    proposals: dict[str, float | None] = field(default_factory=dict)
    children: dict[Hashable, Edge] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0


@dataclass(eq=False)
class Edge:
    """A step from a node to a child, with its prior and its own visit count (a child may have several parents).

    Attributes:
        step: The first step text that reached the child.
        child: The child node.
        prior: The policy's probability of reaching the child, normalised over the siblings.
        visits: Simulations that took this edge.
        texts: The distinct step texts that reached the child, with their log-probabilities.
    """

    step: str
    child: Node
    prior: float = 0.0
    visits: int = 0
    texts: dict[str, float | None] = field(default_factory=dict)


@dataclass
class MCTS:
    """PUCT tree search with policy priors, PRM or rollout values, real backup and transpositions."""

    expansions: int = 4
    """Candidate steps sampled when a leaf is expanded."""
    c_puct: float = 1.0
    """Weight of exploration (the prior term) against the mean value."""
    value: str = "auto"
    """``prm``, ``rollout`` (the env's outcome reward after policy rollouts: a verifier), or ``auto``: ``prm`` with
    a PRM, else ``rollout``."""
    rollouts: int = 1
    """Rollouts per evaluated leaf, with ``value="rollout"``."""
    temperature: float | None = None
    """Sampling temperature of expansions and rollouts (``None``: the policy's own)."""
    max_simulations: int | None = None
    """A cap on simulations besides the budget (``None``: none)."""
    widening: float | None = 0.5
    """Progressive widening exponent (see :meth:`_Tree._widening_due`); ``None`` or 0: expand each node once."""
    max_idle: int = 64
    """Stop after this many simulations in a row that spent nothing."""
    stop_when_solved: bool = True
    """With rollout values, stop once a finished trajectory has outcome 1 (nothing better can be found)."""
    prm_aggregate: str = "last"
    """How PRM step scores make a value (see :data:`agents.planners.base.PRM_AGGREGATES`)."""

    name: ClassVar[str] = "mcts"

    def __post_init__(self) -> None:
        if self.expansions < 1 or self.rollouts < 1 or self.max_idle < 1:
            raise ValueError("expansions, rollouts and max_idle must be >= 1")
        if self.c_puct < 0:
            raise ValueError(f"c_puct must be >= 0, got {self.c_puct}")

    def solve(self, env: ReasoningEnv, policy: Policy, budget: Budget, prm: PRM | None = None) -> PlanResult:
        """Runs simulations from the env's current state until a stopping rule; returns the chosen answer."""
        value = resolve_value(self.value, prm, ("prm", "rollout"))
        tree = _Tree(self, Search(env, policy, budget, prm, self.prm_aggregate), value)
        simulations = idle = 0
        while not self._should_stop(tree, simulations, idle):
            before = _spent(budget)
            tree.simulate()
            simulations += 1
            idle = idle + 1 if _spent(budget) == before else 0
        return tree.search.result(self.name, tree.choose(), value=value, simulations=simulations, nodes=len(tree.nodes))

    def _should_stop(self, tree: _Tree, simulations: int, idle: int) -> bool:
        if tree.search.budget.exhausted or idle >= self.max_idle:
            return True
        if self.max_simulations is not None and simulations >= self.max_simulations:
            return True
        return self.stop_when_solved and tree.value_kind == "rollout" and tree.search.solved


@dataclass
class _Tree:
    """The search tree of one :meth:`MCTS.solve` call."""

    config: MCTS
    search: Search
    value_kind: str
    nodes: dict[Hashable, Node] = field(default_factory=dict)
    """Every node by its state key: the transposition table."""

    def __post_init__(self) -> None:
        self.root = Node(self.search.root)
        self.nodes[self.search.state_key(self.search.root)] = self.root

    # ------------------------------------------------------------------ one simulation

    def simulate(self) -> None:
        """Selection (widening nodes on the way), expansion and evaluation of a leaf, backup along the path."""
        node, path, edges = self.root, [self.root], []
        new_leaf = False
        while node.finished is None:
            new_leaf = node.edges is None
            if new_leaf or self._widening_due(node):
                if not self.expand(node):
                    return  # the budget affords no proposal: nothing learned, nothing backed up
                if new_leaf:
                    break
            edge = self.select(node, path)
            if edge is None:
                break  # a dead end, or every child is already on this path (the task's canonical states loop)
            node = edge.child
            path.append(node)
            edges.append(edge)
        value = self.evaluate(node, new_leaf)
        if value is None:
            return  # the budget ran out mid-evaluation
        for visited in path:
            visited.visits += 1
            visited.value_sum += value
        for edge in edges:
            edge.visits += 1

    def _widening_due(self, node: Node) -> bool:
        """Progressive widening: a node visited ``N`` times may have had ``expansions * N ** widening`` proposals,
        so the tree keeps growing sideways as long as the budget lasts instead of running out of leaves."""
        widening = self.config.widening
        if not widening or node.saturated:
            return False
        return node.proposed < self.config.expansions * max(1, node.visits) ** widening

    def select(self, node: Node, path: list[Node]) -> Edge | None:
        """The PUCT-maximising edge whose child is not on the path (ties: the higher prior, listed first)."""
        explore = self.config.c_puct * math.sqrt(max(1, node.visits))
        best, best_score = None, -math.inf
        for edge in node.edges or ():
            if edge.child in path:
                continue
            q = edge.child.mean if edge.child.visits else _first_play(edge.child, node)
            score = q + explore * edge.prior / (1 + edge.visits)
            if score > best_score:
                best, best_score = edge, score
        return best

    def evaluate(self, node: Node, new_leaf: bool) -> float | None:
        """The value of the node a simulation stopped at (``None``: the budget ran out before it was known)."""
        if node.finished is not None:
            if node.value is None:
                node.value = self._finished_value(node.finished)
            return node.value
        if not node.edges:
            return 0.0  # a dead end: the policy proposed no valid step here
        return self._leaf_value(node) if new_leaf else node.mean  # else: its children all lie on the path

    def _finished_value(self, finished: Finished) -> float:
        if self.value_kind == "prm":
            return self.search.prm_score(finished.steps)
        return finished.outcome

    def _leaf_value(self, node: Node) -> float | None:
        if self.value_kind == "prm":
            return node.estimate if node.estimate is not None else self.search.prm_score(node.state.steps)
        values = self.search.rollouts([node.state] * self.config.rollouts, self.config.temperature)
        done = [v for v in values if v is not None]
        return sum(done) / len(done) if done else None

    # ------------------------------------------------------------------ expansion

    def expand(self, node: Node) -> bool:
        """Samples ``expansions`` steps at the node and adds the new distinct valid children; ``False`` when the
        budget affords no proposal. Used for the first expansion and for widening alike."""
        batch = self.search.propose([node.state], self.config.expansions, self.config.temperature)
        if not batch:
            return False
        node.proposed += len(batch[0])
        known = len(node.proposals)
        for candidate in batch[0]:
            node.proposals[candidate.text] = candidate.logprob
            transition = self.search.step(node.state, candidate.text)
            if transition.rejected or (transition.state.done and transition.finished is None):
                continue  # rejected: nothing changed; truncated: no answer can follow
            edge = node.children.get(transition.key)
            if edge is None:  # a new child; its node may already exist, reached by another path
                child = self.nodes.get(transition.key) or self._new_node(transition)
                edge = node.children[transition.key] = Edge(candidate.text, child)
            edge.texts[candidate.text] = candidate.logprob
        node.saturated = _saturated(node, widened=node.edges is not None, new_texts=len(node.proposals) > known)
        _set_priors(list(node.children.values()))
        node.edges = sorted(node.children.values(), key=lambda edge: edge.prior, reverse=True)  # ties: first seen
        return True

    def _new_node(self, transition: Transition) -> Node:
        """A node for a state first reached; with PRM values, scored at once (one PRM call)."""
        node = self.nodes[transition.key] = Node(transition.state, transition.finished)
        if self.value_kind == "prm":
            node.estimate = self.search.prm_score(transition.state.steps)
            if node.finished is not None:
                node.value = node.estimate  # a final answer's value is its PRM score: no second call
        return node

    # ------------------------------------------------------------------ the answer

    def choose(self) -> Finished | None:
        """The finished trajectory at the end of the most-visited path, or the best-valued one the search saw."""
        node, path = self.root, [self.root]
        while node.edges and node.finished is None:
            edges = [edge for edge in node.edges if edge.visits and edge.child not in path]
            if not edges:
                break
            node = max(edges, key=lambda edge: (edge.visits, edge.child.mean)).child
            path.append(node)
        if self.value_kind == "rollout":  # outcomes are exact: any better finished trajectory wins
            best = self.search.best_by_outcome()
            if node.finished is None or (best is not None and best.outcome > node.finished.outcome):
                return best
            return node.finished
        if node.finished is not None:
            return node.finished
        valued = [n for n in self.nodes.values() if n.finished is not None and n.value is not None]
        best_node = max(valued, key=lambda n: n.value or 0.0, default=None)
        return best_node.finished if best_node else None


def _first_play(child: Node, parent: Node) -> float:
    """``Q`` of a child not visited yet: its PRM estimate where it has one, else its parent's mean value."""
    return child.estimate if child.estimate is not None else parent.mean


def _set_priors(edges: list[Edge]) -> None:
    """Sets sibling priors: each child's share of the summed probabilities of the distinct texts that reached it
    (a text sampled twice counts once: its log-prob already says how likely it is), or uniform over the distinct
    children when the policy reports no log-probs."""
    logprobs = [lp for edge in edges for lp in edge.texts.values()]
    if not logprobs:
        return
    if any(lp is None for lp in logprobs):
        for edge in edges:
            edge.prior = 1.0 / len(edges)
        return
    top = max(logprobs)  # subtracted before exp: long steps have very negative log-probs
    mass = [sum(math.exp(lp - top) for lp in edge.texts.values()) for edge in edges]  # type: ignore[operator]
    total = sum(mass)
    for edge, m in zip(edges, mass, strict=True):
        edge.prior = m / total


def _saturated(node: Node, widened: bool, new_texts: bool) -> bool:
    """Whether more proposals at a node are pointless: the distinct texts proposed there hold 99.9% of the policy's
    probability (when it reports log-probs), or, without log-probs, a widening round proposed nothing new."""
    logprobs = list(node.proposals.values())
    if all(lp is not None for lp in logprobs):
        return sum(math.exp(lp) for lp in logprobs) >= 0.999  # type: ignore[arg-type]
    return widened and not new_texts


def _spent(budget: Budget) -> tuple[int, int]:
    used = budget.used()
    return used["samples"], used["prm_calls"]
