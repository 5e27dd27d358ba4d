"""Evidence files: the type is sniffed from the bytes, images lose every piece of metadata.

A shopper's photo carries GPS coordinates, the phone's make and serial, sometimes a face in a
thumbnail: none of it may reach the server's disk. Images are decoded and re-encoded from their
pixels alone (a fresh image has no ``info``, so no EXIF, XMP, ICC, text chunks or thumbnails);
PDFs are stored as they are after a magic-bytes check.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
# A 10 MB file can still decode to a huge bitmap (decompression bombs): refuse beyond this.
MAX_IMAGE_PIXELS = 40_000_000

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
PDF = "application/pdf"
EXTENSIONS = {JPEG: "jpg", PNG: "png", WEBP: "webp", PDF: "pdf"}
_PILLOW_FORMATS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}


class EvidenceRefused(ValueError):
    """The bytes are not an accepted proof; ``code`` is stable, the message is English."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CleanEvidence:
    media_type: str
    content: bytes
    sha256: str

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.media_type]


def sniff(data: bytes) -> str | None:
    """The media type the bytes really are (JPEG, PNG, WebP or PDF), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data.startswith(b"%PDF-"):
        return PDF
    return None


def _reencode(data: bytes, media_type: str) -> bytes:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                if opened.format != _PILLOW_FORMATS[media_type]:
                    raise EvidenceRefused("invalid_image", "the image does not match its type")
                if opened.width * opened.height > MAX_IMAGE_PIXELS:
                    raise EvidenceRefused("too_many_pixels", "the image is too large in pixels")
                opened.load()
                # Apply the EXIF orientation to the pixels before the EXIF is dropped.
                upright = ImageOps.exif_transpose(opened)
    except EvidenceRefused:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning) as exc:
        raise EvidenceRefused("invalid_image", "the image cannot be read") from exc
    if media_type == JPEG:
        mode = "L" if upright.mode in ("L", "1") else "RGB"
    else:
        mode = "RGBA" if "A" in upright.getbands() or upright.mode == "P" else "RGB"
    pixels = upright.convert(mode)
    # A new image from raw pixels: nothing of the original's info (EXIF, XMP, ICC…) survives.
    clean = Image.frombytes(mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    if media_type == JPEG:
        clean.save(out, "JPEG", quality=88, optimize=True)
    elif media_type == PNG:
        clean.save(out, "PNG", optimize=True)
    else:
        clean.save(out, "WEBP", quality=85)
    return out.getvalue()


def clean_evidence(data: bytes) -> CleanEvidence:
    """Check and sanitise an upload; raises :class:`EvidenceRefused`."""
    if not data:
        raise EvidenceRefused("empty", "the file is empty")
    if len(data) > MAX_EVIDENCE_BYTES:
        raise EvidenceRefused("too_large", "the file is larger than 10 MB")
    media_type = sniff(data)
    if media_type is None:
        raise EvidenceRefused("unsupported_type", "only JPEG, PNG, WebP images and PDF files")
    if media_type == PDF:
        if b"%%EOF" not in data[-2048:]:
            raise EvidenceRefused("invalid_pdf", "the PDF file is incomplete")
        content = data
    else:
        content = _reencode(data, media_type)
    return CleanEvidence(media_type, content, hashlib.sha256(content).hexdigest())
