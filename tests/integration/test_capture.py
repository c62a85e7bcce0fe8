"""Task output through pipes (herd.exec.capture), with real pipes and a real epoll set."""

from __future__ import annotations

import os
import select
from pathlib import Path

from herd.exec.capture import Capture


def test_a_closed_pipe_leaves_the_epoll_set_while_another_process_holds_it(
    tmp_path: Path,
) -> None:
    # a task spawned while another's pipe is open holds a copy of its read end until its exec
    # closes it, after herd's posix_spawn has returned: the pipe must not stay in the set then,
    # where it reports EPOLLHUP at every wait (herd spun until the copy went)
    poll = select.epoll()
    capture = Capture(poll)
    r, w = capture.pipe(tmp_path / "out")
    held = os.dup(r)  # the other process's copy: the same open file
    try:
        os.write(w, b"done\n")
        os.close(w)
        assert capture.finish([r], [tmp_path / "out"]) == ""
        assert poll.poll(0) == []
        assert (tmp_path / "out").read_bytes() == b"done\n"
    finally:
        os.close(held)
        capture.close()
        poll.close()
