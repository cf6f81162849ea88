"""A small disclosure caption drawn into a photo's corner ("Digitally altered", California AB 723)."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

DIGITALLY_ALTERED = "Digitally altered"


def add_caption(image: Image.Image, text: str = DIGITALLY_ALTERED) -> Image.Image:
    """A copy of `image` (same size) with `text` in white on a translucent dark band, bottom left."""
    base = image.convert("RGBA")
    # Readable on a phone listing and on a 4K screen alike: about 2.5% of the short edge.
    font_size = max(12, round(min(base.size) * 0.025))
    font = ImageFont.load_default(size=font_size)
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(4, font_size // 2)
    margin = pad
    box_height = bottom - top + 2 * pad
    box = (margin, base.height - margin - box_height, margin + right - left + 2 * pad, base.height - margin)
    draw.rectangle(box, fill=(0, 0, 0, 140))
    draw.text((box[0] + pad - left, box[1] + pad - top), text, font=font, fill=(255, 255, 255, 235))
    return Image.alpha_composite(base, overlay).convert("RGB")
