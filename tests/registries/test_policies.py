"""Policies before production, end to end through real registries: each rule blocks a
promotion into proddocker (the checklist in the page), approvals from two people start the
promotion by themselves, a re-push voids a pending approval, immutable tags."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from accounts.permissions import Principal
from promoter.errors import Conflict, Forbidden, PolicyUnmet
from registries.models import ApprovalRequest, HistoryEvent, Promotion, Registry, Tag
from registries.services.approvals import approval_decide, approval_request
from registries.services.policies import policy_evaluate, policy_update
from registries.services.promotions import promotion_request, promotion_retry
from registries.services.tags import tag_roll_back
from tests.conftest import user_with, wait_for
from tests.support.images import push_image

pytestmark = pytest.mark.django_db(transaction=True)


def reg(name: str) -> Registry:
    return Registry.objects.get(name=name)


def admin() -> Principal:
    return Principal(user=get_user_model().objects.get(username="Admin"))


def person(*tasks: tuple[str, str | None]) -> Principal:
    """A user holding each (task, registry) given."""
    user = user_with()
    for task, registry in tasks:
        user_with(task, registry=registry, username=user.username)
    return Principal(user=get_user_model().objects.get(pk=user.pk))


def set_policy(registry: str, **values) -> None:
    policy_update(registry=reg(registry), actor=admin(), values=values)


def promote(repo, *, source="rcdocker", target="proddocker", actor=None, tag="1.0", comment=""):
    promotion = promotion_request(
        source=reg(source),
        repository=repo,
        tag=tag,
        target=reg(target),
        actor=actor or admin(),
        comment=comment,
    )
    promotion.refresh_from_db()
    return promotion


def indexed(registry: str, repo: str, tag: str = "1.0") -> Tag:
    assert wait_for(
        lambda: Tag.objects.filter(
            repository__registry__name=registry, repository__name=repo, name=tag
        ).exists(),
        timeout=10,
    ), f"{registry}/{repo}:{tag} never reached the index"
    return Tag.objects.get(repository__registry__name=registry, repository__name=repo, name=tag)


@pytest.fixture
def in_rc(demo, admin_creds, unique_repo, tmp_path):
    """An image pushed to devdocker and promoted to rcdocker: ready for proddocker."""
    info = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        layers=1,
        layer_size=2048,
        creds=admin_creds,
        tmp_path=tmp_path,
        labels={"org.opencontainers.image.version": "1.0"},
    )
    indexed("devdocker", unique_repo)
    assert promote(unique_repo, source="devdocker", target="rcdocker").status == "succeeded"
    return unique_repo, info


RULES = {
    "approvals": ({"approvals_required": 2}, "0 of 2 approvals"),
    "soak": ({"soak_seconds": 3 * 86400}, "needs 3 days"),
    "signed": ({"require_signature": True}, "not signed"),
    "labels": (
        {"required_labels": [{"key": "org.opencontainers.image.revision", "pattern": ""}]},
        "label org.opencontainers.image.revision missing",
    ),
    "labels-pattern": (
        {"required_labels": "org.opencontainers.image.version ~ v\\d+\\.\\d+"},
        "does not match",
    ),
    "immutable": ({"immutable_tags": True}, "moving it needs Overwrite Tags"),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_blocks_a_promotion_into_proddocker_with_the_checklist_in_the_page(
    in_rc, demo, admin_creds, tmp_path, client, rule
):
    repo, info = in_rc
    values, says = RULES[rule]
    if rule == "immutable":
        # proddocker holds 1.0 already, at another digest.
        assert promote(repo).status == "succeeded"
        push_image(
            demo.hostport,
            f"devdocker/{repo}",
            "1.0",
            layers=1,
            creds=admin_creds,
            tmp_path=tmp_path,
        )
        wait_for(lambda: indexed("devdocker", repo).digest != info.digest, timeout=10)
        assert promote(repo, source="devdocker", target="rcdocker").status == "succeeded"
    set_policy("proddocker", **values)
    before = Tag.objects.filter(repository__registry__name="proddocker").count()
    # Someone who may promote into proddocker, and holds nothing else.
    promoter = person(("Promote Packages", "proddocker"), ("View & Download Packages", None))

    with pytest.raises(PolicyUnmet) as refused:
        promote(repo, actor=promoter)

    unmet = refused.value.checklist.unmet
    assert [c.rule for c in unmet] == [rule.split("-")[0]]
    assert says in unmet[0].message
    assert refused.value.status == 409
    assert not Promotion.objects.filter(target__name="proddocker", status="queued").exists()
    assert Tag.objects.filter(repository__registry__name="proddocker").count() == before

    # The promote dialog shows the checklist; submitting shows it again, with the refusal.
    client.force_login(promoter.user)
    url = f"/registries/rcdocker/images/{repo}:1.0/promote"
    page = client.get(url).content.decode()
    assert 'id="policy-checklist"' in page
    assert says in page.replace("&#x27;", "'")
    answer = client.post(url, {"target": reg("proddocker").pk, "comment": "go"})
    assert answer.status_code == 400
    text = answer.content.decode().replace("&#x27;", "'")
    assert "The policy of proddocker is not met" in text
    assert 'class="check check-unmet" data-rule="' + rule.split("-")[0] + '"' in text


def test_rules_met_let_the_promotion_through(in_rc, demo, admin_creds, tmp_path):
    repo, info = in_rc
    sig_tag = info.digest.replace(":", "-") + ".sig"
    # rcdocker is Validated (nobody pushes there): sign in devdocker, the signature travels.
    push_image(
        demo.hostport,
        f"devdocker/{repo}",
        sig_tag,
        layers=1,
        layer_size=256,
        creds=admin_creds,
        tmp_path=tmp_path / "sig",
    )
    indexed("devdocker", repo, sig_tag)
    assert promote(repo, source="devdocker", target="rcdocker").status == "succeeded"
    set_policy(
        "proddocker",
        soak_seconds=1,
        require_signature=True,
        required_labels="org.opencontainers.image.version ~ \\d+\\.\\d+",
        immutable_tags=True,
    )
    checklist = wait_for(
        lambda: (
            (
                c := policy_evaluate(
                    source=reg("rcdocker"),
                    target=reg("proddocker"),
                    repository=repo,
                    tag="1.0",
                    digest=info.digest,
                    actor=admin(),
                )
            ).ok
            and c
        ),
        timeout=10,
    )
    assert checklist, "the rules were never met"
    assert {c.rule for c in checklist.checks} == {"soak", "signed", "labels", "immutable"}

    promotion = promote(repo)

    promotion.refresh_from_db()
    assert promotion.status == "succeeded", promotion.error
    assert indexed("proddocker", repo).digest == info.digest


def test_two_approvals_from_two_people_then_the_promotion_runs_by_itself(in_rc):
    repo, info = in_rc
    set_policy("proddocker", approvals_required=2)
    requester = person(
        ("Promote Packages", "proddocker"),
        ("View & Download Packages", None),
        ("Approve Promotions", "proddocker"),  # may approve others' requests, never its own
    )
    first = person(("Approve Promotions", "proddocker"))
    second = person(("Approve Promotions", "proddocker"))
    outsider = person(("Approve Promotions", "rcdocker"))

    asked = approval_request(
        source=reg("rcdocker"),
        repository=repo,
        tag="1.0",
        target=reg("proddocker"),
        actor=requester,
        comment="Release 1.0",
    )
    assert asked.status == "pending" and asked.digest == info.digest

    with pytest.raises(Forbidden, match="another person must approve"):
        approval_decide(request=asked, actor=requester, approve=True)
    with pytest.raises(Forbidden, match="Approve Promotions on proddocker"):
        approval_decide(request=asked, actor=outsider, approve=True)
    after_one = approval_decide(request=asked, actor=first, approve=True, comment="LGTM")
    assert after_one.status == "pending" and after_one.promotion is None
    with pytest.raises(Conflict, match="decided on this request already"):
        approval_decide(request=asked, actor=first, approve=True)
    assert not Tag.objects.filter(repository__registry__name="proddocker").exists()

    done = approval_decide(request=asked, actor=second, approve=True)

    assert done.status == "approved"
    promotion = Promotion.objects.get(pk=done.promotion_id)
    assert promotion.status == "succeeded", promotion.error
    assert (promotion.actor, promotion.comment) == (requester.name, "Release 1.0")
    assert indexed("proddocker", repo).digest == info.digest
    trail = list(
        HistoryEvent.objects.filter(repository=repo, digest=info.digest, to_registry="proddocker")
        .order_by("created_at", "id")
        .values_list("action", "actor")
    )
    assert trail == [
        ("requested", requester.name),
        ("approved", first.name),
        ("approved", second.name),
        ("promoted", requester.name),
    ]


def test_a_rejection_ends_the_request_and_nothing_is_promoted(in_rc):
    repo, _ = in_rc
    set_policy("proddocker", approvals_required=1)
    asked = approval_request(
        source=reg("rcdocker"), repository=repo, tag="1.0", target=reg("proddocker"), actor=admin()
    )
    approver = person(("Approve Promotions", "proddocker"))

    rejected = approval_decide(request=asked, actor=approver, approve=False, comment="Not yet")

    assert rejected.status == "rejected"
    assert HistoryEvent.objects.filter(
        action="rejected", repository=repo, comment="Not yet"
    ).exists()
    assert not Promotion.objects.filter(target__name="proddocker").exists()
    with pytest.raises(Conflict, match="rejected already"):
        approval_decide(request=asked, actor=person(("Approve Promotions", None)), approve=True)


def test_a_repush_in_the_source_voids_a_pending_approval(demo, admin_creds, unique_repo, tmp_path):
    first = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        layers=1,
        creds=admin_creds,
        tmp_path=tmp_path,
    )
    indexed("devdocker", unique_repo)
    set_policy("rcdocker", approvals_required=1)
    asked = approval_request(
        source=reg("devdocker"),
        repository=unique_repo,
        tag="1.0",
        target=reg("rcdocker"),
        actor=admin(),
    )
    assert asked.digest == first.digest

    second = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        layers=1,
        creds=admin_creds,
        tmp_path=tmp_path,
    )

    assert wait_for(
        lambda: ApprovalRequest.objects.get(pk=asked.pk).status == "expired", timeout=10
    ), "the re-push did not void the request"
    expired = HistoryEvent.objects.get(action="expired", repository=unique_repo)
    assert expired.digest == first.digest
    assert "pushed again" in expired.comment and second.digest[:19] in expired.comment
    approver = person(("Approve Promotions", "rcdocker"))
    with pytest.raises(Conflict, match="expired already"):
        approval_decide(request=asked, actor=approver, approve=True)
    assert not Promotion.objects.filter(target__name="rcdocker").exists()


def test_an_immutable_tag_moves_only_with_overwrite_tags(in_rc, demo, admin_creds, tmp_path):
    repo, first = in_rc
    set_policy("proddocker", immutable_tags=True)
    promoter = person(("Promote Packages", "proddocker"), ("View & Download Packages", None))
    assert promote(repo, actor=promoter).status == "succeeded"  # new in proddocker: fine
    second = push_image(
        demo.hostport, f"devdocker/{repo}", "1.0", layers=1, creds=admin_creds, tmp_path=tmp_path
    )
    wait_for(lambda: indexed("devdocker", repo).digest == second.digest, timeout=10)
    assert promote(repo, source="devdocker", target="rcdocker").status == "succeeded"

    with pytest.raises(PolicyUnmet, match="moving it needs Overwrite Tags"):
        promote(repo, actor=promoter)
    assert indexed("proddocker", repo).digest == first.digest

    user_with("Overwrite Tags", registry="proddocker", username=promoter.user.username)
    allowed = Principal(user=get_user_model().objects.get(pk=promoter.user.pk))
    moved = promote(repo, actor=allowed)
    moved.refresh_from_db()
    assert moved.status == "succeeded", moved.error
    assert indexed("proddocker", repo).digest == second.digest

    # Rolling back moves the tag too: refused without Overwrite Tags, allowed with it.
    tag = indexed("proddocker", repo)
    with pytest.raises(PolicyUnmet, match="rolling 1.0 back needs Overwrite Tags"):
        tag_roll_back(tag=tag, actor=promoter)
    assert indexed("proddocker", repo).digest == second.digest
    tag_roll_back(tag=tag, actor=allowed)
    assert indexed("proddocker", repo).digest == first.digest


def test_running_a_failed_promotion_again_obeys_the_policy(in_rc, queued_only):
    repo, _ = in_rc
    promotion = promote(repo)
    Promotion.objects.filter(pk=promotion.pk).update(status="failed", error="broken")
    promotion.refresh_from_db()
    set_policy("proddocker", require_signature=True)

    with pytest.raises(PolicyUnmet, match="not signed"):
        promotion_retry(promotion=promotion, actor=admin())
    promotion.refresh_from_db()
    assert promotion.status == "failed"


def test_the_inbox_lists_requests_with_a_count_in_the_top_bar(in_rc, client):
    repo, _ = in_rc
    set_policy("proddocker", approvals_required=1)
    requester = person(("Promote Packages", "proddocker"), ("View & Download Packages", None))
    client.force_login(requester.user)
    url = f"/registries/rcdocker/images/{repo}:1.0/promote"
    dialog = client.get(url).content.decode()
    assert "Request promotion" in dialog and "0 of 1 approvals" in dialog

    asked = client.post(
        url, {"target": reg("proddocker").pk, "comment": "Please", "request_approval": "1"}
    )

    request = ApprovalRequest.objects.get()
    assert asked.status_code == 302 and asked["Location"] == f"/approvals/{request.pk}/"
    approver = person(("Approve Promotions", "proddocker"), ("View & Download Packages", None))
    client.force_login(approver.user)
    inbox = client.get("/approvals/").content.decode()
    assert 'id="approvals-count"' in inbox and ">1</span>" in inbox
    assert f"{repo}:1.0" in inbox
    decided = client.post(f"/approvals/{request.pk}/", {"decision": "approve", "comment": "ok"})
    request.refresh_from_db()
    assert decided.status_code == 302
    assert decided["Location"] == f"/promotions/{request.promotion_id}/"
    assert Promotion.objects.get(pk=request.promotion_id).status == "succeeded"
    assert 'id="approvals-count"' not in client.get("/approvals/").content.decode()


def test_manage_feed_sets_the_policy(demo, client):
    client.force_login(get_user_model().objects.get(username="Admin"))
    page = client.get("/registries/proddocker/manage").content.decode()
    assert 'id="policy-form"' in page
    saved = client.post(
        "/registries/proddocker/policy",
        {
            "approvals_required": 2,
            "soak_hours": "72",
            "require_signature": "on",
            "signature_identity": "release@example.com",
            "required_labels": "org.opencontainers.image.revision\nversion ~ v\\d+",
            "immutable_tags": "on",
            "approval_ttl_hours": "24",
        },
    )
    assert saved.status_code == 302
    policy = reg("proddocker").policy
    assert (policy.approvals_required, policy.soak_seconds, policy.approval_ttl_seconds) == (
        2,
        72 * 3600,
        24 * 3600,
    )
    assert policy.required_labels == [
        {"key": "org.opencontainers.image.revision", "pattern": ""},
        {"key": "version", "pattern": "v\\d+"},
    ]
    bad = client.post(
        "/registries/proddocker/policy",
        {
            "approvals_required": 0,
            "soak_hours": "0",
            "required_labels": "x ~ (",
            "approval_ttl_hours": "1",
        },
    )
    assert bad.status_code == 400
    assert "not a regular expression" in bad.content.decode()
    assert reg("proddocker").policy.required_labels == policy.required_labels
    # Someone without Manage Feed cannot change it.
    client.force_login(user_with("Promote Packages", registry="proddocker"))
    assert client.post("/registries/proddocker/policy", {"approvals_required": 0}).status_code in (
        403,
        404,
    )


@pytest.mark.browser
def test_in_the_browser_a_blocked_dialog_then_request_and_approve(in_rc, demo, browser, page):
    from tests.browser_support import login, screenshot

    repo, info = in_rc
    set_policy("proddocker", require_signature=True)
    requester = person(("Promote Packages", "proddocker"), ("View & Download Packages", None))
    login(page, demo.url, requester.user.username, "correct horse battery staple")
    tag_url = f"{demo.url}/registries/rcdocker/images/{repo}:1.0"

    page.goto(tag_url)
    page.locator("#tag-actions summary").click()
    page.locator("#promote-action").click()
    dialog = page.locator("dialog#promote-dialog")
    dialog.wait_for(state="visible")
    unmet = dialog.locator('#policy-checklist li[data-rule="signed"]')
    assert "not signed" in unmet.inner_text() and "✗" in unmet.inner_text()
    assert dialog.locator("#promote-submit").is_disabled()
    screenshot(page, "policy-blocked")

    set_policy("proddocker", require_signature=False, approvals_required=1)
    page.goto(tag_url)
    page.locator("#tag-actions summary").click()
    page.locator("#promote-action").click()
    dialog.wait_for(state="visible")
    assert "0 of 1 approvals" in dialog.locator("#policy-checklist").inner_text()
    submit = dialog.locator("#promote-submit")
    assert submit.inner_text() == "Request promotion"
    dialog.get_by_label("Comment").fill("Release 1.0")
    submit.click()
    page.wait_for_url("**/approvals/*/")
    assert page.locator("#approval-status").inner_text() == "Pending"
    screenshot(page, "policy-requested")

    approver = person(("Approve Promotions", "proddocker"), ("View & Download Packages", None))
    other = browser.new_context(viewport={"width": 1280, "height": 900})
    other.set_default_timeout(15_000)
    try:
        tab = other.new_page()
        login(tab, demo.url, approver.user.username, "correct horse battery staple")
        assert tab.locator("#approvals-count").inner_text() == "1"
        tab.locator("#nav-approvals").click()
        tab.locator("#approval-inbox a", has_text=f"{repo}:1.0").click()
        tab.get_by_label("Comment").fill("Checked")
        tab.locator("#approve-button").click()
        tab.wait_for_url("**/promotions/*/")
        screenshot(tab, "policy-approved")
    finally:
        other.close()
    assert wait_for(
        lambda: Promotion.objects.filter(status="succeeded", target__name="proddocker").exists(),
        timeout=60,
    )
    assert indexed("proddocker", repo).digest == info.digest


def test_a_request_nobody_decides_in_time_expires(in_rc):
    repo, info = in_rc
    set_policy("proddocker", approvals_required=1, approval_ttl_seconds=3600)
    asked = approval_request(
        source=reg("rcdocker"), repository=repo, tag="1.0", target=reg("proddocker"), actor=admin()
    )
    # An hour passes (the clock is the row's: moving it is what time would do).
    ApprovalRequest.objects.filter(pk=asked.pk).update(expires_at=asked.created_at)
    asked.refresh_from_db()

    with pytest.raises(Conflict, match="expired before it was decided"):
        approval_decide(request=asked, actor=person(("Approve Promotions", None)), approve=True)

    asked.refresh_from_db()
    assert asked.status == "expired"
    event = HistoryEvent.objects.get(action="expired", repository=repo)
    assert (event.digest, event.comment) == (info.digest, "no decision in time")
    assert not Promotion.objects.filter(target__name="proddocker").exists()


def test_a_signature_names_its_key_identity_in_annotations():
    """Unit: which annotations name an identity (a value, notation's thumbprint list, the
    subject of a cosign keyless certificate)."""
    import datetime as dt
    import json

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from registries.services.policies import _identity_in

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sigstore-intermediate")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(minutes=10))
        .add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name("release@example.com")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()

    assert _identity_in({"dev.sigstore.cosign/certificate": pem}, "release@example.com")
    assert not _identity_in({"dev.sigstore.cosign/certificate": pem}, "mallory@example.com")
    thumbprints = json.dumps(["ab12", "cd34"])
    assert _identity_in({"io.cncf.notary.x509chain.thumbprint#S256": thumbprints}, "cd34")
    assert _identity_in({"signer": "ci-key-2026"}, "ci-key-2026")
    assert not _identity_in({"signer": "ci-key-2025"}, "ci-key-2026")
    assert not _identity_in(None, "ci-key-2026")


def test_signed_out_visitors_are_sent_to_sign_in_from_the_policy_pages(demo, client):
    for path in ["/approvals/", "/webhooks/", "/webhooks/new", "/registries/proddocker/policy"]:
        answer = client.get(path)
        assert answer.status_code == 302, path
        assert answer["Location"].startswith("/accounts/login/?next="), path
