"""Sweep options are checked once, where they enter; the backends then trust them."""

from __future__ import annotations

import pytest

from specbench.errors import BadInputError
from specbench.sweeps.options import SweepOptions, check_options


def test_endpoint_and_launch_cmd_conflict_is_refused_at_the_boundary() -> None:
    options = SweepOptions(
        endpoint="http://x:1", strategy="fixed", launch_cmd="srun {cmd}", backend="sglang"
    )
    with pytest.raises(BadInputError, match="drop --launch-cmd"):
        check_options(options)
