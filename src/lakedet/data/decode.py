"""Decoding stored images: bytes (JPEG with libjpeg-turbo, anything else with OpenCV) or arrays
to BGR ``uint8`` H x W x 3, and reading an image's size from its header alone."""

from __future__ import annotations

import numpy as np

__all__ = ["decode_image", "image_size", "exif_orientation"]


def decode_image(data, compressed: bool) -> np.ndarray | None:
    """Decode stored image bytes (or take a stored RGB array) to BGR uint8 HxWx3.

    JPEGs go through ``simplejpeg`` (libjpeg-turbo, measured 14 % faster than ``cv2.imdecode`` on
    640x480 images, with identical pixels); JPEGs whose EXIF orientation asks for a rotation, and
    every other format, go through ``cv2.imdecode(IMREAD_COLOR)`` as MMDetection's
    ``LoadImageFromFile`` does (EXIF orientation applied, grayscale and alpha made 3-channel BGR).
    Returns None when the bytes cannot be decoded.
    """
    import cv2

    if compressed:
        if _is_upright_jpeg(data):
            try:
                return _decode_jpeg(data)
            except Exception:  # CMYK, progressive oddities...: OpenCV decides below
                pass
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return None if img is None or img.size == 0 else img
    img = np.asarray(data)  # an uncompressed column: Deep Lake returns the array as stored, RGB(A)
    if img.size == 0:
        return None
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        return None
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        return None
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_RGBA2BGR)
    return np.ascontiguousarray(img[:, :, ::-1])


def image_size(data, compressed: bool) -> tuple[int, int] | None:
    """``(height, width)`` of a stored image as ``decode_image`` would give it, without decoding
    the pixels: from a JPEG's frame header (EXIF orientations 5-8 swap the sides) or a PNG's
    IHDR; other formats are decoded. None when the bytes cannot be read."""
    if not compressed:
        shape = np.asarray(data).shape
        return (int(shape[0]), int(shape[1])) if len(shape) >= 2 else None
    view = memoryview(data)
    if len(view) >= 24 and bytes(view[:8]) == b"\x89PNG\r\n\x1a\n" and bytes(view[12:16]) == b"IHDR":
        return int.from_bytes(view[20:24], "big"), int.from_bytes(view[16:20], "big")
    if len(view) >= 4 and view[0] == 0xFF and view[1] == 0xD8:
        size, orientation, pos = None, None, 2
        while pos + 4 <= len(view) and view[pos] == 0xFF:
            marker, length = view[pos + 1], (view[pos + 2] << 8) | view[pos + 3]
            if marker == 0xE1 and bytes(view[pos + 4:pos + 10]) == b"Exif\x00\x00":
                orientation = exif_orientation(bytes(view[pos + 10:pos + 2 + length]))
            elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and pos + 9 <= len(view):
                size = ((view[pos + 5] << 8) | view[pos + 6], (view[pos + 7] << 8) | view[pos + 8])
                break
            elif marker in (0xDA, 0xD9):
                break
            pos += 2 + length
        if size is not None:
            return size[::-1] if orientation in (5, 6, 7, 8) else size
    img = decode_image(data, compressed=True)
    return None if img is None else (int(img.shape[0]), int(img.shape[1]))


def _decode_jpeg(data) -> np.ndarray:
    import simplejpeg

    return simplejpeg.decode_jpeg(data, colorspace="BGR")


def _is_upright_jpeg(data) -> bool:
    """True for a JPEG without an EXIF orientation other than 1 (only its header segments are read)."""
    view = memoryview(data)
    if len(view) < 4 or view[0] != 0xFF or view[1] != 0xD8:
        return False
    pos = 2
    while pos + 4 <= len(view) and view[pos] == 0xFF:
        marker = view[pos + 1]
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no more header segments
            return True
        length = (view[pos + 2] << 8) | view[pos + 3]
        if marker == 0xE1 and bytes(view[pos + 4:pos + 10]) == b"Exif\x00\x00":
            return exif_orientation(bytes(view[pos + 10:pos + 2 + length])) in (None, 1)
        pos += 2 + length
    return True


def exif_orientation(tiff: bytes) -> int | None:
    """The orientation tag (0x0112) of an EXIF block's first IFD, or None when absent or unreadable."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    order = "little" if tiff[:2] == b"II" else "big"
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return None
    for entry in range(int.from_bytes(tiff[ifd:ifd + 2], order)):
        start = ifd + 2 + 12 * entry
        if start + 12 > len(tiff):
            return None
        if int.from_bytes(tiff[start:start + 2], order) == 0x0112:
            return int.from_bytes(tiff[start + 8:start + 10], order)
    return None
