"""Pages for promoting: the ▼ Promote dialog, progress, promotions, roll back."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from accounts.models import Permission
from accounts.permissions import Principal
from promoter.errors import DomainError, Forbidden, PolicyUnmet
from promoter.signin import sign_in_redirect, signed_out
from registries import selectors, selectors_pipeline, selectors_policies
from registries.forms import PromoteForm
from registries.models import COMMENT_MAX
from registries.services.approvals import approval_request
from registries.services.policies import policy_evaluate
from registries.services.previews import promotion_preview
from registries.services.promotions import promotion_request, promotion_retry
from registries.services.tags import tag_roll_back


def _tag_context(request: HttpRequest, registry: str, repository: str, tag: str):
    principal = Principal.from_request(request)
    reg = selectors.registry_get(principal=principal, name=registry)
    repo = selectors.repository_get(registry=reg, name=repository)
    tag_obj = selectors.tag_get(repository=repo, name=tag)
    return principal, reg, repo, tag_obj


@require_http_methods(["GET", "POST"])
def promote(request: HttpRequest, registry: str, repository: str, tag: str) -> HttpResponse:
    principal, reg, repo, tag_obj = _tag_context(request, registry, repository, tag)
    option = selectors_pipeline.promote_option(principal=principal, source=reg)
    targets = option.targets
    form = PromoteForm(request.POST or None, targets=targets)
    error, preview = "", None
    # The target's policy, as a checklist (✓ soaked 3 days, ✗ not signed, 1 of 2 approvals).
    checklist = _checklist(principal, reg, repo, tag_obj, targets)
    if not targets:
        error = f"You may not promote from {reg.name}: {option.reason}."
    elif request.method == "POST" and form.is_valid() and request.POST.get("preview"):
        # Preview: what promoting would do; nothing is written.
        preview = promotion_preview(
            source=reg,
            repository=repo.name,
            tag=tag_obj.name,
            target=form.cleaned_data["target"],
            actor=principal,
            comment=form.cleaned_data["comment"],
        )
    elif request.method == "POST" and form.is_valid():
        values = {
            "source": reg,
            "repository": repo.name,
            "tag": tag_obj.name,
            "target": form.cleaned_data["target"],
            "actor": principal,
            "comment": form.cleaned_data["comment"],
        }
        try:
            if request.POST.get("request_approval"):
                asked = approval_request(**values)
            else:
                promotion = promotion_request(**values)
        except PolicyUnmet as exc:
            error, checklist = exc.message, exc.checklist
        except DomainError as exc:
            error = exc.message
        else:
            if request.POST.get("request_approval"):
                messages.success(request, "Promotion requested: it runs once it is approved.")
                url = reverse("registries:approval_detail", args=[asked.pk])
                if request.htmx:
                    return HttpResponseClientRedirect(url)
                return redirect(url)
            if request.htmx:
                return render(
                    request,
                    "registries/promotion_detail.html#progress-dialog",
                    {"promotion": promotion, "poll": True, "in_dialog": True},
                )
            return redirect("registries:promotion_detail", promotion_id=promotion.pk)
    context = {
        "registry": reg,
        "repository": repo,
        "tag": tag_obj,
        "form": form,
        "targets": targets,
        "option": option,
        "states": selectors_pipeline.target_states(tag=tag_obj, targets=targets),
        "error": error,
        "checklist": checklist,
        "pending": _pending(reg, repo, tag_obj, checklist, targets),
        "preview": preview,
        "previews": [preview] if preview else [],
    }
    status = 400 if request.method == "POST" and preview is None else 200
    if request.htmx:
        return render(request, "registries/promotion_form.html#dialog", context, status=status)
    return render(request, "registries/promotion_form.html", context, status=status)


def _checklist(principal, reg, repo, tag_obj, targets):
    """The checklist of the one target this tag can go to (None for a free choice)."""
    if len(targets) != 1:
        return None
    checklist = policy_evaluate(
        source=reg,
        target=targets[0],
        repository=repo.name,
        tag=tag_obj.name,
        digest=tag_obj.digest,
        actor=principal,
    )
    return checklist if checklist.checks else None


def _pending(reg, repo, tag_obj, checklist, targets):
    if checklist is None or not checklist.needs_approval:
        return None
    return selectors_policies.approval_pending_for(
        source=reg,
        target=targets[0],
        repository=repo.name,
        tag=tag_obj.name,
        digest=tag_obj.digest,
    )


@require_GET
def promotion_detail(request: HttpRequest, promotion_id: int) -> HttpResponse:
    promotion = selectors.promotion_get(
        principal=Principal.from_request(request), promotion_id=promotion_id
    )
    context = {
        "promotion": promotion,
        "poll": not promotion.is_finished,
        # The progress partial polled from the dialog keeps the dialog's own Run again.
        "in_dialog": request.GET.get("dialog") == "1",
    }
    if request.htmx and request.GET.get("partial") == "dialog":
        context["in_dialog"] = True
        return render(request, "registries/promotion_detail.html#progress-dialog", context)
    if request.htmx and request.GET.get("partial") == "progress":
        return render(request, "registries/promotion_detail.html#progress", context)
    return render(request, "registries/promotion_detail.html", context)


@require_http_methods(["POST"])
def promotion_run_again(request: HttpRequest, promotion_id: int) -> HttpResponse:
    principal = Principal.from_request(request)
    promotion = selectors.promotion_get(principal=principal, promotion_id=promotion_id)
    try:
        with transaction.atomic():
            promotion_retry(promotion=promotion, actor=principal)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if request.htmx:
            # Run again from the progress dialog: the dialog follows the new attempt.
            context = {"promotion": promotion, "poll": True, "in_dialog": True}
            return render(request, "registries/promotion_detail.html#progress-dialog", context)
        messages.info(request, "The promotion was queued again.")
    if request.htmx:
        return HttpResponseClientRedirect(
            reverse("registries:promotion_detail", args=[promotion.pk])
        )
    return redirect("registries:promotion_detail", promotion_id=promotion.pk)


@require_GET
def promotion_list(request: HttpRequest) -> HttpResponse:
    principal = Principal.from_request(request)
    page = selectors.promotion_list(principal=principal, cursor=request.GET.get("cursor", "")[:64])
    if not page.object_list and signed_out(request):
        # Anonymous sees nothing here: "No promotions yet" would be wrong, signing in is right.
        return sign_in_redirect(request)
    batches = [] if page.has_previous() else selectors.batches_recent(principal=principal)
    return render(request, "registries/promotion_list.html", {"page_obj": page, "batches": batches})


@require_http_methods(["GET", "POST"])
def roll_back(request: HttpRequest, registry: str, repository: str, tag: str) -> HttpResponse:
    principal, reg, repo, tag_obj = _tag_context(request, registry, repository, tag)
    if not principal.has(Permission.PROMOTE, reg):
        raise Forbidden(f"You may not roll back tags in {reg.name}.")
    tag_url = reverse("registries:tag_detail", args=[reg.name, repo.name, tag_obj.name])
    error = ""
    comment = request.POST.get("comment", "").strip()
    if request.method == "POST":
        try:
            tag_roll_back(tag=tag_obj, actor=principal, comment=comment)
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(request, f"{repo.name}:{tag_obj.name} in {reg.name} was rolled back.")
            if request.htmx:
                return HttpResponseClientRedirect(tag_url + "?tab=history")
            return redirect(tag_url + "?tab=history")
    context = {
        "registry": reg,
        "repository": repo,
        "tag": tag_obj,
        "error": error,
        "tag_url": tag_url,
        "comment": comment,
        "comment_max": COMMENT_MAX,
    }
    status = 400 if error else 200
    if request.htmx:
        return render(
            request, "registries/tag_confirm_rollback.html#dialog", context, status=status
        )
    return render(request, "registries/tag_confirm_rollback.html", context, status=status)
