"""Tag services: roll back a promoted tag (the registry first, then the index and History)."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Permission
from accounts.permissions import Principal
from promoter.errors import Forbidden, Invalid
from registries.connections import client_for
from registries.models import COMMENT_MAX, Tag
from registries.oci.errors import DigestMismatch, ManifestUnknown, RegistryError
from registries.oci.inspect import describe_image
from registries.records import history_record, tag_upsert
from registries.services.policies import policy_check_roll_back
from registries.services.webhooks import rolled_back_announce


def tag_roll_back(*, tag: Tag, actor: Principal, comment: str = "") -> Tag:
    """Re-point a promoted tag at the digest it had before the last promotion.

    `comment` (why) goes in the History event's comment; its digest is the one rolled back to.
    """
    registry = tag.repository.registry
    if not actor.has(Permission.PROMOTE, registry):
        raise Forbidden(f"You may not roll back tags in {registry.name}.")
    if not tag.previous_digest:
        raise Invalid(f"{tag} has no earlier digest to roll back to.")
    comment = comment.strip()
    if len(comment) > COMMENT_MAX:
        raise Invalid(f"The comment is longer than {COMMENT_MAX} characters.")
    policy_check_roll_back(registry=registry, tag=tag.name, actor=actor)
    client = client_for(registry)
    path = registry.backing_path(tag.repository.name)
    try:
        previous = client.get_manifest(path, tag.previous_digest)
        digest = client.put_manifest(path, tag.name, previous.body, previous.media_type)
        if digest != tag.previous_digest:
            raise DigestMismatch(f"the registry stored {digest}, not {tag.previous_digest}")
        summary = describe_image(client, path, digest)
    except ManifestUnknown as exc:
        raise Invalid(
            f"The earlier image {tag.previous_digest} is no longer in {registry.name}."
        ) from exc
    except RegistryError as exc:
        raise Invalid(f"Roll back failed, the tag was not changed: {exc.message}") from exc
    with transaction.atomic():
        updated, old = tag_upsert(
            registry=registry,
            repository=tag.repository.name,
            tag=tag.name,
            summary=summary,
            remember_previous=True,
        )
        history_record(
            action="rolled_back",
            registry=registry,
            repository=tag.repository.name,
            tag=tag.name,
            digest=digest,
            actor=actor,
            comment=comment,
        )
        rolled_back_announce(registry=registry, tag=updated, digest_before=old, actor=actor)
    return updated
