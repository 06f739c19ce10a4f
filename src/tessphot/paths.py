"""Where tessphot reads and writes: input, output and demo folders."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tessphot import env

#: Environment variables naming the folders.
INPUT_ENV = env.INPUT
OUTPUT_ENV = env.OUTPUT
DEMO_ENV = env.DEMO
#: Name of the default light-curve folder inside the input folder.
LIGHTCURVE_FOLDER = "lightcurves"


def input_folder(argument: str | os.PathLike | None = None) -> Path:
    """The input folder: the argument, else ``$TESSPHOT_INPUT``.

    Raises
    ------
    ValueError
        When neither is given.
    NotADirectoryError
        When the folder does not exist.
    """
    value = argument if argument is not None else env.value(INPUT_ENV)
    if not value:
        raise ValueError(f"no input folder: give one as argument or set {INPUT_ENV}")
    path = Path(value).expanduser()
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise NotADirectoryError(f"input folder does not exist: {path}")
    return path


def output_folder(input_path: Path, argument: str | os.PathLike | None = None) -> Path:
    """The light-curve folder.

    The argument, else ``$TESSPHOT_OUTPUT``, else ``<input>/lightcurves``.
    """
    value = argument if argument is not None else env.value(OUTPUT_ENV)
    return Path(value).expanduser() if value else Path(input_path) / LIGHTCURVE_FOLDER


def demo_folder() -> Path:
    """Folder of the built-in demo data: ``$TESSPHOT_DEMO``, else the user cache."""
    return env.cache_folder("demo", DEMO_ENV)


def current_umask() -> int:
    """The process's file-mode creation mask, left as it is.

    Read from ``/proc/self/status`` where the system gives it (Linux); elsewhere set and
    restored at once (``os.umask`` has no read-only form).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The permissions of a plainly created file: ``0o666`` less the umask."""
    return 0o666 & ~current_umask()


def temporary_file(path: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """Create an empty, uniquely named temporary file beside ``path``.

    Parameters
    ----------
    path : path-like
        The file it will become (its folder must exist).
    suffix : str
        Suffix of the temporary name.

    Returns
    -------
    pathlib.Path
        ``.<name>.<random><suffix>`` in the folder of ``path``.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


def _fsync_file(path: Path) -> None:
    """Flush a written file's content to disk."""
    fd = os.open(path, os.O_RDONLY if os.name == "posix" else os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename) to disk where the system allows it."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse to sync a folder
        pass
    finally:
        os.close(fd)


def finish_file(written: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Put a completely written file in place under its final name, durably.

    The file is flushed to disk, given the permissions a plainly created file gets
    (:func:`default_file_mode`), renamed to ``path`` (replacing it at once) and the rename
    flushed to disk. A power loss thus leaves either the old file or the whole new one.

    Parameters
    ----------
    written : path-like
        The finished file (a temporary or partial name in the folder of ``path``).
    path : path-like
        Its final name.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    written, path = Path(written), Path(path)
    _fsync_file(written)
    os.chmod(written, default_file_mode())
    os.replace(written, path)
    _fsync_folder(path.parent)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Write a file atomically.

    Yields a temporary path in the same folder (created if needed) that replaces ``path``
    (see :func:`finish_file`: flushed to disk, default permissions) when the block ends
    without an exception; otherwise the temporary file is removed and ``path`` is left as
    it was.

    Parameters
    ----------
    path : path-like
        The file to write.
    suffix : str
        Suffix of the temporary name (e.g. ``.png`` for writers that go by it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_file(path, suffix)
    try:
        yield tmp
        finish_file(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def stored_lightcurve(
    stored: str | os.PathLike, input_path: str | os.PathLike, output_path: str | os.PathLike
) -> Path:
    """The file of a light curve as the task list stores it (``diagnostics.lightcurve``).

    A relative name is relative to the input folder when the output is inside it, else to
    the output folder; it is sought in the input folder first.
    """
    path = Path(stored)
    if path.is_absolute():
        return path
    inside = Path(input_path) / path
    return inside if inside.is_file() else Path(output_path) / path
