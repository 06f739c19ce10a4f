"""``tessphot prf-download``: download the SPOC PRF models of a sector from MAST."""

from __future__ import annotations

import argparse

from tessphot.cli.common import (
    EXIT_OK,
    add_camera_ccd,
    add_common,
    load_cli_settings,
)
from tessphot.prf.cache import CACHE_ENV, PRF_URL, URL_ENV, PRFArchive, prf_epoch


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``prf-download`` on the subcommands of the ``tessphot`` parser."""
    p = sub.add_parser(
        "prf-download",
        help="download the SPOC PRF models of a sector's cameras and CCDs from MAST",
        description=(
            "Download the real SPOC PRF models (25 FITS files per CCD) valid for a sector "
            f"from the MAST archive ({PRF_URL}; sub-folders start_s0001/ for sectors 1-3 and "
            "start_s0004/ for sectors 4 on) into the cache, laid out as "
            "<cache>/Sectors1_2_3/camC_ccdD/ and <cache>/Sectors4+/camC_ccdD/. Files already "
            "in the cache are kept (an interrupted download resumes). Afterwards give the "
            "cache as --prf-dir, or --prf-dir archive (or [photometry] prf_dir = 'archive'), "
            "which also downloads what is missing on the fly. Do this ahead of a run on a "
            "machine without network."
        ),
    )
    add_common(p)
    p.add_argument(
        "--sector",
        type=int,
        action="append",
        required=True,
        help="sector whose PRF models to download (repeatable)",
    )
    add_camera_ccd(p)
    p.add_argument(
        "--cache",
        metavar="DIR",
        help=f"the cache folder (default [photometry] prf_cache, ${CACHE_ENV}, "
        "else ~/.cache/tessphot/prf)",
    )
    p.add_argument(
        "--url",
        help=f"the archive's folder of PRF models, e.g. a mirror (default [photometry] prf_url, "
        f"${URL_ENV}, else {PRF_URL})",
    )
    p.set_defaults(func=cmd_prf_download)


def cmd_prf_download(args: argparse.Namespace) -> int:
    """Run ``tessphot prf-download``."""
    # The download loads astropy and tqdm: imported when the command runs (fast start-up).
    from tessphot.prf.download import download_prf

    configured = PRFArchive.from_settings(load_cli_settings(args)["photometry"])
    archive = PRFArchive(
        url=args.url or configured.url, cache_dir=args.cache or configured.cache_dir
    )
    cache = archive.cache()
    epochs = sorted({prf_epoch(s): s for s in args.sector}.items(), key=lambda e: e[1])
    for epoch, sector in epochs:
        for camera in sorted(set(args.camera or (1, 2, 3, 4))):
            for ccd in sorted(set(args.ccd or (1, 2, 3, 4))):
                folder = download_prf(
                    sector, camera, ccd, cache, url=archive.base_url(), progress=not args.quiet
                )
                n = sum(1 for _ in folder.glob("*prf*.fits"))
                print(f"{epoch} camera {camera} CCD {ccd}: {n} files in {folder}")
    if cache == configured.cache():
        also = "or --prf-dir archive"
    else:
        also = f"or --prf-dir archive with ${CACHE_ENV}={cache}"
    print(f"SPOC PRF models in {cache}: use --prf-dir {cache} ({also})")
    return EXIT_OK
