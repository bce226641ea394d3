"""A small PNG codec on the standard library (``zlib``), so devices may send images.

The gateway accepts ``content_type: image/png`` without a new dependency: this
module decodes the common PNG variants (8-bit grey, grey+alpha, RGB, RGBA; not
interlaced) into a ``uint8`` array of shape ``(H, W)`` or ``(H, W, C)``. Anything
else (palettes, 16-bit, Adam7) raises ``ValueError`` naming the variant, and the
gateway answers it as an error. Decompression is capped at the image's declared
size, so a crafted file cannot inflate without bound.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def decode_png(data: bytes, max_pixels: int = 16_000_000) -> np.ndarray:
    """Decode a PNG into ``uint8`` ``(H, W)`` (grey) or ``(H, W, C)``; ``ValueError`` says what is wrong."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG file (bad signature)")
    pos, header, chunks = len(_SIGNATURE), None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise ValueError(f"truncated PNG chunk {kind!r}")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError("PNG has no IHDR chunk")
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in _CHANNELS or interlace:
        raise ValueError(f"unsupported PNG variant (bit depth {depth}, color type {color}, interlace {interlace}); "
                         "send 8-bit grey/RGB/RGBA without interlacing, or a raw tensor")
    if width * height > max_pixels or width == 0 or height == 0:
        raise ValueError(f"PNG size {width}x{height} is out of range (at most {max_pixels} pixels)")
    channels = _CHANNELS[color]
    stride = width * channels
    expected = height * (stride + 1)
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(chunks), expected)
    except zlib.error as exc:
        raise ValueError(f"corrupt PNG image data ({exc})") from None
    if len(raw) != expected:
        raise ValueError(f"PNG image data holds {len(raw)} bytes, expected {expected}")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        out[y] = _unfilter(int(rows[y, 0]), rows[y, 1:], previous, channels)
        previous = out[y]
    return out.reshape(height, width) if channels == 1 else out.reshape(height, width, channels)


def _unfilter(kind: int, line: np.ndarray, prior: np.ndarray, bpp: int) -> np.ndarray:
    if kind == 0:
        return line.copy()
    if kind == 2:
        return (line + prior).astype(np.uint8)
    if kind == 1:  # Sub: running sum per channel, modulo 256
        return (np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint64) % 256).astype(np.uint8).reshape(-1)
    if kind not in (3, 4):
        raise ValueError(f"corrupt PNG (unknown row filter {kind})")
    cur = [0] * len(line)
    for i, value in enumerate(line.tolist()):
        left = cur[i - bpp] if i >= bpp else 0
        up = int(prior[i])
        if kind == 3:
            cur[i] = (value + (left + up) // 2) & 0xFF
        else:
            upleft = int(prior[i - bpp]) if i >= bpp else 0
            p = left + up - upleft
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
            pred = left if pa <= pb and pa <= pc else (up if pb <= pc else upleft)
            cur[i] = (value + pred) & 0xFF
    return np.asarray(cur, dtype=np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    """Encode a ``uint8`` ``(H, W)`` or ``(H, W, C)`` array (C in 1-4) as PNG, unfiltered."""
    array = np.ascontiguousarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"encode_png needs (H, W) or (H, W, C<=4), got shape {image.shape}")
    height, width, channels = array.shape
    color = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + array[y].tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return _SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
