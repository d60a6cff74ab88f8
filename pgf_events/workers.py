"""Worker processes die with the process that started them.

A rebuild, a catch-up or a verification starts worker processes (``pgf_events.projections.replay``,
``pgf_events.audit.fastverify``). If their parent is killed outright (SIGKILL, the OOM killer, a
closed terminal), nothing runs in it to stop them: left alone they would go on holding the store
open and the caller's pipes (``pgf projections rebuild | tee log`` would never end). Each worker
asks the kernel to kill it when its parent goes (Linux ``prctl(PR_SET_PDEATHSIG)``); where that is
not available, a thread watches the parent and ends the worker when it is gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 0.5


def die_with_parent(parent: int) -> None:
    """Call first thing in a worker started by process ``parent`` (a pool's ``initializer``)."""
    if not _death_signal():
        threading.Thread(target=_watch, args=(parent,), name="pgf-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _death_signal() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):  # not Linux (no prctl)
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(1)
