"""`python -m scarab.serve.parent_watch MODULE [ARG...]`: run MODULE as `python -m MODULE
ARG...` would, and stop it once the process that started it is gone.

`scarab serve --target` runs the server this way with stdin a pipe it holds open and never
writes: the pipe's end (EOF) means serve exited, however it did (SIGKILL included, when no
Ctrl-C handler runs), and the server then gets SIGTERM, which uvicorn takes as Ctrl-C. It
is killed if it has not stopped after a grace period. Without this, a killed serve left
the server holding its port and answering from an emulator that was gone.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time

GRACE_S = 10.0


def _watch(stdin_fd: int) -> None:
    while True:
        try:
            if not os.read(stdin_fd, 4096):
                break
        except OSError:
            break
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_S)
    os._exit(1)


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m scarab.serve.parent_watch MODULE [ARG...]")
    module, *args = argv
    threading.Thread(target=_watch, args=(sys.stdin.fileno(),), daemon=True).start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
