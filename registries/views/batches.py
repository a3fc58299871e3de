"""Pages for promoting many at once: Promote selected (with Preview) and a batch's page."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.permissions import Principal
from promoter.errors import DomainError
from registries import selectors
from registries.forms import BatchForm
from registries.models import BATCH_MAX_IMAGES
from registries.services.batches import Selection, batch_request, batch_rerun_failed


@require_http_methods(["GET", "POST"])
def batch_form(request: HttpRequest, registry: str) -> HttpResponse:
    """Promote selected: what the repository or registry page's checkboxes chose."""
    principal = Principal.from_request(request)
    reg = selectors.registry_get(principal=principal, name=registry)
    targets = selectors.promotion_targets(source=reg, principal=principal)
    data = request.POST if request.method == "POST" else request.GET
    repositories = [r for r in data.getlist("repository") if r][:BATCH_MAX_IMAGES]
    images = [i for i in data.getlist("image") if i][:BATCH_MAX_IMAGES]
    form = BatchForm(request.POST or None, targets=targets, initial={"tags": data.get("tags")})
    error, preview = "", None
    if not targets:
        error = f"You may not promote from {reg.name}: that needs Promote Packages on its target."
    elif not repositories and not images:
        error = "Nothing is selected: tick the images (or repositories) to promote first."
    elif request.method == "POST" and form.is_valid():
        try:
            selection = Selection.of(repositories=repositories, tags=form.tag_list(), images=images)
            result = batch_request(
                source=reg,
                target=form.cleaned_data["target"],
                selection=selection,
                comment=form.cleaned_data["comment"],
                actor=principal,
                dry_run=bool(request.POST.get("preview")),
            )
        except DomainError as exc:
            error = exc.message
        else:
            if request.POST.get("preview"):
                preview = result
            else:
                return redirect("registries:batch_detail", batch_id=result.pk)
    context = {
        "registry": reg,
        "targets": targets,
        "form": form,
        "repositories": repositories,
        "images": images,
        "error": error,
        "preview": preview,
    }
    status = 400 if error and request.method == "POST" else 200
    return render(request, "registries/batch_form.html", context, status=status)


@require_GET
def batch_detail(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = selectors.batch_get(principal=Principal.from_request(request), batch_id=batch_id)
    progress = selectors.batch_progress(batch)
    context = {"batch": batch, "progress": progress, "poll": progress.status == "running"}
    template = "registries/batch_detail.html"
    if request.htmx:
        template += "#batch-progress"
    return render(request, template, context)


@require_http_methods(["POST"])
def batch_run_again(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Run again the failed ones (each on its own; the others are not touched)."""
    principal = Principal.from_request(request)
    batch = selectors.batch_get(principal=principal, batch_id=batch_id)
    try:
        count = batch_rerun_failed(batch=batch, actor=principal)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if count:
            messages.info(request, f"{count} image{'s' if count != 1 else ''} asked for again.")
        else:
            messages.warning(request, "None could be run again; each image says why.")
    return redirect("registries:batch_detail", batch_id=batch.pk)
