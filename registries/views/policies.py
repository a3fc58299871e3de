"""Pages of policies before production: a registry's policy (Manage Feed), the approval
inbox, webhooks and their delivery log."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Permission
from accounts.permissions import Principal
from promoter.errors import DomainError, Forbidden
from promoter.signin import sign_in_redirect, signed_out
from registries import selectors, selectors_policies
from registries.policy_forms import DecisionForm, PolicyForm, WebhookForm
from registries.services.approvals import approval_decide
from registries.services.policies import label_rules_text, policy_update
from registries.services.webhooks import (
    webhook_create,
    webhook_delete,
    webhook_redeliver_one,
    webhook_send_test,
    webhook_update,
)


# --- the policy (a section of Manage Feed) -----------------------------------------------------
def _hours(seconds: int) -> Decimal:
    return (Decimal(seconds) / Decimal(3600)).quantize(Decimal("0.01"))


def policy_initial(policy) -> dict:
    """The policy form's values from a stored policy."""
    return {
        "approvals_required": policy.approvals_required,
        "soak_hours": _hours(policy.soak_seconds),
        "require_signature": policy.require_signature,
        "signature_identity": policy.signature_identity,
        "required_labels": label_rules_text(policy.required_labels),
        "immutable_tags": policy.immutable_tags,
        "approval_ttl_hours": _hours(policy.approval_ttl_seconds),
    }


@require_http_methods(["GET", "POST"])
def policy_manage(request: HttpRequest, registry: str) -> HttpResponse:
    principal = Principal.from_request(request)
    reg = selectors.registry_get(
        principal=principal, name=registry, permission=Permission.MANAGE_FEED
    )
    policy = selectors_policies.policy_get(registry=reg)
    form = PolicyForm(request.POST or None, initial=policy_initial(policy))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        values = {
            "approvals_required": data["approvals_required"],
            "soak_seconds": int(data["soak_hours"] * 3600),
            "require_signature": data["require_signature"],
            "signature_identity": data["signature_identity"],
            "required_labels": data["required_labels"],
            "immutable_tags": data["immutable_tags"],
            "approval_ttl_seconds": int(data["approval_ttl_hours"] * 3600),
        }
        try:
            policy_update(registry=reg, actor=principal, values=values)
        except Forbidden:
            raise
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Saved the promotion policy of {reg.name}.")
            return redirect("registries:policy_manage", registry=reg.name)
    return render(
        request,
        "registries/policy_form.html",
        {"registry": reg, "form": form, "policy": policy},
        status=400 if request.method == "POST" else 200,
    )


# --- approvals -----------------------------------------------------------------------------
@require_GET
def approval_list(request: HttpRequest) -> HttpResponse:
    principal = Principal.from_request(request)
    if signed_out(request):
        return sign_in_redirect(request)  # approvals are people's: nothing to see signed out
    context = {
        "inbox": list(selectors_policies.approval_inbox(principal=principal)),
        "page_obj": selectors_policies.approval_list(
            principal=principal, page=request.GET.get("page", 1)
        ),
    }
    return render(request, "registries/approval_list.html", context)


@require_http_methods(["GET", "POST"])
def approval_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    principal = Principal.from_request(request)
    found = selectors_policies.approval_get(principal=principal, request_id=request_id)
    form = DecisionForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        approve = request.POST.get("decision") == "approve"
        try:
            found = approval_decide(
                request=found,
                actor=principal,
                approve=approve,
                comment=form.cleaned_data["comment"],
            )
        except DomainError as exc:
            error = exc.message
        else:
            if found.promotion_id:
                messages.success(request, "Approved: the promotion has started.")
                return redirect("registries:promotion_detail", promotion_id=found.promotion_id)
            messages.success(request, "Approved." if approve else "Rejected.")
            return redirect("registries:approval_detail", request_id=found.pk)
    inbox_ids = set(
        selectors_policies.approval_inbox(principal=principal).values_list("pk", flat=True)
    )
    context = {
        "req": found,
        "approvals": list(found.approvals.all()),
        "form": form,
        "error": error,
        "can_decide": found.pk in inbox_ids,
    }
    return render(
        request,
        "registries/approval_detail.html",
        context,
        status=400 if error else 200,
    )


# --- webhooks ------------------------------------------------------------------------------
def _manageable_registries(principal: Principal):
    return list(selectors.registries_managed(principal=principal))


@require_GET
def webhook_list(request: HttpRequest) -> HttpResponse:
    principal = Principal.from_request(request)
    if signed_out(request):
        return sign_in_redirect(request)
    hooks = selectors_policies.webhook_list(principal=principal)
    can_add = principal.is_administrator() or bool(_manageable_registries(principal))
    return render(request, "registries/webhook_list.html", {"webhooks": hooks, "can_add": can_add})


@require_http_methods(["GET", "POST"])
def webhook_form(request: HttpRequest, webhook_id: int | None = None) -> HttpResponse:
    principal = Principal.from_request(request)
    hook = None
    if webhook_id is not None:
        hook = selectors_policies.webhook_get(principal=principal, webhook_id=webhook_id)
    registries = _manageable_registries(principal)
    if hook is None and not registries and not principal.is_administrator():
        raise Forbidden("You may not add webhooks: that needs Manage Feed on a registry.")
    initial = None
    if hook is not None:
        initial = {
            "name": hook.name,
            "url": hook.url,
            "registry": hook.registry,
            "events": hook.events,
            "active": hook.active,
        }
    form = WebhookForm(
        request.POST or None, initial=initial, registries=registries, editing=hook is not None
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        values = {k: data[k] for k in ("name", "url", "events", "active")}
        try:
            if hook is None:
                hook, secret = webhook_create(
                    registry=data["registry"], actor=principal, values=values
                )
            else:
                hook, secret = webhook_update(
                    webhook=hook, actor=principal, values=values, new_secret=data["new_secret"]
                )
        except Forbidden:
            raise
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            if secret:
                return render(
                    request, "registries/webhook_secret.html", {"webhook": hook, "secret": secret}
                )
            messages.success(request, f"Saved the webhook {hook.name}.")
            return redirect("registries:webhook_detail", webhook_id=hook.pk)
    return render(
        request,
        "registries/webhook_form.html",
        {"form": form, "webhook": hook},
        status=400 if request.method == "POST" else 200,
    )


@require_GET
def webhook_detail(request: HttpRequest, webhook_id: int) -> HttpResponse:
    principal = Principal.from_request(request)
    hook = selectors_policies.webhook_get(principal=principal, webhook_id=webhook_id)
    page = selectors_policies.webhook_deliveries(webhook=hook, page=request.GET.get("page", 1))
    context = {"webhook": hook, "page_obj": page}
    if request.htmx:
        return render(request, "registries/webhook_detail.html#deliveries", context)
    return render(request, "registries/webhook_detail.html", context)


@require_POST
def webhook_test(request: HttpRequest, webhook_id: int) -> HttpResponse:
    principal = Principal.from_request(request)
    hook = selectors_policies.webhook_get(principal=principal, webhook_id=webhook_id)
    try:
        webhook_send_test(webhook=hook, actor=principal)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, "A test event was queued; its delivery is listed below.")
    return redirect("registries:webhook_detail", webhook_id=hook.pk)


@require_POST
def webhook_redeliver(request: HttpRequest, delivery_id: int) -> HttpResponse:
    principal = Principal.from_request(request)
    delivery = selectors_policies.webhook_delivery_get(principal=principal, delivery_id=delivery_id)
    try:
        webhook_redeliver_one(delivery=delivery, actor=principal)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, "The delivery was queued again.")
    return redirect("registries:webhook_detail", webhook_id=delivery.webhook_id)


@require_POST
def webhook_remove(request: HttpRequest, webhook_id: int) -> HttpResponse:
    principal = Principal.from_request(request)
    hook = selectors_policies.webhook_get(principal=principal, webhook_id=webhook_id)
    webhook_delete(webhook=hook, actor=principal)
    messages.success(request, f"Deleted the webhook {hook.name}.")
    return redirect("registries:webhook_list")
