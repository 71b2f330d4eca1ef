"""`python -m processor.emulator PORT PARENT_PID`: the local moto server, run by
`processor.local.start_moto` as its own process in its own session.

It exits when its parent is gone, so a SIGKILLed `make run` leaves no emulator holding the
port: Linux is asked to send SIGTERM on the parent's death (PR_SET_PDEATHSIG), and elsewhere
a check of the parent pid twice a second does the same.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    port, parent = int(argv[0]), int(argv[1])
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    while os.getppid() == parent:
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
