"""The IDX file format of MNIST and Fashion-MNIST: reading, checking and writing one file.

An IDX file is a header followed by the values in row-major order:
- bytes 0-1: zero; byte 2: the value type (0x08: unsigned byte, the only one used here);
  byte 3: the number of dimensions d. Images are 0x00000803 (N x H x W), labels 0x00000801 (N).
- then d big-endian 32-bit sizes, then prod(sizes) values.
Files may be gzip-compressed (as distributed: ``train-images-idx3-ubyte.gz``) or not; which one a file
is, is told by its first bytes, not its name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import pathlib
import struct
import zlib
from typing import Optional

import numpy as np

from sparsebench.errors import DataError

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"

REPLACE = "delete it so that it is downloaded again, or replace it with an intact copy"


def read_bytes(path: pathlib.Path) -> bytes:
    """The file's content, decompressed when it is a gzip file; DataError naming the file if that fails."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
        if data[:2] == GZIP_MAGIC:
            data = gzip.decompress(data)
    except EOFError:
        raise DataError(f"{path} is a truncated gzip file (it ends before its end marker); {REPLACE}") from None
    except (gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"{path} is a damaged gzip file ({_one_line(error)}); {REPLACE}") from None
    except OSError as error:
        raise DataError(f"cannot read {path} ({_one_line(error)}); check that it is a readable file") from None
    return data


def parse(data: bytes, path: pathlib.Path, magic: int) -> np.ndarray:
    """The array held by the decompressed IDX bytes ``data`` (read from ``path``), which must have ``magic``.

    The array is read-only and shares memory with ``data``.
    """
    kind = "images" if magic == IMAGES_MAGIC else "labels" if magic == LABELS_MAGIC else "IDX"
    ndim = magic & 0xFF
    if len(data) < 4:
        raise DataError(f"{path} holds {len(data)} bytes, too few for an IDX header; {REPLACE}")
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        raise DataError(f"{path} is not an IDX {kind} file: its magic number is 0x{found:08X}, expected "
                        f"0x{magic:08X}; check that the file is the right one, or {REPLACE}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated: {len(data)} bytes, fewer than its {header}-byte header; {REPLACE}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    count = math.prod(dims)
    held = len(data) - header
    if held != count:
        sizes = " x ".join(str(d) for d in dims)
        what = "is truncated" if held < count else "has trailing bytes"
        raise DataError(f"{path} {what}: its header announces {sizes} {kind} values ({count} bytes) but the file "
                        f"holds {held} bytes after the header; {REPLACE}")
    return np.frombuffer(data, dtype=np.uint8, count=count, offset=header).reshape(dims)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def read(path: pathlib.Path, magic: int, content_md5: Optional[str] = None) -> np.ndarray:
    """Read and check one IDX file (``.gz`` or raw); ``content_md5``: md5 its decompressed bytes must have."""
    data = read_bytes(path)
    array = parse(data, path, magic)
    if content_md5:
        found = md5_hex(data)
        if found != content_md5.lower():
            raise DataError(f"{path} has the right structure but not the expected content: the md5 of its "
                            f"decompressed bytes is {found}, dataset.content_md5 expects {content_md5}; "
                            f"{REPLACE}")
    return array


def read_images(path: pathlib.Path, content_md5: Optional[str] = None) -> np.ndarray:
    """N x H x W uint8 images."""
    return read(path, IMAGES_MAGIC, content_md5)


def read_labels(path: pathlib.Path, content_md5: Optional[str] = None) -> np.ndarray:
    """N uint8 labels."""
    return read(path, LABELS_MAGIC, content_md5)


def encode(array: np.ndarray) -> bytes:
    """The raw (uncompressed) IDX bytes of a uint8 array with 1 to 3 dimensions."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 3:
        raise ValueError(f"IDX files here hold uint8 arrays with 1 to 3 dimensions, not {array.dtype} {array.shape}")
    header = struct.pack(f">I{array.ndim}I", (UBYTE << 8) | array.ndim, *array.shape)
    return header + array.tobytes()


def gzip_bytes(data: bytes) -> bytes:
    """Reproducible gzip: no file name, no time stamp (mtime=0), maximal compression."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as stream:
        stream.write(data)
    return buffer.getvalue()


def write(path: pathlib.Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed (reproducibly) when the name ends with ``.gz``."""
    path = pathlib.Path(path)
    data = encode(array)
    path.write_bytes(gzip_bytes(data) if path.name.endswith(".gz") else data)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
