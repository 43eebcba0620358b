"""Report files written whole or not at all.

`write_atomic(path, data)` writes to a hidden temporary name in the same folder, flushes it to
disk and renames it over `path`: a reader (or a crash, SIGTERM, a full disk) sees the old file
or the new one, never half of one. A failed write removes the temporary file and raises
OSError; the old file is left as it was. `locked_folder(dir)` serialises writers of one report
folder (two runs sharing `--out` leave one run's complete set, not a mix), and
`check_writable_dir` / `check_writable_file` say before any model work whether a report can be
written there at all. A temporary file being written is known to `interrupt`: if a stop cannot
unwind in time and the process is ended, it is removed first; `remove_temporaries(folder)` removes
those a killed process (a sweep worker) left.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
from pathlib import Path

import vibes_eval.interrupt as interrupt

__all__ = ["check_writable_dir", "check_writable_file", "locked_folder", "remove_temporaries", "write_atomic"]

_SUFFIX = ".tmp"
_in_flight: set[str] = set()
_in_flight_lock = threading.Lock()


def _remove_in_flight() -> None:
    """The temporary files being written now (the process is being ended before they are renamed)."""
    with _in_flight_lock:
        names = list(_in_flight)
    for name in names:
        with contextlib.suppress(FileNotFoundError):  # renamed or removed meanwhile
            os.unlink(name)


interrupt.at_hard_exit(_remove_in_flight)


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files `write_atomic` left in `folder` (its writer was killed); the paths removed."""
    removed = []
    for p in Path(folder).glob(f".*.*{_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


def _os_write(fd: int, data: bytes) -> int:
    """os.write; a seam where tests inject a full disk."""
    return os.write(fd, data)


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write `data` to `path` atomically (parent folders created); returns the path.

    Raises:
        OSError: the folder cannot be written or the disk is full; `path` is unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_SUFFIX, dir=path.parent)
    with _in_flight_lock:
        _in_flight.add(tmp)
    try:
        view = memoryview(raw)
        while view:
            n = _os_write(fd, view)
            if n <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            view = view[n:]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:  # a full disk, SIGTERM, Ctrl-C: no temporary file is left behind
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        with _in_flight_lock:
            _in_flight.discard(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def locked_folder(folder: str | Path):
    """Hold an exclusive lock on `folder` (flock on the directory itself) while a set of files is written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, each file is still atomic
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def check_writable_dir(folder: str | Path, flag: str = "--out") -> str | None:
    """Why a report folder cannot be written (one line naming the flag), or None. Creates the folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        return f"{flag}: {folder} exists and is not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return f"{flag}: {folder}: cannot write there: {e.strerror or e}"
    return None


def check_writable_file(path: str | Path, flag: str = "--junit") -> str | None:
    """Why a report file cannot be written at `path` (one line naming the flag), or None."""
    path = Path(path)
    if path.is_dir():
        return f"{flag}: {path} is a folder, not a file"
    return check_writable_dir(path.parent, flag) if str(path.parent) else None
