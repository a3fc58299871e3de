"""A seeded pipeline, built the way people build it: real pushes, real promotions.

devdocker → rcdocker → proddocker (the demo, with "Require a comment" on rc and prod), and:
- `api:1.0` pushed (A1, with OCI labels and a build time), promoted dev → rc by dana and
  rc → prod by Admin, then re-pushed in dev (A2): dev's tag moved, its trail must not;
- `web:2.0.1` (multi-arch) W1 promoted to rc by dana, re-pushed as W2 and promoted by
  Admin, then rolled back in rc (rc holds W1 again, dev holds W2: the replace warning);
- `worker:3.1` with a cosign signature (`sha256-<hex>.sig`, pushed by hand as cosign
  does) promoted to rc: the signature travels and is recorded as such;
- a failed promotion (the pinned image deleted from dev before the worker ran);
- a configuration change (rcdocker's description) and one event 40 days old.
Users: dana (Promote Packages on rcdocker), eve (Promote Packages on devdocker only),
both with View & Download Packages on all registries.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.utils import timezone

from accounts.permissions import Principal
from registries.models import Promotion, Registry, Tag
from registries.oci import RegistryClient
from tests.conftest import PASSWORD, user_with, wait_for
from tests.support import artifacts as art
from tests.support.images import push_image

ADMIN = f"Admin:{PASSWORD}"
LABELS = {
    "org.opencontainers.image.source": "https://github.com/example/api",
    "org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
    "org.opencontainers.image.version": "1.0",
    "maintainer": "team@example.com",
}
CREATED = "2026-03-04T05:06:07.123456789Z"
DUMMY_TASKS = {
    "default": {
        "BACKEND": "django.tasks.backends.dummy.DummyBackend",
        "QUEUES": ["default", "promotions"],
    }
}


@dataclass
class Seed:
    prefix: str
    api: str  # repository names
    web: str
    worker: str
    a1: str  # digests
    a2: str
    w1: str
    w2: str
    signed: str
    signature_tag: str
    signature: str
    failed_digest: str
    old_repository: str
    old_day: dt.date

    @property
    def repositories(self) -> list[str]:
        return [self.api, self.web, self.worker]


def _indexed(registry: str, repository: str, tag: str, digest: str) -> None:
    found = wait_for(
        lambda: Tag.objects.filter(
            repository__registry__name=registry,
            repository__name=repository,
            name=tag,
            digest=digest,
        ).exists(),
        timeout=15,
    )
    assert found, f"{registry}/{repository}:{tag} never reached the index"


def _push(portal, repository: str, tag: str, tmp_path, **kwargs) -> str:
    info = push_image(
        portal.hostport,
        f"devdocker/{repository}",
        tag,
        layers=1,
        layer_size=2048,
        creds=ADMIN,
        tmp_path=tmp_path,
        **kwargs,
    )
    _indexed("devdocker", repository, tag, info.digest)
    return info.digest


def promote(source: str, repository: str, tag: str, *, actor, comment: str) -> Promotion:
    """Promote through the service (the tests' task backend runs it at once)."""
    from registries.services.promotions import promotion_request

    registry = Registry.objects.get(name=source)
    promotion = promotion_request(
        source=registry,
        repository=repository,
        tag=tag,
        target=registry.promote_to,
        actor=Principal(user=actor),
        comment=comment,
    )
    promotion.refresh_from_db()
    assert promotion.status == "succeeded", promotion.error
    return promotion


def seed_pipeline(portal, tmp_path) -> Seed:
    from registries.records import history_record
    from registries.runner import promotion_execute
    from registries.services.promotions import promotion_request
    from registries.services.registries import registry_update
    from registries.services.tags import tag_roll_back

    admin = get_user_model().objects.get(username="Admin")
    dana = user_with("View & Download Packages", username="dana")
    user_with("Promote Packages", registry="rcdocker", username="dana")
    user_with("View & Download Packages", username="eve")
    user_with("Promote Packages", registry="devdocker", username="eve")

    prefix = f"p{uuid.uuid4().hex[:6]}"
    api, web, worker = f"{prefix}/api", f"{prefix}/web", f"{prefix}/worker"

    a1 = _push(portal, api, "1.0", tmp_path, labels=LABELS, created=CREATED)
    promote("devdocker", api, "1.0", actor=dana, comment="ready for QA")
    promote("rcdocker", api, "1.0", actor=admin, comment="release 1.0")

    multi = {"platforms": ["linux/amd64", "linux/arm64"], "labels": {"team": "web"}}
    w1 = _push(portal, web, "2.0.1", tmp_path, **multi)
    promote("devdocker", web, "2.0.1", actor=dana, comment="first build for QA")
    w2 = _push(portal, web, "2.0.1", tmp_path, **multi)
    promote("devdocker", web, "2.0.1", actor=admin, comment="hotfix build")
    rc_web = Tag.objects.get(
        repository__registry__name="rcdocker", repository__name=web, name="2.0.1"
    )
    tag_roll_back(tag=rc_web, actor=Principal(user=admin))

    with RegistryClient(
        settings.PROMOTER_REGISTRY_URL, username="Admin", password=PASSWORD, timeout=(5, 30)
    ) as client:
        # A seed of its own: the registry outlives the test, and equal bytes are one digest.
        image = art.image(client, f"devdocker/{worker}", "3.1", seed=int(prefix[1:], 16))
        _indexed("devdocker", worker, "3.1", image.digest)
        signature = art.cosign(client, f"devdocker/{worker}", image, "sig")
        signature_tag = art.tag_for(image.digest, ".sig")
        _indexed("devdocker", worker, signature_tag, signature.digest)
        promote("devdocker", worker, "3.1", actor=admin, comment="signed build")

        # A failure: the image is deleted from devdocker after the promotion was asked for.
        doomed = _push(portal, api, "1.1", tmp_path)
        with override_settings(TASKS=DUMMY_TASKS):
            queued = promotion_request(
                source=Registry.objects.get(name="devdocker"),
                repository=api,
                tag="1.1",
                target=Registry.objects.get(name="rcdocker"),
                actor=Principal(user=dana),
                comment="try 1.1",
            )
        client.delete_manifest(f"devdocker/{api}", doomed)
    failed = promotion_execute(promotion_id=queued.pk)
    assert failed.status == "failed", failed.status

    a2 = _push(portal, api, "1.0", tmp_path, labels=LABELS)  # the re-push
    registry_update(
        registry=Registry.objects.get(name="rcdocker"),
        actor=Principal(user=admin),
        values={"description": "Release candidates under test by QA."},
    )
    old_day = (timezone.now() - dt.timedelta(days=40)).date()
    old_repository = f"{prefix}/legacy"
    history_record(
        action="pushed",
        registry="devdocker",
        repository=old_repository,
        tag="0.9",
        digest="sha256:" + "1" * 64,
        actor="sync",
        comment="found by sync",
        created_at=timezone.now() - dt.timedelta(days=40),
    )
    return Seed(
        prefix=prefix,
        api=api,
        web=web,
        worker=worker,
        a1=a1,
        a2=a2,
        w1=w1,
        w2=w2,
        signed=image.digest,
        signature_tag=signature_tag,
        signature=signature.digest,
        failed_digest=doomed,
        old_repository=old_repository,
        old_day=old_day,
    )
