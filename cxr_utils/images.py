"""Reading image files: headers without pixels, integrity checks, and pixels as grayscale.

Copies found in the wild hold CMYK JPEGs, 16-bit or palette PNGs renamed ``.jpeg``,
EXIF-rotated photos of films, truncated downloads, zero-byte files: the functions here
name such a file's problem instead of crashing on it or silently skipping it.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "ImageReadError",
    "read_header",
    "pixel_problem",
    "decode_problem",
    "find_integrity_problem",
    "file_sha256",
    "load_grayscale",
    "load_rgb",
    "RESIZE_POLICIES",
    "resize_image",
]

#: The most pixels an image may have: about 7 times the largest official image (2916 x 2583,
#: 7.5 million). Larger files are listed as problems from their header and never decoded: a
#: 30000 x 30000 JPEG of 10 MB, or a 13000 x 13000 16-bit PNG of a few hundred kB, would
#: take gigabytes of memory to decode.
MAX_PIXELS = 50_000_000

#: How an image of any aspect ratio becomes a square: see :func:`resize_image`.
RESIZE_POLICIES = ("squash", "pad", "crop")

# The byte sequences a complete file ends with: JPEG's end-of-image marker, PNG's IEND chunk.
_JPEG_END = b"\xff\xd9"
_PNG_END = b"IEND\xaeB`\x82"
_EXIF_ORIENTATION_TAG = 0x0112


class ImageReadError(OSError):
    """An image file that cannot be read: empty, not an image, truncated or corrupt."""


@dataclass(frozen=True)
class _ImageHeader:
    """What an image file's header says, read without decoding the pixels.

    ``width`` and ``height`` are in pixels as stored (before any EXIF rotation);
    ``mode`` is Pillow's mode (``"L"`` 8-bit gray, ``"RGB"``, ``"CMYK"``,
    ``"I;16"`` 16-bit gray, ``"P"`` palette ...); ``format`` is the real file format
    (``"JPEG"``, ``"PNG"``) whatever the suffix says; ``exif_orientation`` is the
    EXIF orientation tag, 1 (upright) when absent.
    """

    width: int
    height: int
    mode: str
    format: str
    exif_orientation: int


def read_header(path: str | os.PathLike) -> _ImageHeader:
    """An image's size, mode and format from its header alone (Pillow's lazy ``Image.open``: one small read).

    Raises :class:`ImageReadError` if the file is empty, not an image Pillow recognises, or its header is damaged.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow refuses or warns about very large images itself; the course's own limit
            # (pixel_problem) names them as problems instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = _open_unchecked(path)
        with image:
            orientation = int(image.getexif().get(_EXIF_ORIENTATION_TAG, 1) or 1)
            return _ImageHeader(image.width, image.height, image.mode, str(image.format), orientation)
    except UnidentifiedImageError as error:
        raise ImageReadError(f"{path}: not an image Pillow can read") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f"{path}: damaged header ({error})") from error


def _open_unchecked(path: Path) -> Image.Image:
    """``Image.open`` without Pillow's decompression-bomb error: the header alone is read."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        return Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def pixel_problem(width: int, height: int) -> str | None:
    """A one-line problem when an image has more than :data:`MAX_PIXELS` pixels, else ``None``."""
    if width * height > MAX_PIXELS:
        return (
            f"too many pixels: {width}x{height} is {width * height / 1e6:.0f} million, over the limit of "
            f"{MAX_PIXELS / 1e6:.0f} million (not decoded)"
        )
    return None


def decode_problem(path: str | os.PathLike) -> str | None:
    """Decode an image fully (a cost the header checks avoid); a one-line problem when that fails, else ``None``."""
    try:
        load_grayscale(path)
    except ImageReadError as error:
        return f"cannot be decoded: {str(error).split(': ', 1)[-1]}"
    return None


def find_integrity_problem(path: str | os.PathLike, image_format: str) -> str | None:
    """A one-line problem when a JPEG or PNG file is cut short, else ``None``; as a rule without decoding it.

    A complete JPEG holds the end-of-image marker ``FF D9`` after its image data: usually as
    its last two bytes (trailing zero padding allowed), all that is read; otherwise the file
    is read whole and the marker looked for after the start of the first scan (data appended
    by phones and PACS viewers follows it; a thumbnail's own marker, before the scan, does not
    count). A JPEG without it is decoded once before it is called truncated: an image that
    decodes is never a problem. A complete PNG ends with its ``IEND`` chunk. Other formats are
    not checked.
    """
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 64))
        tail = handle.read()
    if image_format == "JPEG" and not tail.rstrip(b"\x00").endswith(_JPEG_END):
        if _jpeg_end_after_scan(Path(path).read_bytes()) or decode_problem(path) is None:
            return None
        return "truncated: the JPEG end-of-image marker (FF D9) is missing"
    if image_format == "PNG" and not tail.endswith(_PNG_END):
        return "truncated: the PNG IEND chunk is missing"
    return None


def _jpeg_end_after_scan(data: bytes) -> bool:
    """Whether a JPEG's bytes hold the end-of-image marker after the start of its first scan.

    Segments are skipped by their lengths (an embedded thumbnail, with its own ``FF D9``, is
    inside one) up to the first start-of-scan ``FF DA``; in the compressed data after it ``FF``
    is followed by ``00`` or a restart marker only, so the first ``FF D9`` there is the end.
    """
    position = 2  # after FF D8
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # a fill byte before a marker
            position += 1
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xDA:
            return data.find(_JPEG_END, position + 2 + length) != -1
        position += 2 + length
    return False


def file_sha256(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes, as 64 lowercase hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def load_grayscale(path: str | os.PathLike, *, min_side: int | None = None) -> np.ndarray:
    """An image decoded into one 8-bit gray channel, upright: shape ``(height, width)``, dtype ``uint8``.

    EXIF rotation is applied. RGB, CMYK, palette and alpha images are converted with
    Pillow's luminance formula (an RGB X-ray with three equal channels comes back
    unchanged); 16-bit images (``I;16``, ``I``) keep their high byte, without stretching.
    With ``min_side`` (for a caller that shrinks the image anyway) a JPEG is decoded by
    libjpeg at 1/2, 1/4 or 1/8 scale (Pillow's ``draft`` mode) as long as both sides stay
    at least ``min_side`` pixels: several times faster on full-resolution X-rays.

    Raises :class:`ImageReadError` if the file is empty, not an image, truncated or otherwise undecodable.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as image:
            too_many = pixel_problem(image.width, image.height)
            if too_many:
                raise ImageReadError(f"{path}: {too_many}")
            if min_side is not None and image.format == "JPEG":
                image.draft("L", (min_side, min_side))
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
                wide = np.asarray(image, dtype=np.int64)
                return np.clip(wide >> 8, 0, 255).astype(np.uint8)
            if image.mode == "F":
                return np.clip(np.asarray(image), 0, 255).astype(np.uint8)
            if image.mode != "L":
                image = image.convert("L")
            return np.asarray(image, dtype=np.uint8)
    except UnidentifiedImageError as error:
        raise ImageReadError(f"{path}: not an image Pillow can read") from error
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"{path}: cannot decode ({error})") from error


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image decoded as three 8-bit channels, upright: shape ``(height, width, 3)``, dtype ``uint8``.

    For checking whether RGB files hold colour; raises :class:`ImageReadError` as :func:`load_grayscale`.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.uint8)
    except UnidentifiedImageError as error:
        raise ImageReadError(f"{path}: not an image Pillow can read") from error
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"{path}: cannot decode ({error})") from error


def resize_image(pixels: np.ndarray, size: int, policy: str = "squash") -> np.ndarray:
    """A gray ``uint8`` image ``(height, width)`` made square, ``(size, size)``, by one of three policies.

    ``"squash"`` resizes width and height independently: the whole image is kept, its aspect
    ratio is not. ``"pad"`` resizes the longer side to ``size``, keeping the aspect ratio, and
    pads the shorter one with black (0) equally on both sides. ``"crop"`` resizes the shorter
    side to ``size`` and cuts the centre square: the edges of the longer side are lost.
    Resampling is Pillow's bilinear filter (antialiased when shrinking).

    Raises ValueError for an unknown policy, a non-2-D array or a size below 1.
    """
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"unknown resize policy {policy!r}; choose one of {RESIZE_POLICIES}")
    if pixels.ndim != 2:
        raise ValueError(f"expected a (height, width) gray image, got shape {pixels.shape}")
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), "L")
    height, width = pixels.shape
    bilinear = Image.Resampling.BILINEAR
    if policy == "squash":
        return np.asarray(image.resize((size, size), bilinear))
    if policy == "pad":
        scale = size / max(width, height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        canvas = Image.new("L", (size, size), 0)
        canvas.paste(image.resize((new_w, new_h), bilinear), ((size - new_w) // 2, (size - new_h) // 2))
        return np.asarray(canvas)
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(image.resize((new_w, new_h), bilinear).crop((left, top, left + size, top + size)))
