"""Tests of recognising input files by their content, on real files renamed and damaged."""

from __future__ import annotations

import gzip
import logging
import shutil
import warnings
from pathlib import Path

import pytest

from tessphot.io.fits_headers import read_headers
from tessphot.io.recognise import (
    InputFile,
    Kind,
    LeftOut,
    find_cutouts,
    find_ffis,
    find_tpfs,
    recognise,
    scan,
)
from tessphot.io.tesscut import TESScutError, read_cutout
from tessphot.io.tpf import TPFError, read_tpf

TPF = "tpf/tess25155310-s01-first-cadences.fits.gz"
CUTOUT_6X6 = "tesscut/tess-s0001-4-2_84.291190_-80.469170_6x6_astrocut.fits"
CUTOUT_5X5 = "tesscut/tess-s0001-4-3_107.27_-70.0_5x5_astrocut.fits"
FFI = "ffi/tess2018206192942-s0001-1-4-0120-s_ffic.fits"
SPOC_LC = "lightcurves/tess2018206045859-s0001-0000000025155310-0120-s_lc.fits.gz"
TASOC_LC = (
    "lightcurves/hlsp_tasoc_tess_ffi_tic00261136679-s0001-cam4-ccd2-c1800_tess_v05_ens-lc.fits"
)
ELEANOR_LC = "lightcurves/hlsp_gsfc-eleanor-lite_tess_ffi_s0001-0000000261136679_tess_v1.0_lc.fits"
CBV = "reference/tess2019085135100-s0010-2-4-0140-s_cbv.fits"
#: Layout of the real TPF (uncompressed): PIXELS header at 5760, its data from 25920 (12240
#: bytes = 5 rows of 2448, padded to 14400), APERTURE header at 40320, TARGET COSMIC RAY
#: header at 48960, end at 51840.
PIXELS_HEADER, PIXELS_DATA, APERTURE_HEADER = 5760, 25920, 40320


@pytest.fixture(scope="module")
def tpf_bytes(test_data) -> bytes:
    """The real TPF, uncompressed."""
    return gzip.decompress((test_data / TPF).read_bytes())


def _replace_card(raw: bytes, keyword: bytes, card: bytes, start: int) -> bytes:
    """``raw`` with the first card of ``keyword`` after ``start`` replaced by ``card``."""
    at = raw.index(keyword.ljust(8), start)
    return raw[:at] + card.ljust(80) + raw[at + 80 :]


@pytest.fixture(scope="module")
def mixed(test_data, tpf_bytes, tmp_path_factory) -> tuple[Path, dict[str, object]]:
    """A folder as users bring it, and what each file is.

    Real products under browser, astroquery and made-up names; light curves and a CBV file;
    damaged copies: truncated, a damaged header, zeroed, empty.
    """
    folder = tmp_path_factory.mktemp("mixed")
    data = test_data
    expected: dict[str, object] = {}

    def copy(source: str, name: str, what) -> None:
        shutil.copy(data / source, folder / name)
        expected[name] = what

    def write(name: str, raw: bytes, what) -> None:
        (folder / name).write_bytes(raw)
        expected[name] = what

    write("download.fits", tpf_bytes, (Kind.TPF, 1, 4, 1, 120))
    copy(TPF, "tpf", (Kind.TPF, 1, 4, 1, 120))
    copy(CUTOUT_6X6, "cutout(1).fits", (Kind.CUTOUT, 1, 4, 2, 1800))
    copy(CUTOUT_5X5, "astroquery_cache_1f3a", (Kind.CUTOUT, 1, 4, 3, None))
    # A cutout under a TPF's name: the headers win.
    copy(CUTOUT_5X5, "tess2018206045859-s0001-0000000025155310-0120-s_tp.fits", Kind.CUTOUT)
    write("frame.fits.gz", gzip.compress((data / FFI).read_bytes()), (Kind.FFI, 1, 1, 4, 1800))
    copy(FFI, Path(FFI).name, (Kind.FFI, 1, 1, 4, None))  # by its SPOC name
    # An FFI with its pixels cut short stays an FFI: prepare keeps its cadence, flagged.
    write("ffi_cut.fits", (data / FFI).read_bytes()[:-3000], (Kind.FFI, 1, 1, 4, 1800))
    copy(SPOC_LC, "lc.fits.gz", ("light curve", "a SPOC light curve"))
    copy(TASOC_LC, "tasoc.fits", ("light curve", "a TASOC light curve"))
    copy(ELEANOR_LC, "eleanor.fits", ("light curve", "an eleanor light curve"))
    copy(CBV, "cbv.fits", ("cbv", "a cotrending basis vector (CBV) file"))
    write(
        "truncated.fits",
        tpf_bytes[: PIXELS_DATA + 4000],
        ("truncated", "truncated: HDU 1 (PIXELS) needs 12,240 bytes of data, the file ends "
         "after 4,000 of them (a target pixel file of TIC 25155310)"),
    )  # fmt: skip
    write(
        "truncated_tp.fits.gz",
        (data / TPF).read_bytes()[:6000],
        ("truncated", "truncated: the gzip stream is cut short or corrupt"),
    )
    noise = bytes(range(128, 228))
    write(
        "binary_header.fits",
        tpf_bytes[: PIXELS_HEADER + 800] + noise + tpf_bytes[PIXELS_HEADER + 900 :],
        ("corrupt header", "corrupt header: the header of HDU 1 holds non-text bytes"),
    )
    write(
        "bad_naxis.fits",
        _replace_card(tpf_bytes, b"NAXIS2", b"NAXIS2  = 'five'", PIXELS_HEADER),
        ("corrupt header", "corrupt header: the header of HDU 1 has no readable BITPIX/NAXISn"),
    )
    write(
        "zeroed_tail.fits",
        tpf_bytes[:APERTURE_HEADER] + bytes(len(tpf_bytes) - APERTURE_HEADER),
        ("zeroed", "zeroed: its bytes are all zero from byte 40,320 on (where HDU 2 should start)"),
    )
    write("zeroed.fits", bytes(len(tpf_bytes)), ("zeroed", "zeroed: its bytes are all zero"))
    write("empty.fits", b"", ("empty", "the file is empty"))
    write("notes.fits", b"these are my notes\n" * 200, ("not FITS", "not a FITS file"))
    (folder / "notes.txt").write_text("not FITS and not named so: passed over in silence")
    return folder, expected


def _check(found, what) -> None:
    if isinstance(what, Kind):
        assert isinstance(found, InputFile) and found.kind is what
    elif isinstance(what[0], Kind):
        assert isinstance(found, InputFile), found
        assert (found.kind, found.sector, found.camera, found.ccd, found.cadence) == what
    else:
        assert isinstance(found, LeftOut), found
        assert found.reason == what[0]
        assert found.detail.startswith(what[1]), found.detail


def test_every_file_recognised_or_left_out_with_its_reason(mixed):
    folder, expected = mixed
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no astropy warning reaches the user
        for name, what in expected.items():
            _check(recognise(folder / name), what)


def test_details_of_renamed_products(mixed):
    folder, _ = mixed
    tpf = recognise(folder / "download.fits")
    assert tpf.starid == 25155310 and not tpf.by_name
    cutout = recognise(folder / "cutout(1).fits")
    assert (cutout.ra, cutout.dec) == (84.29119, -80.46917)
    assert cutout.tag == "84.291190_-80.469170_6x6"  # from the headers: the name says nothing
    # SECTOR is blank in the early 5x5 cutout: the sector comes from its times.
    assert recognise(folder / "astroquery_cache_1f3a").sector == 1
    # An FFI under its SPOC name is trusted after the cheap check, without reading headers.
    assert recognise(folder / Path(FFI).name).by_name


def test_scan_logs_one_line_per_file_left_out_and_counts(mixed, caplog):
    folder, expected = mixed
    sub = folder.parent / (folder.name + "_scan")
    shutil.copytree(folder, sub)  # fresh paths: each is logged once per process
    with caplog.at_level(logging.DEBUG, logger="tessphot"), warnings.catch_warnings():
        warnings.simplefilter("error")
        inventory = scan(sub)
        again = scan(sub)
    left = [n for n, w in expected.items() if not isinstance(w, Kind) and isinstance(w[0], str)]
    assert sorted(item.path.name for item in inventory.left_out) == sorted(left)
    lines = [r for r in caplog.records if r.name == "tessphot.io.recognise"]
    assert sorted(r.getMessage().split(": left out: ")[0] for r in lines) == sorted(
        str(sub / name) for name in left
    )
    damaged = {"truncated", "corrupt header", "zeroed", "empty", "not FITS"}
    for record in lines:
        item = next(i for i in inventory.left_out if str(i.path) in record.getMessage())
        assert record.levelno == (logging.WARNING if item.reason in damaged else logging.INFO)
    assert again.left_out == inventory.left_out and again.found == inventory.found
    assert len(inventory.found) == 8
    assert inventory.left_out_counts() == (
        "3 light curves, 2 files with a corrupt header, 2 truncated files, 2 zeroed files, "
        "1 cotrending (CBV) file, 1 empty file, 1 non-FITS file named .fits"
    )


def test_finders_use_the_content(mixed):
    folder, _ = mixed
    assert [p.name for p in find_tpfs(folder)] == ["download.fits", "tpf"]
    assert [p.name for p in find_tpfs(folder, starid=25155310, cadence=120)] == [
        "download.fits",
        "tpf",
    ]
    assert [p.name for p in find_cutouts(folder, ccd=3)] == [
        "astroquery_cache_1f3a",
        "tess2018206045859-s0001-0000000025155310-0120-s_tp.fits",
    ]
    assert [p.name for p in find_ffis(folder, sector=1, camera=1, ccd=4)] == [
        "ffi_cut.fits",
        "frame.fits.gz",
        Path(FFI).name,
    ]


def test_readers_report_the_damage_as_found(mixed):
    folder, _ = mixed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TPFError, match=r"truncated.fits: truncated: HDU 1 \(PIXELS\)"):
            read_tpf(folder / "truncated.fits")
        with pytest.raises(TPFError, match="corrupt header: the header of HDU 1"):
            read_tpf(folder / "binary_header.fits")
        with pytest.raises(TPFError, match="zeroed"):
            read_tpf(folder / "zeroed_tail.fits")
        with pytest.raises(TPFError, match="not a target pixel file: a SPOC light curve"):
            read_tpf(folder / "lc.fits.gz")
        with pytest.raises(TPFError, match="not a target pixel file: a TESScut cutout"):
            read_tpf(folder / "cutout(1).fits")
        with pytest.raises(TESScutError, match="zeroed: its bytes are all zero"):
            read_cutout(folder / "zeroed.fits")
        assert read_tpf(folder / "tpf").starid == 25155310
        cutout = read_cutout(folder / "cutout(1).fits")
    assert cutout.name.tag == "84.291190_-80.469170_6x6" and cutout.flux.shape == (50, 6, 6)


def _unparsable_card(raw: bytes, keyword: bytes) -> bytes:
    """``raw`` with the card of ``keyword`` given a string value without its closing quote."""
    at = raw.index(keyword.ljust(8))
    return raw[:at] + (keyword.ljust(8) + b"= 'broken").ljust(80) + raw[at + 80 :]


def test_an_unparsable_card_is_a_corrupt_header(test_data, tpf_bytes, tmp_path):
    from tessphot.io import FFIError, read_ffi

    ffi = tmp_path / "ffi.fits"
    ffi.write_bytes(_unparsable_card((test_data / FFI).read_bytes(), b"FILEVER"))
    tpf = tmp_path / "tpf.fits"
    tpf.write_bytes(_unparsable_card(tpf_bytes, b"TIMEPIXR"))  # a card of the PIXELS header
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert recognise(ffi).kind is Kind.FFI and recognise(tpf).kind is Kind.TPF
        with pytest.raises(FFIError, match="corrupt header: the card of FILEVER cannot be parsed"):
            read_ffi(ffi)
        with pytest.raises(TPFError, match="tpf.fits: corrupt header: Unparsable card"):
            read_tpf(tpf)


def test_header_walk_of_intact_files(test_data):
    found = read_headers(test_data / TPF)
    assert found.problem is None and found.complete and found.gzipped
    names = [h.get("EXTNAME") for h in found.headers]
    assert names == ["PRIMARY", "PIXELS", "APERTURE", "TARGET COSMIC RAY"]
    shallow = read_headers(test_data / TPF, max_hdus=2)
    assert len(shallow.headers) == 2 and not shallow.complete
