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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Write a file atomically.

    Yields a temporary path in the same folder (created if needed) that replaces ``path``
    when the block ends without an exception; otherwise the temporary file is removed and
    ``path`` is left as it was.

    Parameters
    ----------
    path : path-like
        The file to write.
    suffix : str
        Suffix of the temporary name (e.g. ``.png`` for writers that go by it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
