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
    capture.watch()  # herd went to sleep while the task ran
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


def test_a_pipe_joins_the_epoll_set_only_when_herd_sleeps(tmp_path: Path) -> None:
    """A task that ends before herd sleeps is drained at its reaping without ever being in the
    epoll set; one still running when herd sleeps wakes it with its output."""
    poll = select.epoll()
    capture = Capture(poll)
    try:
        r, w = capture.pipe(tmp_path / "short")
        os.write(w, b"short\n")
        os.close(w)
        assert poll.poll(0) == []  # not watched: nothing reported, nothing to take out
        assert capture.finish([r], [tmp_path / "short"]) == ""
        assert (tmp_path / "short").read_bytes() == b"short\n"
        # the next pipe may reuse the closed one's descriptor: it is watched once, and reported
        r2, w2 = capture.pipe(tmp_path / "long")
        capture.watch()
        capture.watch()
        os.write(w2, b"long\n")
        assert [fd for fd, _ in poll.poll(0)] == [r2]
        capture.read(r2)
        assert (tmp_path / "long").read_bytes() == b"long\n"
        os.close(w2)
        assert capture.finish([r2], [tmp_path / "long"]) == ""
        assert poll.poll(0) == []
    finally:
        capture.close()
        poll.close()
