"""Figures of the report: PNG bytes checked, embedded as data URIs, and shown at a size that
keeps them sharp (see :data:`SHARPNESS`)."""
from __future__ import annotations

import base64
import re
from typing import Iterable, Mapping

from forecast._report_view import _BASE64, _PNG_URI_PREFIX, PNG_SIGNATURE, _s, png_data_uri

#: A figure is shown at most at (its pixel width / SHARPNESS) CSS px, so every CSS px has at
#: least 1.5 image pixels behind it and no image is ever stretched past its pixels.
SHARPNESS = 1.5


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height in pixels from a PNG's header (IHDR, the first chunk)."""
    if len(png) < 24 or not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("figure bytes are not a PNG image (no IHDR header)")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def shown_size(png: bytes) -> tuple[int, int]:
    """The CSS size (width, height) a figure is shown at: its pixels / :data:`SHARPNESS`, rounded
    down (the column may show it narrower still, never wider)."""
    w, h = png_size(png)
    return max(int(w / SHARPNESS), 1), max(int(h / SHARPNESS), 1)


def _figures(figs: Iterable[Mapping]) -> list[dict]:
    out = []
    for i, f in enumerate(figs):
        png = f.get("png")
        if isinstance(png, str):
            # an already encoded data URI is accepted only in the exact form we would build
            if not (png.startswith(_PNG_URI_PREFIX) and _BASE64.fullmatch(png[len(_PNG_URI_PREFIX):])):
                raise ValueError(f"figure {f.get('id', i)!r}: png must be PNG bytes or a PNG data URI")
            uri = png
        else:
            try:
                uri = png_data_uri(png)
            except ValueError as e:
                raise ValueError(f"figure {f.get('id', i)!r}: {e}") from None
        fid = re.sub(r"[^A-Za-z0-9_-]", "-", _s(f.get("id")) or str(i))
        try:
            width, height = shown_size(base64.b64decode(uri[len(_PNG_URI_PREFIX):][:44]))
        except ValueError as e:
            raise ValueError(f"figure {f.get('id', i)!r}: {e}") from None
        out.append({"id": f"fig-{fid}", "title": _s(f.get("title")), "caption": _s(f.get("caption")), "src": uri,
                    "width": width, "height": height})
    return out
