"""Child processes for which file permissions hold, even when the suite runs as root.

Root ignores permission bits through three capabilities (DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER). A child
started with ``preexec_fn=without_permission_override`` has them removed from its bounding set before it
runs, so after exec it keeps root's uid but a read-only file or folder is read-only for it too: the
kernel refuses its writes, exactly as for an ordinary user. For a non-root suite nothing needs changing.
"""

from __future__ import annotations

import ctypes
import os

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3


def without_permission_override() -> None:
    """preexec_fn: drop the capabilities that let root write where permissions say no."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed: permissions cannot be tested")
