"""The download of the SPOC PRF models from the archive into a cache, against a real local
HTTP server serving a folder laid out like MAST's (made from the shared PRF files)."""

from __future__ import annotations

import functools
import http.server
import json
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from tessphot.prf import SpocPRF, load_prf
from tessphot.prf import download as pd
from tessphot.prf.download import (
    PRFArchive,
    PRFDownloadError,
    archive_prf_dir,
    download_prf,
    resolve_prf_dir,
)

#: The shared PRF folders served, as (tessphot folder, archive folder).
SERVED = [
    ("Sectors1_2_3/cam1_ccd4", "start_s0001/cam1_ccd4"),
    ("Sectors4+/cam2_ccd1", "start_s0004/cam2_ccd1"),
]


@dataclass
class Archive:
    """A local HTTP server of a folder laid out like the archive."""

    root: Path
    url: str
    requests: list[str] = field(default_factory=list)
    #: Paths answered with their full Content-Length but only half of the bytes.
    dropped: set[str] = field(default_factory=set)

    def folder(self, archive_folder: str) -> Path:
        return self.root / archive_folder

    def files_requested(self) -> list[str]:
        return [p for p in self.requests if p.endswith(".fits")]


def _apache_index(folder: Path, path: str) -> str:
    """An index page like Apache's (absolute parent link, sort links, a table), linking the
    files of ``folder`` plus decoys that must be ignored."""
    rows = "\n".join(
        f'<tr><td><a href="{p.name}">{p.name}</a></td><td align="right">225K</td></tr>'
        for p in sorted(folder.glob("*.fits"))
    )
    return f"""<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html><head><title>Index of {path}</title></head><body><h1>Index of {path}</h1>
<table><tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th></tr>
<tr><td><a href="/missions/tess/models/prf_fitsfiles/start_s0004/">Parent Directory</a></td></tr>
{rows}
<tr><td><a href="tess2019107181901-prf-3-1-row0001-col0045.fits">other camera</a></td></tr>
<tr><td><a href="README.txt">README.txt</a></td></tr>
</table></body></html>
"""


@pytest.fixture
def archive(prf_dir, tmp_path):
    """The archive served on 127.0.0.1: ``start_s0001/cam1_ccd4`` with Python's own
    directory listing, ``start_s0004/cam2_ccd1`` with an Apache-like ``index.html``."""
    root = tmp_path / "archive"
    for ours, theirs in SERVED:
        folder = root / theirs
        folder.mkdir(parents=True)
        for path in sorted((prf_dir / ours).glob("*.fits")):
            (folder / path.name).symlink_to(path)
    (root / "start_s0001" / "cam1_ccd4" / "README.txt").write_text("not a PRF")
    s4 = root / "start_s0004" / "cam2_ccd1"
    (s4 / "index.html").write_text(_apache_index(s4, "/start_s0004/cam2_ccd1"))
    requests: list[str] = []
    dropped: set[str] = set()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            if self.path in dropped:
                content = (root / self.path.lstrip("/")).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content[: len(content) // 2])
                self.close_connection = True
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Archive(root, f"http://127.0.0.1:{server.server_address[1]}/", requests, dropped)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def _no_prf_environment(monkeypatch, tmp_path):
    """No archive settings from the environment; the user cache under the test's folder."""
    monkeypatch.delenv(pd.CACHE_ENV, raising=False)
    monkeypatch.delenv(pd.URL_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/prf/"


def _leftovers(folder: Path) -> list[str]:
    return (
        sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
        if folder.exists()
        else []
    )


def test_download_fills_the_cache_and_renders_like_the_shared_folder(archive, prf_dir, tmp_path):
    cache = tmp_path / "cache"
    folder = download_prf(1, 1, 4, cache, url=archive.url)
    assert folder == cache / "Sectors1_2_3" / "cam1_ccd4"
    shared = sorted(p.name for p in (prf_dir / "Sectors1_2_3" / "cam1_ccd4").glob("*.fits"))
    assert sorted(p.name for p in folder.iterdir()) == shared and len(shared) == 25
    assert archive.requests[0] == "/start_s0001/cam1_ccd4/"
    assert len(archive.files_requested()) == 25 and len(archive.requests) == 26

    rng = np.random.default_rng(3)
    rows, cols = rng.uniform(0, 2047, 40), rng.uniform(0, 2047, 40)
    fluxes = rng.uniform(1, 100, 40)
    ours = SpocPRF(cache, 1, 1, 4).render(rows, cols, fluxes, (2048, 2048))
    theirs = SpocPRF(prf_dir, 1, 1, 4).render(rows, cols, fluxes, (2048, 2048))
    np.testing.assert_array_equal(ours, theirs)

    # Complete: used without asking the archive.
    archive.requests.clear()
    assert download_prf(1, 1, 4, cache, url=archive.url) == folder
    assert archive.requests == []
    # Resumable: only the missing files are fetched.
    for name in shared[:3]:
        (folder / name).unlink()
    download_prf(2, 1, 4, cache, url=archive.url)
    assert sorted(Path(p).name for p in archive.files_requested()) == shared[:3]
    assert sorted(p.name for p in folder.iterdir()) == shared


def test_apache_index_of_the_later_epoch(archive, prf_dir, tmp_path):
    """Sector 5 reads start_s0004 (links from an Apache-like index; decoys ignored) into
    Sectors4+, the file names as the archive has them."""
    folder = download_prf(5, 2, 1, tmp_path / "cache", url=archive.url.rstrip("/"))
    assert folder == tmp_path / "cache" / "Sectors4+" / "cam2_ccd1"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(p.name for p in (prf_dir / "Sectors4+" / "cam2_ccd1").glob("*.fits"))
    assert len(names) == 25 and all(n.startswith("tess2019107181901-prf-2-1-") for n in names)
    assert "README.txt" not in " ".join(archive.requests)


#: Damage done to a served file, and what the error says.
DAMAGE = {
    "cut in the data": "not a readable FITS file",
    "cut after the primary HDU": "HDU 1 (the uncertainties) is missing",
    "wrong shape": "(13, 13)",
    "html": "not a readable FITS file",
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_broken_file_is_a_clear_error_and_not_kept(archive, tmp_path, damage):
    served = archive.folder("start_s0001/cam1_ccd4")
    bad = sorted(served.glob("*.fits"))[12]
    content = bad.read_bytes()
    bad.unlink()
    if damage == "cut in the data":
        bad.write_bytes(content[:100_000])
    elif damage == "cut after the primary HDU":
        bad.write_bytes(content[: 40 * 2880])
    elif damage == "wrong shape":
        fits.PrimaryHDU(np.zeros((13, 13))).writeto(bad)
    else:
        bad.write_text("<html>Service unavailable</html>")
    cache = tmp_path / "cache"
    with pytest.raises(PRFDownloadError) as err:
        download_prf(1, 1, 4, cache, url=archive.url)
    message = str(err.value)
    print(message)
    assert f"{archive.url}start_s0001/cam1_ccd4/{bad.name}" in message
    assert DAMAGE[damage] in message
    assert "by hand" in message
    folder = cache / "Sectors1_2_3" / "cam1_ccd4"
    assert not (folder / bad.name).exists()
    assert _leftovers(folder) == []
    # The good files before it are kept; nothing is read from an incomplete cache.
    assert len(list(folder.glob("*.fits"))) == 12
    with pytest.raises(FileNotFoundError, match="incomplete"):
        SpocPRF(cache, 1, 1, 4)


def test_dropped_connection_is_a_clear_error(archive, tmp_path):
    """A transfer ending before its Content-Length is refused."""
    bad = sorted(archive.folder("start_s0004/cam2_ccd1").glob("*.fits"))[0]
    archive.dropped.add(f"/start_s0004/cam2_ccd1/{bad.name}")
    cache = tmp_path / "cache"
    with pytest.raises(PRFDownloadError, match=rf"{bad.name}: truncated: received \d+ of"):
        download_prf(4, 2, 1, cache, url=archive.url)
    assert not list(cache.rglob("*.fits")) and _leftovers(cache / "Sectors4+" / "cam2_ccd1") == []


def test_unreachable_archive_is_a_clear_error(tmp_path):
    url = _closed_port_url()
    cache = tmp_path / "cache"
    with pytest.raises(PRFDownloadError) as err:
        download_prf(1, 1, 4, cache, url=url, timeout=5)
    message = str(err.value)
    print(message)
    assert f"{url}start_s0001/cam1_ccd4/" in message
    assert "by hand" in message and str(cache / "Sectors1_2_3" / "cam1_ccd4") in message
    assert not list(cache.rglob("*.fits"))


def test_missing_folder_on_the_archive(archive, tmp_path):
    """A camera/CCD the server does not have: the HTTP error, named."""
    with pytest.raises(PRFDownloadError, match=r"start_s0001/cam3_ccd3/ \(HTTP Error 404"):
        download_prf(1, 3, 3, tmp_path / "cache", url=archive.url)


def test_archive_resolves_to_the_cache_of_the_sector_epoch(archive, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    prf = load_prf("archive", 2, 1, 4, cache_dir=cache, url=archive.url)
    assert prf.folder == cache / "Sectors1_2_3" / "cam1_ccd4"
    prf = load_prf("archive", 5, 2, 1, cache_dir=cache, url=archive.url)
    assert prf.folder == cache / "Sectors4+" / "cam2_ccd1"
    assert resolve_prf_dir("archive", 5, 2, 1, cache_dir=cache, url=archive.url) == str(cache)
    assert resolve_prf_dir("/some/folder", 5, 2, 1) == "/some/folder"
    assert resolve_prf_dir(None, 5, 2, 1) is None
    # The environment, and the default cache under $XDG_CACHE_HOME.
    monkeypatch.setenv(pd.URL_ENV, archive.url)
    default = tmp_path / "xdg" / "tessphot" / "prf"
    assert PRFArchive().cache() == default
    assert archive_prf_dir(3, 1, 4) == default
    assert (default / "Sectors1_2_3" / "cam1_ccd4").is_dir()
    monkeypatch.setenv(pd.CACHE_ENV, str(tmp_path / "env-cache"))
    assert PRFArchive().cache() == tmp_path / "env-cache"
    assert PRFArchive(cache_dir=str(cache)).cache() == cache
    settings = PRFArchive.from_settings({"prf_cache": "", "prf_url": "http://mirror/prf"})
    assert settings.cache() == tmp_path / "env-cache"
    assert settings.base_url() == "http://mirror/prf/"


def test_photometry_setting_archive(archive, tmp_path):
    """``[photometry] prf_dir = "archive"`` with ``prf_cache``/``prf_url``; and a prepared
    file recording the cache folder is read from it."""
    from tessphot.photometry.scene import ccd_prf

    cache = str(tmp_path / "cache")
    prf = ccd_prf("{}", "archive", 5, 2, 1, prf_cache=cache, prf_url=archive.url)
    assert prf.short_name == "SPOC Sectors4+ cam2_ccd1"
    recorded = ccd_prf(json.dumps({"prf": cache}), "", 6, 2, 1)
    assert recorded.short_name == prf.short_name


def test_prepare_records_the_cache_folder(archive, tmp_path):
    """``tessphot prepare --prf-dir archive`` downloads into the cache and records the
    folder, so that photometry finds the same PRF."""
    from tessphot.config.simulate import SimulationConfig
    from tessphot.evaluation.simulate.sector import simulate_sector
    from tessphot.prepare.run import prepare_ccd

    folder = tmp_path / "input"
    config = SimulationConfig(sector=2, camera=1, ccd=4, size=24, cadences=3, stars=5, bright=0)
    simulate_sector(config, folder, progress=False)
    cache = tmp_path / "cache"
    out = prepare_ccd(
        folder,
        2,
        1,
        4,
        workers=1,
        prf_dir="archive",
        prf_cache=str(cache),
        prf_url=archive.url,
        progress=False,
    )
    import h5py

    with h5py.File(out, "r") as h5:
        assert json.loads(h5.attrs["settings"])["prf"] == str(cache)
    assert len(list((cache / "Sectors1_2_3" / "cam1_ccd4").glob("*.fits"))) == 25


def test_cli_prf_download(archive, tmp_path, capsys):
    from tessphot import cli

    cache = tmp_path / "cache"
    argv = ["-q", "prf-download", "--sector", "2", "--sector", "5", "--camera", "1"]
    argv += ["--ccd", "4", "--cache", str(cache), "--url", archive.url]
    assert cli.main(argv) == cli.EXIT_ERROR  # start_s0004/cam1_ccd4 is not served
    err = capsys.readouterr().err
    assert "tessphot prf-download: error:" in err and "start_s0004/cam1_ccd4/" in err
    assert len(list((cache / "Sectors1_2_3" / "cam1_ccd4").glob("*.fits"))) == 25

    archive.requests.clear()
    argv = ["-q", "prf-download", "--sector", "3", "--camera", "1", "--ccd", "4"]
    assert cli.main([*argv, "--cache", str(cache), "--url", archive.url]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert f"Sectors1_2_3 camera 1 CCD 4: 25 files in {cache / 'Sectors1_2_3' / 'cam1_ccd4'}" in out
    assert f"--prf-dir {cache}" in out
    assert archive.requests == []  # all in the cache already

    # The settings give the cache and the URL.
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[photometry]\nprf_cache = "{tmp_path / "set-cache"}"\nprf_url = "{archive.url}"\n'
    )
    argv = ["prf-download", "--sector", "9", "--camera", "2", "--ccd", "1", "-q"]
    assert cli.main([*argv, "--settings", str(settings)]) == cli.EXIT_OK
    assert (tmp_path / "set-cache" / "Sectors4+" / "cam2_ccd1").is_dir()
    assert "--prf-dir archive)" in capsys.readouterr().out


def test_cli_help_names_the_archive(capsys):
    from tessphot import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["prf-download", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert pd.PRF_URL in out and pd.CACHE_ENV in out and pd.URL_ENV in out
    assert "start_s0001/" in out and "--prf-dir archive" in out
