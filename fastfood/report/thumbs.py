"""Small JPEG thumbnails as data: URIs, so a report carries its images inside it.

A 192 px JPEG at quality 70 is 6-12 kB: a gallery of a few dozen keeps the report well
under a megabyte. Pillow's JPEG draft mode decodes at 1/2, 1/4 or 1/8 scale straight from
the DCT coefficients, so a thumbnail of a 512 px photo costs a fraction of a full decode.
EXIF orientation is not applied, as the loaders do not apply it: the thumbnail shows what
the model saw.
"""

from __future__ import annotations

import base64
import io

THUMB_SIDE = 192


def thumbnail(path: str, side: int = THUMB_SIDE, quality: int = 70) -> str | None:
    """`data:image/jpeg;base64,...` of the image at `path`, at most `side` px on its longer
    side; None when it cannot be read (the report then says "no preview")."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (side, side))
            image = image.convert("RGB")
            image.thumbnail((side, side), Image.Resampling.BILINEAR)
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=quality, optimize=True)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")
