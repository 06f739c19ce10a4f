"""Settings tables: defaults, checks at load, old flat keys."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

from tessphot.config import (
    DEFAULTS,
    PHOTOMETRY_KEYS,
    BackgroundSettings,
    PhotometrySettings,
    Settings,
    SettingsError,
    SimulationConfig,
    TimingSettings,
    load_settings,
    read_settings,
)
from tessphot.config.fields import Table


def _tables(cls=Settings):
    """Every table class reachable from ``cls``."""
    for f in dataclasses.fields(cls):
        kind = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        if isinstance(kind, type) and issubclass(kind, Table):
            yield kind
            yield from _tables(kind)


def test_every_table_loads_its_defaults():
    tables = list(_tables())
    names = {cls.TABLE for cls in tables}
    assert {"photometry.linpsf", "photometry.choice", "prepare.motion", "todo"} <= names
    for cls in tables:
        assert cls.from_mapping(cls().to_dict()) == cls()
    settings = read_settings()
    assert settings == Settings()
    assert load_settings() == DEFAULTS
    assert SimulationConfig.from_mapping(DEFAULTS["simulate"]).seed == 42


def _write(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def test_new_tables_in_a_file(tmp_path):
    path = _write(
        tmp_path,
        "[photometry.linpsf]\nfit_radius = 3.0\n[photometry.choice]\nspill_method = 'halo'\n"
        "[prepare.background]\nbox_size = 16\n",
    )
    settings = read_settings(path)
    assert settings.photometry.linpsf.fit_radius == 3.0
    assert settings.photometry.choice.spill_method == "halo"
    assert settings.prepare.background == BackgroundSettings(box_size=16)
    assert load_settings(path)["photometry"]["linpsf"]["fit_radius"] == 3.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[photometry.linpsf]\nfit_radius = -1\n",
            "invalid setting [photometry.linpsf] fit_radius = -1: must be > 0",
        ),
        (
            "[photometry.psf]\npositions = 'everywhere'\n",
            "invalid setting [photometry.psf] positions = 'everywhere': must be one of "
            "'sector', 'cadence'",
        ),
        (
            "[photometry.choice]\nspill_method = 'psf'\n",
            "[photometry.choice] spill_method = 'psf': must be one of 'linpsf', 'halo'",
        ),
        (
            "[photometry.choice]\nprf_chi2_max = 0.5\n",
            "invalid setting [photometry.choice] prf_chi2_max = 0.5: must be > 1",
        ),
        ("[todo]\nfaint_limit = 'x'\n", "[todo] faint_limit = 'x': must be float, not str"),
        ("[photometry]\ngzip_level = 1.5\n", "[photometry] gzip_level = 1.5: must be int"),
        ("[prepare.motion]\ncalibrate_centroids = 1\n", "must be bool, not int"),
        ("[catalog]\nsource = 'sql'\n", "[catalog] source = 'sql': must be one of"),
        ("[simulate]\njitter = 'wild'\n", "[simulate] jitter = 'wild'"),
        ("[simulate]\norigin = [1, 2]\n", "unknown setting 'origin' in [simulate]"),
        ("[photometry.halo]\nnope = 1\n", "unknown setting 'nope' in [photometry.halo]"),
        ("[photometry]\nlinpsf = 3\n", "[photometry.linpsf] must be a table"),
        ("[timing]\ndownload = 'yes'\n", "[timing] download = 'yes': must be bool"),
    ],
)
def test_one_clear_error_naming_the_key(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(SettingsError) as exc:
        load_settings(path)
    assert message in str(exc.value)
    assert str(exc.value).startswith(f"{path}: ")


def test_checked_when_made_directly():
    with pytest.raises(SettingsError, match=r"\[prepare.background\] box_size = 0: must be >= 1"):
        BackgroundSettings(box_size=0)
    with pytest.raises(SettingsError, match=r"\[photometry.halo\] radius = nan"):
        PhotometrySettings(halo={"radius": float("nan")})
    with pytest.raises(SettingsError, match=r"\[timing\] ephemeris_dirs = \[1\]"):
        TimingSettings(ephemeris_dirs=[1])


def test_old_flat_keys_map_with_a_warning(tmp_path, caplog):
    with pytest.warns(DeprecationWarning, match=r"now \[photometry.linpsf\] fit_radius"):
        settings = PhotometrySettings.from_mapping({"linpsf_fit_radius": 3.0})
    assert settings.linpsf.fit_radius == 3.0
    path = _write(tmp_path, "[photometry]\nhalo_auto_tmag = 5.0\noptimise_aperture = false\n")
    with pytest.warns(DeprecationWarning):
        loaded = read_settings(path)
    assert loaded.photometry.choice.spill_tmag == 5.0
    assert loaded.photometry.aperture.optimise is False
    assert "now [photometry.choice] spill_tmag" in caplog.text  # a file's user is told
    # An old key in code overrides the loaded value; in a file both names are an error.
    with pytest.warns(DeprecationWarning):
        merged = PhotometrySettings.from_mapping({**DEFAULTS["photometry"], "spill_method": "halo"})
    assert merged.choice.spill_method == "halo"
    path = _write(tmp_path, "[photometry]\npsf_drift = false\n[photometry.psf]\ndrift = true\n")
    with pytest.warns(DeprecationWarning), pytest.raises(SettingsError, match="given twice"):
        read_settings(path)


def test_an_invalid_old_key_is_named_as_given():
    with pytest.warns(DeprecationWarning), pytest.raises(SettingsError) as exc:
        PhotometrySettings.from_mapping({"psf_positions": "everywhere"})
    assert str(exc.value).startswith("invalid setting psf_positions = 'everywhere': must be one")
    assert "(now [photometry.psf] positions)" in str(exc.value)


def test_every_old_key_has_a_new_home():
    keys = set(PhotometrySettings.keys())
    for old, (table, key) in PHOTOMETRY_KEYS.items():
        assert f"{table}.{key}" in keys, old
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert PhotometrySettings().linpsf_fit_radius == 4.0  # old attribute, deprecated
    with pytest.raises(AttributeError):
        PhotometrySettings().nonsense  # noqa: B018


def test_records_round_trip():
    settings = PhotometrySettings.from_mapping({"psf": {"positions": "cadence"}})
    assert PhotometrySettings.from_mapping(settings.to_dict()) == settings
    assert TimingSettings.from_mapping({"ephemeris_dirs": "/a"}).to_dict()["ephemeris_dirs"] == [
        "/a"
    ]
