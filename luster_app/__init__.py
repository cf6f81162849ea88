"""Luster: listing-ready real-estate photos. The core here never imports Reflex."""
