"""`specbench ...` with the simulator paused inside one trial until a signal arrives.

Run as ``python paused_sweep.py MARKER TRIAL SPECBENCH_ARGS...``: the ``TRIAL``-th
speculative configuration (counted from 1) measures its first load, writes ``MARKER``
and then waits inside its second load (until a signal, or until the file named by
SPECBENCH_TEST_RELEASE exists: the test changed the world meanwhile). A test that waits for the marker and sends
SIGTERM therefore lands inside a trial on a busy machine as on an idle one; a timer
after the first records appeared used to land between trials under load.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from specbench.cli import main
from specbench.harness.backend import Session
from specbench.harness.sim_backend import SimBackend
from specbench.spec_config import SpecConfig

#: With this set to a path, the paused load goes on once that file exists.
RELEASE_ENV = "SPECBENCH_TEST_RELEASE"


def _pause_inside(marker: Path, trial: int, release: Path | None) -> None:
    original = SimBackend.session
    opened: list[str] = []

    @contextlib.contextmanager
    def session(
        self: SimBackend, config: SpecConfig | None, *, log_path: Path
    ) -> Iterator[Session]:
        with original(self, config, log_path=log_path) as inner:
            if config is not None:
                opened.append(config.key)
            if config is not None and len(opened) == trial:
                run = inner.run
                loads: list[int] = []

                def paused(*args: Any, **kwargs: Any) -> Any:
                    loads.append(1)
                    if len(loads) == 2:
                        marker.write_text(config.key)
                        while release is None or not release.exists():
                            time.sleep(0.05)  # until the signal, or the release file
                    return run(*args, **kwargs)

                inner.run = paused  # type: ignore[method-assign]
            yield inner

    SimBackend.session = session  # type: ignore[assignment,method-assign]


if __name__ == "__main__":
    released = os.environ.get(RELEASE_ENV)
    _pause_inside(Path(sys.argv[1]), int(sys.argv[2]), Path(released) if released else None)
    main(sys.argv[3:])
