"""Images from devices: PNG and JPEG decoded with Pillow, bounded by a pixel limit.

The size of an image is read from its header before any pixel is decoded, so a small
file that declares a huge image (a 70 KB PNG of 4000x4000 pixels) is refused in
microseconds rather than decoded for seconds. Decoded images become ``uint8`` arrays of
shape ``(H, W)`` (grey) or ``(H, W, C)`` (grey+alpha, RGB, RGBA); palette and bilevel
images are expanded to RGB(A) or grey, 16-bit grey stays ``uint16``. Pillow is imported
inside the functions.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}
"""Content types devices may send, and the Pillow format each must be."""
DEFAULT_MAX_PIXELS = 2048 * 2048


class ImageError(ValueError):
    """An image that cannot or may not be decoded; the message says why."""


def image_size(data: bytes, content_type: str = "image/png") -> tuple[int, int]:
    """``(width, height)`` from the header alone."""
    return _open(data, content_type).size  # type: ignore[no-any-return]


def decode_image(data: bytes, content_type: str = "image/png", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The pixels of a PNG or JPEG; :class:`ImageError` for anything else, or beyond ``max_pixels``."""
    image = _open(data, content_type)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(f"{width}x{height} pixels exceeds the limit of {max_pixels} pixels "
                         "(send a smaller image)")
    try:
        image.load()
    except Exception as exc:  # Pillow's decoders raise many types; none may escape as a crash
        raise ImageError(f"corrupt {image.format} data ({_reason(exc)})") from None
    return np.asarray(_normalise(image))


def _open(data: bytes, content_type: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    fmt = FORMATS.get(content_type)
    if fmt is None:
        raise ImageError(f"unsupported image type {content_type!r} (use {' or '.join(FORMATS)})")
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])
    except UnidentifiedImageError:
        raise ImageError(f"not a {fmt} file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # declared far beyond any limit
        raise ImageError("the declared size exceeds the limit of pixels (a decompression bomb)") from None
    except Exception as exc:  # Pillow's header parsers raise many types (OSError, SyntaxError, struct.error...)
        raise ImageError(f"corrupt {fmt} header ({_reason(exc)})") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(f"image size {width}x{height} is empty")
    return image


def _normalise(image: Any) -> Any:
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA", "I;16"):
        return image
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if mode == "1":
        return image.convert("L")
    if mode == "PA":
        return image.convert("RGBA")
    return image.convert("RGB")


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def encode_png(image: np.ndarray) -> bytes:
    """A ``uint8`` ``(H, W)`` or ``(H, W, C)`` array (C in 1-4) as PNG bytes (for devices and tests)."""
    from PIL import Image

    array = np.ascontiguousarray(image, dtype=np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise ValueError(f"encode_png needs (H, W) or (H, W, C<=4), got shape {image.shape}")
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")  # mode from the shape: L, LA, RGB or RGBA
    return out.getvalue()
