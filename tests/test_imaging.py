"""Decoding, orientation, colour and privacy on the real camera and phone files."""

import io

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageCms

from luster_app.imaging import (
    ImageRejected,
    encode_jpeg,
    has_gps,
    load_normalised,
    make_thumbnail,
    metadata_report,
    open_image,
    oriented_size,
    sniff_format,
)
from tests.conftest import PHOTOS

MAX_PIXELS = 100_000_000
ALL_PHOTOS = sorted(p for p in PHOTOS.rglob("*") if p.suffix.lower() in (".jpg", ".heic"))


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def _same_picture(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of the luminance of two images: ~1 for the same upright picture.

    landscape_1 has no colour profile while 2-8 carry "Generic RGB", so colours differ
    slightly; a wrong rotation or mirror drops the correlation far below 0.9.
    """
    return float(np.corrcoef(a.mean(axis=2).ravel(), b.mean(axis=2).ravel())[0, 1])


def test_the_real_photos_are_there() -> None:
    assert len(ALL_PHOTOS) >= 17


@pytest.mark.parametrize("path", ALL_PHOTOS, ids=lambda p: p.name)
def test_every_real_photo_decodes_to_metadata_free_output(path) -> None:
    data = path.read_bytes()
    image = load_normalised(data, max_pixels=MAX_PIXELS)
    assert image.mode == "RGB"
    assert image.size == oriented_size(open_image(data, max_pixels=MAX_PIXELS))
    jpeg = encode_jpeg(image)
    report = metadata_report(jpeg)
    assert not has_gps(jpeg)
    assert report.exif_orientation is None
    assert Image.open(io.BytesIO(jpeg)).size == image.size


def test_gps_is_detected_in_the_originals_and_gone_after() -> None:
    original = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()
    assert has_gps(original)
    thumb, _, _ = make_thumbnail(original, max_pixels=MAX_PIXELS)
    assert not has_gps(thumb)


def test_all_eight_orientations_come_out_alike_and_upright() -> None:
    reference = _pixels(load_normalised((PHOTOS / "orientation" / "landscape_1.jpg").read_bytes(), max_pixels=MAX_PIXELS))
    assert reference.shape == (450, 600, 3)
    for n in range(2, 9):
        image = _pixels(load_normalised((PHOTOS / "orientation" / f"landscape_{n}.jpg").read_bytes(), max_pixels=MAX_PIXELS))
        assert image.shape == reference.shape
        assert _same_picture(image, reference) > 0.95, f"orientation {n} differs"


def test_thumbnails_are_upright_small_and_alike_across_orientations() -> None:
    thumbs = []
    for n in range(1, 9):
        data, width, height = make_thumbnail((PHOTOS / "orientation" / f"landscape_{n}.jpg").read_bytes(), max_pixels=MAX_PIXELS)
        assert (width, height) == (512, 384)
        thumbs.append(_pixels(Image.open(io.BytesIO(data))))
    for n, thumb in enumerate(thumbs[1:], start=2):
        assert _same_picture(thumb, thumbs[0]) > 0.95, f"orientation {n} thumbnail differs"


def test_iphone_heic_display_p3_is_converted_not_reinterpreted() -> None:
    data = (PHOTOS / "heic" / "IMG_5195.HEIC").read_bytes()
    assert sniff_format(data[:12]) == "HEIF"
    raw = open_image(data, max_pixels=MAX_PIXELS)
    icc = raw.info.get("icc_profile")
    assert icc and "P3" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    converted = load_normalised(data, max_pixels=MAX_PIXELS)
    assert converted.size == (2566, 3313)
    # Reinterpreting P3 numbers as sRGB would keep them; a real conversion changes them.
    reinterpreted = np.asarray(raw.convert("RGB"), dtype=np.float32)
    assert np.abs(_pixels(converted) - reinterpreted).mean() > 0.5
    jpeg = encode_jpeg(converted)
    out = Image.open(io.BytesIO(jpeg))
    assert "sRGB" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(out.info["icc_profile"])))
    assert not has_gps(jpeg)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, this is text pretending to be a jpg", "Not a photo"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "Not a photo"),
    ],
)
def test_non_images_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected, match=reason):
        open_image(data, max_pixels=MAX_PIXELS)


def test_truncated_jpeg_is_rejected() -> None:
    data = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()
    with pytest.raises(ImageRejected, match="truncated or damaged"):
        load_normalised(data[: len(data) // 2], max_pixels=MAX_PIXELS)


def test_png_declaring_30000_squared_pixels_is_refused_before_decoding() -> None:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
    bomb = b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
    with pytest.raises(ImageRejected, match="pixels"):
        open_image(bomb, max_pixels=MAX_PIXELS)


def _heic(image: Image.Image, *, preview: int | None, **info) -> bytes:
    """`image` as a HEIC, with an embedded preview of long edge `preview` (None: none)."""
    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    image.save(buffer, "HEIF", quality=90, thumbnails=[preview] if preview else [], **info)
    return buffer.getvalue()


@pytest.mark.parametrize("preview", [None, 320, 800], ids=["no preview", "preview too small", "preview large enough"])
def test_heic_thumbnails_are_upright_with_or_without_an_embedded_preview(preview) -> None:
    reference, _, _ = make_thumbnail((PHOTOS / "orientation" / "landscape_1.jpg").read_bytes(), max_pixels=MAX_PIXELS)
    turned = Image.open(PHOTOS / "orientation" / "landscape_6.jpg")  # stored sideways, EXIF orientation 6
    data = _heic(turned.resize((turned.width * 2, turned.height * 2)), preview=preview, exif=turned.getexif().tobytes())
    thumb, width, height = make_thumbnail(data, max_pixels=MAX_PIXELS)
    assert (width, height) == (512, 384)
    assert _same_picture(_pixels(Image.open(io.BytesIO(thumb))), _pixels(Image.open(io.BytesIO(reference)))) > 0.9
    assert not has_gps(thumb) and metadata_report(thumb).exif_orientation is None


def test_a_heic_thumbnail_from_its_preview_is_converted_from_display_p3() -> None:
    photo = open_image((PHOTOS / "heic" / "IMG_5195.HEIC").read_bytes(), max_pixels=MAX_PIXELS)
    icc = photo.info["icc_profile"]
    photo = photo.resize((photo.width // 3, photo.height // 3))  # quicker to encode; still larger than a thumbnail
    photo.info = {}  # the profile goes only where it is given
    converted, _, _ = make_thumbnail(_heic(photo, preview=None, icc_profile=icc), max_pixels=MAX_PIXELS)
    reinterpreted, _, _ = make_thumbnail(_heic(photo, preview=None), max_pixels=MAX_PIXELS)  # no profile: taken as sRGB
    thumb, width, height = make_thumbnail(_heic(photo, preview=600, icc_profile=icc), max_pixels=MAX_PIXELS)
    assert height == 512 and abs(width - Image.open(io.BytesIO(converted)).width) <= 1
    pixels = _pixels(Image.open(io.BytesIO(thumb)))[:, :396]  # the preview's rounding may differ by a column
    to_converted = np.abs(pixels - _pixels(Image.open(io.BytesIO(converted)))[:, :396]).mean()
    to_reinterpreted = np.abs(pixels - _pixels(Image.open(io.BytesIO(reinterpreted)))[:, :396]).mean()
    assert to_converted < to_reinterpreted
    out = Image.open(io.BytesIO(thumb))
    assert "sRGB" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(out.info["icc_profile"])))
