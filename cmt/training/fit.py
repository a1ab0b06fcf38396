"""The one optimisation loop: AdamW with a one-cycle learning rate, used by every trained part
(the fusion model, the experts, the text and face encoder tuners).

    opt = OneCycle([(model.parameters(), 1e-3)], weight_decay=0.01, total_steps=epochs * steps)
    fit(model, opt, epochs, lambda epoch: (loss_of(b) for b in batches(epoch)),
        end_epoch=lambda epoch: ...)

`batch_losses(epoch)` yields one loss per batch; `fit` steps the optimiser on each before the
generator goes on, so the generator may read `loss.item()` after its yield for its own log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


class OneCycle:
    """AdamW over parameter groups, each with its own peak learning rate, and a one-cycle
    schedule over total_steps (warm-up over pct_start of them); clip: the gradients' largest
    norm (None: not clipped)."""

    def __init__(self, groups: Iterable[tuple[Iterable[nn.Parameter], float]], *,
                 weight_decay: float, total_steps: int, pct_start: float = 0.3,
                 clip: float | None = None):
        groups = [(list(params), lr) for params, lr in groups]
        self.params = [p for params, _ in groups for p in params]
        lrs = [lr for _, lr in groups]
        self.opt = torch.optim.AdamW([{"params": params, "lr": lr} for params, lr in groups],
                                     weight_decay=weight_decay)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(
            self.opt, max_lr=lrs if len(lrs) > 1 else lrs[0], total_steps=total_steps,
            pct_start=pct_start)
        self.clip = clip

    def step(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip is not None:
            nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        self.sched.step()

    def state_dict(self) -> dict:
        return {"opt": self.opt.state_dict(), "sched": self.sched.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])


def fit(model: nn.Module, optimiser: OneCycle, epochs: int,
        batch_losses: Callable[[int], Iterable[torch.Tensor]], *, start: int = 0,
        end_epoch: Callable[[int], object] | None = None) -> None:
    """Epochs start..epochs-1: the model in training mode, one optimiser step per loss that
    batch_losses(epoch) yields, then end_epoch(epoch) (scoring, keeping the best, saving)."""
    for epoch in range(start, epochs):
        model.train()
        for loss in batch_losses(epoch):
            optimiser.step(loss)
        if end_epoch is not None:
            end_epoch(epoch)
