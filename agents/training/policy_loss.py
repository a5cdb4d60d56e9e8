"""The GRPO policy loss, token by token, and the ways to aggregate it into one number.

Per token ``t`` of output ``i`` (log-probabilities under the *sampling* distribution, temperature applied):

- ratio ``rho = exp(logp - logp_old)``, where ``logp_old`` is what the policy that sampled the batch gave;
- clipped surrogate ``min(rho * A, clip(rho, 1 - epsilon_low, 1 + epsilon_high) * A)`` (PPO; DAPO's
  "clip-higher" uses a larger ``epsilon_high`` so unlikely tokens with positive advantage can grow);
- KL penalty to a frozen reference policy with the k3 estimator (Schulman 2020)
  ``exp(ref - logp) - (ref - logp) - 1``: unbiased for KL(pi || ref) under samples from pi, and never negative;
- token loss ``-(surrogate - beta * k3)``.

Aggregation over a batch (``mask`` marks real tokens; a *window* is all the micro-batches of one optimizer step,
see :class:`Window`):

- ``grpo``: the mean over outputs of each output's token mean (DeepSeekMath). A long output's tokens weigh less
  than a short one's, which biases towards long wrong answers (Dr. GRPO).
- ``bnpo``: the token mean over the micro-batch, then the mean over the window's micro-batches (TRL's ``bnpo``).
- ``dr_grpo``: the token sum divided by (outputs in the window x ``max_tokens``), a constant length, so no output's
  tokens are weighted by its length (Dr. GRPO).
- ``dapo``: the token sum divided by the number of tokens in the whole window (DAPO): every token of the window
  weighs the same, however the window is cut into micro-batches.

Each function returns the micro-batch's *share* of the window's loss, so summing the shares of a window's
micro-batches (as gradient accumulation does) gives exactly the window's loss.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]
LOSS_TYPES: tuple[str, ...] = ("grpo", "bnpo", "dr_grpo", "dapo")


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """The k3 estimate of KL(pi || ref) per token: ``exp(ref - logp) - (ref - logp) - 1`` (>= 0).

    >>> [round(x, 4) for x in k3_kl(torch.tensor([0.0, -1.0]), torch.tensor([0.0, -2.0])).tolist()]
    [0.0, 0.3679]
    """
    log_ratio = ref_logp - logp
    return torch.exp(log_ratio) - log_ratio - 1


def clipped_surrogate(
    logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, epsilon_low: float, epsilon_high: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped objective per token (to maximise), and where clipping decided it.

    Args:
        logp: Log-probabilities of the sampled tokens under the policy being trained (with gradient).
        old_logp: The same under the policy that sampled them.
        advantages: Per-token advantages (broadcastable to ``logp``).
        epsilon_low: The ratio is clipped below at ``1 - epsilon_low``.
        epsilon_high: ... and above at ``1 + epsilon_high``.

    Returns:
        ``(objective, clipped)``: the objective per token, and a bool tensor that is true where the clipped term was
        the smaller one (its gradient is zero there).
    """
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high) * advantages
    return torch.minimum(unclipped, clipped), clipped < unclipped


class Window(NamedTuple):
    """Totals over one optimizer step's micro-batches (over every process when training data-parallel).

    Attributes:
        outputs: Outputs (episodes) in the window.
        tokens: Real (unmasked) tokens in the window.
        micro_batches: Micro-batches in the window.
        max_tokens: The longest an output may be, in tokens (``dr_grpo``'s constant length).
    """

    outputs: int
    tokens: int
    micro_batches: int
    max_tokens: int


def aggregate(
    token_loss: torch.Tensor, mask: torch.Tensor, output_of_row: torch.Tensor, loss_type: str, window: Window
) -> torch.Tensor:
    """A micro-batch's share of the window's loss.

    Args:
        token_loss: ``(R, T)`` loss per token; a row is one generated piece (one step of a multi-step episode).
        mask: ``(R, T)`` 1 for real tokens, 0 for padding.
        output_of_row: ``(R,)`` which output of the micro-batch (0..O-1) each row belongs to: an output (episode)
            may span several rows, one per step.
        loss_type: One of :data:`LOSS_TYPES` (see the module docstring).
        window: The window's totals.
    """
    # where(), not a product: a padding position may hold NaN or inf, and 0 * NaN is NaN
    masked = torch.where(mask.bool(), token_loss, torch.zeros_like(token_loss))
    mask = mask.to(token_loss.dtype)
    if loss_type == "grpo":
        outputs = int(output_of_row.max()) + 1
        zeros = torch.zeros(outputs, dtype=token_loss.dtype, device=token_loss.device)
        sums = zeros.index_add(0, output_of_row, masked.sum(1))
        counts = zeros.index_add(0, output_of_row, mask.sum(1))
        return (sums / counts.clamp(min=1)).sum() / window.outputs
    if loss_type == "bnpo":
        return masked.sum() / mask.sum().clamp(min=1) / window.micro_batches
    if loss_type == "dr_grpo":
        return masked.sum() / (window.outputs * window.max_tokens)
    if loss_type == "dapo":
        return masked.sum() / max(1, window.tokens)
    raise ValueError(f"unknown loss_type {loss_type!r}; choose from {', '.join(LOSS_TYPES)}")
