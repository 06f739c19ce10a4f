"""The demo's folder: claimed by a manifest, only the files the demo made are ever removed.

The demo writes ``demo.json`` into a folder it starts in (one that is missing or empty): the
simulation's settings and every file and sub-folder the demo made there. It refuses any
other non-empty folder, and in its own folder it refuses data files it did not make (the
stages would read them or write over them). Removing the demo's data removes the files of
the manifest and nothing else; files a stage was writing when it was killed are claimed at
the next start (the manifest keeps the folder's listing from before the stage).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from tessphot.io.errors import TessphotError
from tessphot.paths import atomic_path

log = logging.getLogger(__name__)

#: The manifest: the file that makes a folder the demo's own.
DEMO_MARKER = "demo.json"
#: Version of the manifest's layout (older demos wrote only the simulation's settings).
MANIFEST_VERSION = 2
#: Endings of the data files the stages read: foreign ones are refused in the demo's folder.
DATA_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fz", ".hdf5", ".h5", ".sqlite", ".csv")


class DemoFolderError(TessphotError):
    """A folder the demo may not use (not empty and not its own, or foreign data in it)."""


def _listing(folder: Path) -> tuple[set[str], set[str]]:
    """Files and sub-folders under ``folder`` (relative POSIX paths), the manifest left out."""
    files, folders = set(), set()
    for root, dirnames, filenames in os.walk(folder):
        base = Path(root).relative_to(folder)
        folders.update((base / name).as_posix() for name in dirnames)
        files.update((base / name).as_posix() for name in filenames)
    files.discard(DEMO_MARKER)
    return files, folders


class DemoFolder:
    """The demo's own folder and its manifest (:data:`DEMO_MARKER`).

    Get one with :meth:`claim`; record what a stage makes with :meth:`recording`.

    Parameters
    ----------
    path : pathlib.Path
        The folder.
    manifest : dict
        The manifest's content (``simulation``, ``files``, ``folders``, ``pending``).
    """

    def __init__(self, path: Path, manifest: dict) -> None:
        self.path = path
        self.simulation: dict | None = manifest.get("simulation")
        self.files: set[str] = set(manifest.get("files", ()))
        self.folders: set[str] = set(manifest.get("folders", ()))
        pending = manifest.get("pending")
        if pending is not None:  # a stage was killed: what it left is the demo's
            self._adopt(set(pending.get("files", ())), set(pending.get("folders", ())))

    @classmethod
    def claim(cls, path: str | os.PathLike) -> DemoFolder:
        """The demo folder at ``path``: its own (manifest read), or a new one if missing/empty.

        Raises
        ------
        DemoFolderError
            When the folder is not empty and has no demo manifest, has one from an older
            tessphot, or holds data files the demo did not make.
        """
        path = Path(path).expanduser()
        marker = path / DEMO_MARKER
        if marker.is_file():
            folder = cls(path, _read_manifest(marker))
        elif path.is_dir() and any(path.iterdir()):
            raise DemoFolderError(
                f"{path} is not empty and is not a demo folder (no {DEMO_MARKER}): the demo "
                "only uses a new or empty folder; give another one"
            )
        else:
            path.mkdir(parents=True, exist_ok=True)
            folder = cls(path, {})
        folder._check_foreign()
        folder.save()
        return folder

    def _adopt(self, files_before: set[str], folders_before: set[str]) -> None:
        """Add to the manifest what appeared in the folder since the listing given."""
        files, folders = _listing(self.path)
        self.files |= files - files_before
        self.folders |= folders - folders_before
        self.files &= files  # forget files gone since
        self.folders &= folders

    def _check_foreign(self) -> None:
        """Refuse data files the demo did not make (the stages would read or replace them)."""
        files, _ = _listing(self.path)
        foreign = sorted(
            name for name in files - self.files if name.lower().endswith(DATA_SUFFIXES)
        )
        if foreign:
            more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
            raise DemoFolderError(
                f"{self.path / foreign[0]}{more}: data the demo did not make, in its folder "
                f"{self.path}; move them away or give the demo another folder"
            )

    def save(self, pending: tuple[set[str], set[str]] | None = None) -> None:
        """Write the manifest (with ``pending``: the listing before a stage that runs)."""
        content = {
            "tessphot_demo": MANIFEST_VERSION,
            "simulation": self.simulation,
            "files": sorted(self.files),
            "folders": sorted(self.folders),
            "pending": None
            if pending is None
            else {"files": sorted(pending[0]), "folders": sorted(pending[1])},
        }
        with atomic_path(self.path / DEMO_MARKER) as tmp:
            tmp.write_text(json.dumps(content, indent=1))

    @contextlib.contextmanager
    def recording(self) -> Iterator[DemoFolder]:
        """Record in the manifest every file and folder made while the block runs.

        The listing from before is saved first, so that a killed block's files are still
        known as the demo's at the next :meth:`claim`.
        """
        before = _listing(self.path)
        self.save(pending=before)
        try:
            yield self
        finally:
            self._adopt(*before)
            self.save()

    def remove_own(self) -> None:
        """Delete the files of the manifest, then the demo's folders left empty.

        Every other file stays, and so do the folders holding one.
        """
        for name in sorted(self.files):
            (self.path / name).unlink(missing_ok=True)
        for name in sorted(self.folders, key=lambda n: n.count("/"), reverse=True):
            with contextlib.suppress(OSError):
                (self.path / name).rmdir()  # fails, and is kept, when not empty
        log.info("Removed the demo's %d files from %s", len(self.files), self.path)
        self.files.clear()
        self.folders = _listing(self.path)[1] & self.folders
        self.simulation = None
        self.save()


def _read_manifest(marker: Path) -> dict:
    """The content of a demo manifest.

    Raises
    ------
    DemoFolderError
        When it is unreadable or from an older tessphot (which did not list its files).
    """
    try:
        content = json.loads(marker.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DemoFolderError(f"{marker}: unreadable demo manifest ({err})") from None
    if not isinstance(content, dict) or content.get("tessphot_demo") != MANIFEST_VERSION:
        raise DemoFolderError(
            f"{marker}: made by an older tessphot demo that did not list its files; delete "
            f"the folder {marker.parent} yourself or give the demo another folder"
        )
    return content
