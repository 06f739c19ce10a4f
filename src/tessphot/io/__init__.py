"""Readers of TESS data products."""

from tessphot.io.errors import FFIError, TessphotError
from tessphot.io.ffi import FFIImage, read_ffi, read_ffi_header
from tessphot.io.files import FFI_NAME_PATTERN, FFIName, parse_ffi_name
from tessphot.io.recognise import InputFile, Kind, LeftOut, find_ffis, recognise, scan

__all__ = [
    "FFIError",
    "FFIImage",
    "FFIName",
    "FFI_NAME_PATTERN",
    "InputFile",
    "Kind",
    "LeftOut",
    "TessphotError",
    "find_ffis",
    "parse_ffi_name",
    "read_ffi",
    "read_ffi_header",
    "recognise",
    "scan",
]
