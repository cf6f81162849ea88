"""Image handling for uploads, the worker and the engines: safe decoding, orientation,
colour, metadata stripping, thumbnails. Pillow + pillow-heif; never trusts names or types."""

from luster_app.imaging.decode import (
    ALLOWED_FORMATS,
    ImageRejected,
    load_normalised,
    open_image,
    oriented_size,
    sniff_format,
)
from luster_app.imaging.encode import encode_jpeg, fit_long_edge, make_thumbnail
from luster_app.imaging.metadata import MetadataReport, has_gps, metadata_report

__all__ = [
    "ALLOWED_FORMATS",
    "ImageRejected",
    "MetadataReport",
    "encode_jpeg",
    "fit_long_edge",
    "has_gps",
    "load_normalised",
    "make_thumbnail",
    "metadata_report",
    "open_image",
    "oriented_size",
    "sniff_format",
]
