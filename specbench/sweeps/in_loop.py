"""The sweep's side of calibration in the loop: feed each measured trial to the refit
model (sweeps.refit), queue what it proposes, and stop when it is settled.

On for a model-guided sweep that launches servers (``--stop-when-settled``, the default
there): a launch costs minutes, so the refit's proposal replaces the sampler's and the
search ends once measuring more could not move the recommendation by more than the
noise. The settled line is kept on the study (``settled``), so results.json and a
resumed run say it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from specbench.spec_methods import DEFAULT_METHOD
from specbench.sweeps.context import SweepContext
from specbench.sweeps.refit import InLoopModel
from specbench.sweeps.search import ATTR_ROWS, Enqueued, trial_config

#: Trial source of a configuration the refit model proposed.
SOURCE_REFIT = "model-refit"
#: Study user attribute holding the settled line.
STUDY_SETTLED = "settled"


@dataclass
class CalibrationLoop:
    """The refit model of one sweep and what it has been fed."""

    ctx: SweepContext
    model: InLoopModel
    fed: set[int]

    @classmethod
    def start(cls, ctx: SweepContext) -> CalibrationLoop | None:
        """The loop where this sweep runs one (None: off, or no speedup objective)."""
        if not ctx.options.stop_when_settled or ctx.strategy.replays_queue or ctx.rates:
            return None
        configs = list(ctx.space.configs)
        if any(c.method != DEFAULT_METHOD for c in configs):
            ctx.progress.note(
                "--stop-when-settled is off for this sweep: the model prices EAGLE drafts "
                "only, and the space holds other methods"
            )
            return None
        model = InLoopModel(ctx.prior, configs, ctx.primary, seed=ctx.options.seed)
        loop = cls(ctx, model, set())
        loop.feed()
        return loop

    def feed(self) -> None:
        """Every measured trial not yet seen, with its primary load's tau."""
        for trial in self.ctx.search.measurements().values():
            if trial.number in self.fed or trial.value is None:
                continue
            config = trial_config(trial)
            if config is None:
                continue
            self.fed.add(trial.number)
            rows = trial.user_attrs.get(ATTR_ROWS) or []
            taus = [
                r.get("tau")
                for r in rows
                if isinstance(r, dict) and r.get("concurrency") == self.ctx.primary
            ]
            tau: float | None = None
            if taus and isinstance(taus[0], (int, float)) and math.isfinite(taus[0]):
                tau = float(taus[0])
            self.model.add(config, float(trial.value), tau)

    def step(self) -> bool:
        """After a trial: True when settled (said once, on the console and the study);
        otherwise the refit's next configuration is queued for the next proposal."""
        self.feed()
        settled = self.model.settled(self.model.measured)
        if settled is not None:
            text = settled.describe()
            self.ctx.progress.note(text)
            self.ctx.notes.append(text)
            self.ctx.study.set_user_attr(STUDY_SETTLED, text)
            return True
        proposal = self.model.next_config()
        if proposal is not None and self.ctx.search.waiting() == 0:
            self.ctx.search.enqueue([Enqueued(proposal, SOURCE_REFIT)])
        return False


__all__ = ["SOURCE_REFIT", "STUDY_SETTLED", "CalibrationLoop"]
