"""What a run does before it measures when it resumes: clean up after the run it resumes.

A previous run may have been SIGKILLed (no ``finally`` ran): its server may still hold
the GPUs and the port, and its running trial is still RUNNING in the study. A previous
run may also have failed configurations the user now wants measured again
(``--retry-failed``). All of it is reported as notes, so the user sees what was done.
"""

from __future__ import annotations

from specbench.harness.server_backend import ServerBackend
from specbench.process.server_pidfile import reap_stale_servers
from specbench.sweeps.context import SweepContext
from specbench.sweeps.storage import fail_abandoned_trials


def prepare_resume(ctx: SweepContext) -> None:
    """Reap servers of dead workers, register ours, fail abandoned trials, and (with
    ``--retry-failed``) queue failed configurations again."""
    for note in reap_stale_servers(ctx.run_dir.path):
        ctx.progress.note(f"resuming: {note}")
    for backend in (ctx.backend, ctx.baseline_backend):
        if isinstance(backend, ServerBackend):
            backend.server_registry = ctx.run_dir.path
            backend.owner = ctx.worker
    recovered = fail_abandoned_trials(ctx.study)
    if recovered:
        ctx.progress.note(
            f"resuming: trial(s) {', '.join(map(str, recovered))} were left running by a "
            "stopped worker and are marked failed"
        )
    if ctx.options.retry_failed:
        retried = ctx.search.retry_failed()
        if retried:
            ctx.progress.note(
                f"--retry-failed: measuring again {', '.join(c.key for c in retried)}"
            )


__all__ = ["prepare_resume"]
