"""Cap the disk read speed of benchmark children: a Linux cgroup with a read limit on one block device.

    with ReadThrottle(folder, mbps=20) as t:
        spawn(cmd, ..., preexec=t.enter)   # the child (and every thread and process it starts) reads at <= 20 MiB/s

Why: on this machine a toy or `bench` checkpoint loads from a fast virtual disk in a few percent of
the time it takes to score, so reading the next checkpoint ahead has nothing to hide. On a GPU the
ratio is the other way round: a 7B checkpoint in bf16 is 14 GB to read (7 s at 2 GB/s, 70 s from a
200 MB/s network filesystem) against a few seconds of scoring. A read limit puts the CPU benchmark
at that ratio without a GPU; the limit is on the device, so the read-ahead thread is held to it
too (nothing is faster than the disk it emulates).

cgroup v1 (`blkio.throttle.read_bps_device`) or v2 (`io.max rbps=`); needs root (or a delegated
cgroup). The limit applies to the whole disk that holds `folder` (a partition's parent disk).
"""

from __future__ import annotations

import errno
import os
import sys
import time
import uuid
from pathlib import Path

V1 = Path("/sys/fs/cgroup/blkio")
V2 = Path("/sys/fs/cgroup")


def disk_of(folder: Path) -> str:
    """'MAJ:MIN' of the whole disk that holds `folder` (throttles apply to disks, not partitions)."""
    dev = os.stat(folder).st_dev
    node = f"{os.major(dev)}:{os.minor(dev)}"
    sys_dev = Path("/sys/dev/block") / node
    if not sys_dev.exists():
        raise SystemExit(f"--read-mbps: {folder} is not on a block device ({node}: an overlay or tmpfs?); "
                         "put the copies on a disk with TMPDIR=/path/on/disk")
    if (sys_dev / "partition").exists():
        return (sys_dev.resolve().parent / "dev").read_text().strip()
    return node


class ReadThrottle:
    """A cgroup whose members read the disk of `folder` at most `mbps` MiB/s; removed on exit."""

    def __init__(self, folder: Path, mbps: float):
        self.disk = disk_of(folder)
        self.rate = int(mbps * 2**20)
        name = f"vibes-bench-{uuid.uuid4().hex[:8]}"
        if V1.is_dir():
            self.group, self.file, self.line = V1 / name, "blkio.throttle.read_bps_device", f"{self.disk} {self.rate}"
        else:
            self.group, self.file, self.line = V2 / name, "io.max", f"{self.disk} rbps={self.rate}"

    def __enter__(self) -> ReadThrottle:
        try:
            self.group.mkdir()
            (self.group / self.file).write_text(self.line + "\n")
        except OSError as e:
            self._remove()  # what was made of it, if anything
            raise SystemExit(f"--read-mbps: cannot set {self.group / self.file}: {e.strerror or e} "
                             "(needs root and the blkio/io cgroup controller)") from None
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        problem = self._remove()
        if problem and exc_type is None:
            raise SystemExit(problem)
        if problem:  # the error already on its way says more: this one is a warning beside it
            print(f"warning: {problem}", file=sys.stderr)

    def _remove(self) -> str | None:
        """Remove the cgroup once it is empty (a run's last helper, multiprocessing's resource tracker, may outlive it
        briefly); a one-line problem if it cannot be removed."""
        deadline = time.monotonic() + 30
        while self.group.is_dir():
            try:
                self.group.rmdir()
            except OSError as e:
                if e.errno == errno.EBUSY and time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                procs = self.group / "cgroup.procs"
                left = procs.read_text().split() if procs.is_file() else []
                return f"--read-mbps: cannot remove {self.group}: {e.strerror} (processes still in it: {left})"
        return None

    def enter(self) -> None:
        """In the child, before exec: join the cgroup (its threads and children stay in it)."""
        with open(self.group / "cgroup.procs", "w") as fh:
            fh.write(str(os.getpid()))
