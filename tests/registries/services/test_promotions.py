"""Promotion end to end through real registries: digests, mounts, streams, signatures, History."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import threading

import pytest
from django.utils import timezone

from accounts.permissions import Principal
from promoter.errors import Invalid, NotFound
from registries.models import HistoryEvent, Promotion, Registry, Tag
from registries.runner import promotion_execute
from registries.services.promotions import promotion_request, promotion_retry
from registries.services.tags import tag_roll_back
from tests.support.images import docker_manifest_inspect, push_image, skopeo_inspect_raw
from tests.support.wait import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ADMIN = None


def admin() -> Principal:
    from django.contrib.auth import get_user_model

    return Principal(user=get_user_model().objects.get(username="Admin"))


def reg(name: str) -> Registry:
    return Registry.objects.get(name=name)


def raw(demo, registry, repo, ref, creds="Admin:correct horse battery staple") -> bytes:
    sep = "@" if ref.startswith("sha256:") else ":"
    return skopeo_inspect_raw(f"docker://{demo.hostport}/{registry}/{repo}{sep}{ref}", creds=creds)


def promote(repo, tag="1.0", source="devdocker", target="rcdocker", comment="") -> Promotion:
    promotion = promotion_request(
        source=reg(source),
        repository=repo,
        tag=tag,
        target=reg(target),
        actor=admin(),
        comment=comment,
    )
    promotion.refresh_from_db()
    return promotion


def test_single_arch_promotion_is_digest_exact_mounted_and_recorded(demo, pushed):
    repo, info = pushed

    promotion = promote(repo, comment="Ready for testing")

    assert promotion.status == "succeeded", promotion.error
    assert raw(demo, "rcdocker", repo, "1.0") == raw(demo, "devdocker", repo, "1.0")
    assert json.loads(raw(demo, "rcdocker", repo, "1.0"))  # valid manifest bytes
    assert promotion.blobs_mounted == promotion.blobs_total > 0  # same host: no bytes moved
    assert promotion.blobs_copied == 0
    target_tag = Tag.objects.get(
        repository__registry__name="rcdocker", repository__name=repo, name="1.0"
    )
    assert target_tag.digest == info.digest
    event = HistoryEvent.objects.get(action="promoted", repository=repo)
    assert (event.from_registry, event.to_registry, event.actor, event.comment) == (
        "devdocker",
        "rcdocker",
        "Admin",
        "Ready for testing",
    )
    # The source is untouched.
    assert (
        Tag.objects.get(
            repository__registry__name="devdocker", repository__name=repo, name="1.0"
        ).digest
        == info.digest
    )


def test_multi_arch_index_promotes_with_identical_digest_and_children(
    demo, admin_creds, unique_repo, tmp_path
):
    info = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        layers=2,
        platforms=["linux/amd64", "linux/arm64"],
        creds=admin_creds,
        tmp_path=tmp_path,
    )
    wait_for(lambda: Tag.objects.filter(repository__name=unique_repo).exists(), timeout=5)

    promotion = promote(unique_repo)

    assert promotion.status == "succeeded", promotion.error
    assert promotion.manifests_total == 3
    top = raw(demo, "rcdocker", unique_repo, "1.0")
    assert top == raw(demo, "devdocker", unique_repo, "1.0")
    for child in info.child_digests:
        assert raw(demo, "rcdocker", unique_repo, child)  # every platform is there by digest
    # The docker CLI sees the same multi-arch index at the target.
    seen = docker_manifest_inspect(
        demo.hostport,
        f"rcdocker/{unique_repo}:1.0",
        creds=admin_creds,
        config_dir=tmp_path / "docker",
    )
    assert sorted(m["digest"] for m in seen["manifests"]) == sorted(info.child_digests)
    assert sorted(
        f"{m['platform']['os']}/{m['platform']['architecture']}" for m in seen["manifests"]
    ) == ["linux/amd64", "linux/arm64"]


def test_chain_dev_rc_prod_and_pipeline_is_enforced(demo, pushed):
    repo, info = pushed
    with pytest.raises(Invalid, match="devdocker promotes only to rcdocker"):
        promote(repo, target="proddocker")
    assert promote(repo).status == "succeeded"
    assert promote(repo, source="rcdocker", target="proddocker").status == "succeeded"
    assert raw(demo, "proddocker", repo, "1.0") == raw(demo, "devdocker", repo, "1.0")
    trail = list(
        HistoryEvent.objects.filter(repository=repo, digest=info.digest, action="promoted")
        .order_by("created_at")
        .values_list("from_registry", "to_registry")
    )
    assert trail == [("devdocker", "rcdocker"), ("rcdocker", "proddocker")]


def test_bad_requests_are_refused_and_leave_nothing(demo, pushed):
    repo, _ = pushed
    with pytest.raises(Invalid, match="limit is 4000"):
        promote(repo, comment="x" * 4001)
    with pytest.raises(Invalid, match="target is the source"):
        promote(repo, target="devdocker")
    with pytest.raises(NotFound, match="no tag 9.9"):
        promote(repo, tag="9.9")
    with pytest.raises(NotFound):
        promote("no/such-repo")
    with pytest.raises(Invalid, match="not a valid"):
        promote("Bad Name")
    assert Promotion.objects.count() == 0
    assert not Tag.objects.filter(repository__registry__name="rcdocker").exists()


def test_signature_tags_travel_with_the_image(demo, pushed, admin_creds, tmp_path):
    repo, info = pushed
    sig_tag = info.digest.replace(":", "-") + ".sig"
    sig = push_image(
        demo.hostport,
        f"devdocker/{repo}",
        sig_tag,
        layers=1,
        layer_size=256,
        creds=admin_creds,
        tmp_path=tmp_path / "sig",
    )

    promotion = promote(repo)

    assert promotion.status == "succeeded", promotion.error
    assert promotion.signatures_copied == 1
    assert raw(demo, "rcdocker", repo, sig_tag) == raw(demo, "devdocker", repo, sig_tag)
    assert json.loads(raw(demo, "rcdocker", repo, sig.digest))


def test_digest_that_vanished_before_execution_fails_clearly(
    demo, pushed, admin_creds, queued_only
):
    repo, info = pushed
    promotion = promote(repo)
    assert promotion.status == "queued"
    subprocess.run(
        [
            "skopeo",
            "delete",
            "--tls-verify=false",
            "--creds",
            admin_creds,
            f"docker://{demo.hostport}/devdocker/{repo}@{info.digest}",
        ],
        check=True,
        capture_output=True,
    )

    result = promotion_execute(promotion_id=promotion.pk)

    assert result.status == "failed"
    assert "no longer in devdocker" in result.error
    assert not Tag.objects.filter(repository__registry__name="rcdocker").exists()
    assert not HistoryEvent.objects.filter(action="promoted").exists()


def test_concurrent_promotions_to_one_tag_are_serialized_and_both_recorded(
    demo, admin_creds, unique_repo, tmp_path, queued_only
):
    first = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        creds=admin_creds,
        tmp_path=tmp_path / "a",
        seed=1,
    )
    p1 = promote(unique_repo)
    second = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        creds=admin_creds,
        tmp_path=tmp_path / "b",
        seed=2,
    )
    p2 = promote(unique_repo)
    assert (p1.digest, p2.digest) == (first.digest, second.digest)

    from django.db import connection

    def run(pk):
        try:
            promotion_execute(promotion_id=pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(pk,)) for pk in (p1.pk, p2.pk)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    statuses = set(Promotion.objects.values_list("status", flat=True))
    assert statuses == {"succeeded"}
    events = list(
        HistoryEvent.objects.filter(action="promoted", repository=unique_repo).order_by(
            "created_at", "id"
        )
    )
    assert len(events) == 2
    final = Tag.objects.get(
        repository__registry__name="rcdocker", repository__name=unique_repo, name="1.0"
    )
    assert final.digest == events[-1].digest
    assert json.loads(raw(demo, "rcdocker", unique_repo, "1.0"))
    from registries.oci.manifest import sha256_digest

    assert sha256_digest(raw(demo, "rcdocker", unique_repo, "1.0")) == events[-1].digest


def test_roll_back_repoints_the_promoted_tag(demo, admin_creds, unique_repo, tmp_path):
    first = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        creds=admin_creds,
        tmp_path=tmp_path / "a",
        seed=11,
    )
    promote(unique_repo)
    second = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        creds=admin_creds,
        tmp_path=tmp_path / "b",
        seed=12,
    )
    promote(unique_repo)
    tag = Tag.objects.get(repository__registry__name="rcdocker", repository__name=unique_repo)
    assert (tag.digest, tag.previous_digest) == (second.digest, first.digest)

    tag_roll_back(tag=tag, actor=admin())

    tag.refresh_from_db()
    assert tag.digest == first.digest
    from registries.oci.manifest import sha256_digest

    assert sha256_digest(raw(demo, "rcdocker", unique_repo, "1.0")) == first.digest
    event = HistoryEvent.objects.get(action="rolled_back")
    assert (event.registry, event.digest, event.actor) == ("rcdocker", first.digest, "Admin")


def test_failed_promotion_can_be_run_again(demo, pushed, queued_only):
    repo, info = pushed
    promotion = promote(repo)
    Promotion.objects.filter(pk=promotion.pk).update(status="failed", error="simulated")
    promotion.refresh_from_db()
    promotion_retry(promotion=promotion, actor=admin())
    assert promotion_execute(promotion_id=promotion.pk).status == "succeeded"
    assert promotion_execute(promotion_id=promotion.pk).status == "succeeded"  # idempotent
    assert HistoryEvent.objects.filter(action="promoted").count() == 1


def test_real_worker_runs_a_queued_promotion(demo, pushed, real_worker):
    repo, info = pushed

    promotion = promote(repo)

    done = wait_for(
        lambda: Promotion.objects.get(pk=promotion.pk).is_finished, timeout=60, interval=0.2
    )
    promotion.refresh_from_db()
    assert done and promotion.status == "succeeded", promotion.error
    assert raw(demo, "rcdocker", repo, "1.0") == raw(demo, "devdocker", repo, "1.0")
    assert HistoryEvent.objects.filter(action="promoted", repository=repo).count() == 1


def test_a_running_promotion_whose_worker_died_gives_way_to_the_next_one(
    demo, pushed, queued_only, settings
):
    """The one-running lock is taken with one UPDATE; only when a holder refuses it is the
    holder looked at, failed if its worker stopped, and the lock taken after all."""
    repo, info = pushed
    settings.PROMOTER_STALE_SECONDS = 2
    dead = Promotion.objects.create(
        source=reg("devdocker"),
        target=reg("rcdocker"),
        repository=repo,
        tag="1.0",
        digest="sha256:" + "d" * 64,  # an earlier image, whose worker died copying it
        actor="Admin",
        status=Promotion.Status.RUNNING,
        attempts=1,
        heartbeat_at=timezone.now() - dt.timedelta(seconds=30),
    )
    promotion = promote(repo)

    done = promotion_execute(promotion_id=promotion.pk)

    assert done.status == "succeeded", done.error
    assert (done.attempts, done.started_at is not None) == (1, True)
    dead.refresh_from_db()
    assert dead.status == "failed"
    assert "The worker running this promotion stopped" in dead.error
    assert raw(demo, "rcdocker", repo, "1.0") == raw(demo, "devdocker", repo, "1.0")


def test_a_same_host_promotion_mints_each_token_once_however_many_blobs(
    demo, admin_creds, unique_repo, tmp_path, queued_only, monkeypatch
):
    """The copy's threads share the bundled registry's tokens: one per set of scopes, not
    one per thread (each mint is an RSA signature)."""
    from accounts import tokens

    push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        layers=9,
        layer_size=1024,
        creds=admin_creds,
        tmp_path=tmp_path,
    )
    promotion = promote(unique_repo)
    minted: list[tuple[str, ...]] = []
    mint = tokens.system_token_provider

    def counted(scopes: list[str]) -> str:
        minted.append(tuple(scopes))
        return mint(scopes)

    monkeypatch.setattr(tokens, "system_token_provider", counted)

    done = promotion_execute(promotion_id=promotion.pk)

    assert done.status == "succeeded", done.error
    assert done.blobs_mounted == done.blobs_total == 10
    assert raw(demo, "rcdocker", unique_repo, "1.0") == raw(demo, "devdocker", unique_repo, "1.0")
    assert minted and len(minted) == len(set(minted)), minted
