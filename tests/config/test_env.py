"""Environment variables: read in tessphot.env only, at call time; one cache folder."""

from __future__ import annotations

import re
from pathlib import Path

import tessphot
from tessphot import env
from tessphot.catalog.sources.mast import default_cache_dir
from tessphot.paths import demo_folder
from tessphot.prf.cache import PRFArchive
from tessphot.timing import TimingSettings

SRC = Path(tessphot.__file__).parent


def test_the_environment_is_read_in_env_only():
    pattern = re.compile(r"\bos\.environ\b|\bos\.getenv\b|\bgetenv\(|\bputenv\(")
    offenders = [
        f"{path.relative_to(SRC)}:{n}"
        for path in SRC.rglob("*.py")
        if path.name != "env.py" or path.parent != SRC
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_one_cache_folder(tmp_path, monkeypatch):
    for variable in (env.PRF_CACHE, env.EPHEMERIS_CACHE, env.MAST_CACHE, env.DEMO):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    root = tmp_path / "tessphot"
    assert PRFArchive().cache() == root / "prf"
    assert TimingSettings().cache() == root / "ephemeris"
    assert default_cache_dir() == root / "mast"
    assert demo_folder() == root / "demo"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert env.cache_folder("prf") == Path.home() / ".cache" / "tessphot" / "prf"
    monkeypatch.setenv(env.MAST_CACHE, str(tmp_path / "own"))
    assert default_cache_dir() == tmp_path / "own"


def test_values_are_read_at_call_time(monkeypatch):
    monkeypatch.setenv(env.EPHEMERIS, f"/a{__import__('os').pathsep}/b")
    assert env.paths(env.EPHEMERIS) == [Path("/a"), Path("/b")]
    monkeypatch.setenv(env.KILL_STARID, "1, 2,")
    assert env.starids(env.KILL_STARID) == {1, 2}
    monkeypatch.setenv(env.DB_TABLE, "")
    assert env.value(env.DB_TABLE) is None
