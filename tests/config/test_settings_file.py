"""Settings, folders and logging."""

from __future__ import annotations

import logging

import pytest

from tessphot.config import DEFAULTS, SettingsError, load_settings
from tessphot.logs import TqdmLoggingHandler, setup_logging
from tessphot.paths import demo_folder, input_folder, output_folder


def test_defaults_and_override(tmp_path):
    assert load_settings()["todo"]["faint_limit"] == 15.0
    path = tmp_path / "s.toml"
    path.write_text("[todo]\nfaint_limit = 14.0\n")
    settings = load_settings(path)
    assert settings["todo"]["faint_limit"] == 14.0
    assert DEFAULTS["todo"]["faint_limit"] == 15.0  # the defaults are not modified


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[nope]\na = 1\n", "unknown settings table"),
        ("[todo]\nfaint = 1\n", "unknown setting"),
        ("[todo\n", "not valid TOML"),
    ],
)
def test_bad_settings_files(tmp_path, text, message):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=message) as exc:
        load_settings(path)
    assert str(path) in str(exc.value)
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "missing.toml")


def test_settings_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text("[simulate]\nseed = 99\n")
    monkeypatch.setenv("TESSPHOT_SETTINGS", str(path))
    assert load_settings()["simulate"]["seed"] == 99


def test_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("TESSPHOT_INPUT", raising=False)
    monkeypatch.delenv("TESSPHOT_OUTPUT", raising=False)
    with pytest.raises(ValueError, match="TESSPHOT_INPUT"):
        input_folder()
    with pytest.raises(NotADirectoryError):
        input_folder(tmp_path / "missing")
    monkeypatch.setenv("TESSPHOT_INPUT", str(tmp_path))
    assert input_folder() == tmp_path
    (tmp_path / "todo.sqlite").touch()
    assert input_folder(tmp_path / "todo.sqlite") == tmp_path  # a file means its folder
    assert output_folder(tmp_path) == tmp_path / "lightcurves"
    monkeypatch.setenv("TESSPHOT_OUTPUT", str(tmp_path / "lc"))
    assert output_folder(tmp_path) == tmp_path / "lc"
    assert output_folder(tmp_path, tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("TESSPHOT_DEMO", str(tmp_path / "demo"))
    assert demo_folder() == tmp_path / "demo"


def test_logging_levels():
    assert setup_logging().level == logging.INFO
    assert setup_logging(debug=True).level == logging.DEBUG
    logger = setup_logging(quiet=True)
    assert logger.level == logging.WARNING
    # Calling it again replaces our handler instead of adding one.
    assert sum(isinstance(h, TqdmLoggingHandler) for h in logger.handlers) == 1
