"""What a tag page shows of an image that only the registry knows: layers, labels, platforms."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from registries.connections import client_for
from registries.models import Tag
from registries.oci.deadline import deadline
from registries.oci.errors import RegistryError
from registries.oci.inspect import ImageDetails, image_details


@dataclass
class LiveImage:
    details: ImageDetails | None
    error: str = ""


def tag_image(*, tag: Tag) -> LiveImage:
    """Layers, labels and platforms read from the registry; an error message when it is down."""
    registry = tag.repository.registry
    try:
        # A web request: every call and all of them together within the web deadline.
        with deadline(settings.PROMOTER_WEB_REGISTRY_DEADLINE):
            details = image_details(
                client_for(registry, web=True),
                registry.backing_path(tag.repository.name),
                tag.digest,
            )
    except RegistryError as exc:
        return LiveImage(None, exc.message)
    return LiveImage(details)
