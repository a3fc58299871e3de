"""Pages of the index: registries, repositories and tags; Manage Feed."""

from __future__ import annotations

import shlex

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import Permission
from accounts.permissions import Principal
from promoter.errors import DomainError, Forbidden
from promoter.signin import sign_in_redirect, signed_out
from registries import selectors, selectors_pipeline, selectors_policies
from registries.accessories import accessory_of
from registries.forms import RegistryForm
from registries.policy_forms import PolicyForm
from registries.services.images import tag_image
from registries.services.referrers import image_referrers
from registries.services.registries import WRITABLE, registry_create, registry_update
from registries.views.policies import policy_initial


def _principal(request: HttpRequest) -> Principal:
    return Principal.from_request(request)


@require_GET
def registry_list(request: HttpRequest) -> HttpResponse:
    registries = selectors_pipeline.registries_in_pipeline_order(
        selectors.registry_list(principal=_principal(request))
    )
    if signed_out(request) and not registries:
        # Anonymous may see nothing here: the page to show is the sign-in page.
        return sign_in_redirect(request)
    return render(request, "registries/registry_list.html", {"registries": registries})


@require_GET
def registry_detail(request: HttpRequest, registry: str) -> HttpResponse:
    principal = _principal(request)
    reg = selectors.registry_get(principal=principal, name=registry)
    query = request.GET.get("q", "")[:200]
    page = selectors.repository_page(registry=reg, query=query, page=request.GET.get("page", 1))
    context = {
        "registry": reg,
        "page_obj": page,
        "q": query,
        "query": _other_params(request),
        "promotions": selectors.promotions_for_registry(registry=reg),
        "can_manage": principal.has("manage_feed", reg),
        "can_promote": bool(selectors.promotion_targets(source=reg, principal=principal)),
        "push_example": shell_command(
            "skopeo",
            "copy",
            "docker-archive:app.tar",
            f"docker://{reg.pull_host}/{reg.backing_path('team/app')}:1.0",
        ),
    }
    if request.htmx and request.htmx.target == "repositories":
        return render(request, "registries/registry_detail.html#repositories", context)
    return render(request, "registries/registry_detail.html", context)


@require_GET
def repository_detail(request: HttpRequest, registry: str, repository: str) -> HttpResponse:
    principal = _principal(request)
    reg = selectors.registry_get(principal=principal, name=registry)
    repo = selectors.repository_get(registry=reg, name=repository)
    query = request.GET.get("q", "")[:200]
    raw = request.GET.get("raw") == "1"
    page = selectors_pipeline.tag_rows(
        repository=repo, query=query, page=request.GET.get("page", 1), raw=raw
    )
    digests = list(dict.fromkeys(t.digest for t in page))
    chips = selectors_pipeline.stage_chips(
        registry=reg,
        repository=repo.name,
        digests=digests,
        registries=selectors_pipeline.registries_all(),
    )
    accessories = selectors_pipeline.accessories_for(repository=repo, digests=digests)
    for tag in page:
        tag.chips = chips.get(tag.digest, [])
        tag.accessories = accessories.get(tag.digest, [])
        tag.signed = selectors_pipeline.signed(tag.accessories)
        tag.accessory = accessory_of(tag.name)
    promote = selectors_pipeline.promote_option(principal=principal, source=reg)
    context = {
        "registry": reg,
        "repository": repo,
        "page_obj": page,
        "q": query,
        "raw": raw,
        "filter_hidden": {"raw": "1"} if raw else {},
        "query": _other_params(request),
        "untagged": selectors.untagged_images(repository=repo),
        "image_ref": f"{reg.pull_host}/{reg.backing_path(repo.name)}",
        "promote": promote,
        "can_promote": promote.allowed,  # Promote selected (checkboxes)
    }
    if request.htmx and request.htmx.target == "tags":
        return render(request, "registries/repository_detail.html#tags", context)
    return render(request, "registries/repository_detail.html", context)


@require_GET
def tag_detail(request: HttpRequest, registry: str, repository: str, tag: str) -> HttpResponse:
    principal = _principal(request)
    registries = selectors_pipeline.registries_all()  # one read shared by the selectors below
    reg = selectors.registry_get(principal=principal, name=registry, registries=registries)
    tag_obj = selectors.tag_at(registry=reg, repository=repository, name=tag)
    repo = tag_obj.repository
    image = f"{reg.pull_host}/{reg.backing_path(repo.name)}"
    tab = request.GET.get("tab", "overview")
    if tab not in {"overview", "history"}:
        tab = "overview"
    accessory = accessory_of(tag_obj.name)
    promote = selectors_pipeline.promote_option(principal=principal, source=reg)
    context = {
        "registry": reg,
        "repository": repo,
        "tag": tag_obj,
        "tab": tab,
        # Quoted for the shell: a displayed command is pasted into terminals.
        "pull_command": shell_command("docker", "pull", f"{image}@{tag_obj.digest}"),
        "pull_tag_command": shell_command("docker", "pull", f"{image}:{tag_obj.name}"),
        # Accessories travel with their image: never a Promote of their own.
        "accessory": accessory,
        "promote": promote,
        "can_promote": promote.allowed and accessory is None,
        "can_roll_back": bool(tag_obj.previous_digest) and principal.has("promote", reg),
    }
    if tab == "history":
        context["history"] = selectors_pipeline.tag_trail(
            principal=principal,
            tag=tag_obj,
            cursor=request.GET.get("cursor", "")[:64],
            registries=registries,
        )
    else:
        accessories = selectors_pipeline.accessories_for(repository=repo, digests=[tag_obj.digest])[
            tag_obj.digest
        ]
        context["image"] = tag_image(tag=tag_obj)
        context["about"] = selectors_pipeline.image_about(context["image"].details)
        context["chips"] = selectors_pipeline.stage_chips(
            registry=reg, repository=repo.name, digests=[tag_obj.digest], registries=registries
        )[tag_obj.digest]
        context["arrival"] = selectors_pipeline.tag_arrival(tag=tag_obj)
        context["accessories"] = accessories
        context["signed"] = selectors_pipeline.signed(accessories)
        context["locations"] = selectors_pipeline.image_locations(
            principal=principal, digest=tag_obj.digest, registries=registries
        )
        context["referrers"] = image_referrers(
            registry=reg,
            repository=repo.name,
            digest=tag_obj.digest,
            indexed=any(a.kind == "referrers" for a in accessories),
        )
    if request.htmx and request.htmx.target == "tab-content":
        return render(request, "registries/tag_detail.html#tab-content", context)
    return render(request, "registries/tag_detail.html", context)


def shell_command(*words: str) -> str:
    """A command line to copy and paste: every word quoted for POSIX shells."""
    return " ".join(shlex.quote(word) for word in words)


def _other_params(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@require_http_methods(["GET", "POST"])
def registry_manage(request: HttpRequest, registry: str | None = None) -> HttpResponse:
    """Manage Feed: edit a registry (or create one when `registry` is None)."""
    principal = Principal.from_request(request)
    instance = None
    if registry is not None:
        instance = selectors.registry_get(
            principal=principal, name=registry, permission=Permission.MANAGE_FEED
        )
    elif not principal.is_administrator():
        raise Forbidden("Only administrators may create registries.")
    form = RegistryForm(
        request.POST or None,
        instance=instance,
        can_change_connection=principal.has(Permission.ADMINISTER, instance),
    )
    if request.method == "POST" and form.is_valid():
        values = {field: form.cleaned_data.get(field) for field in WRITABLE}
        # An empty choice clears Promote To ("" is a value; None would mean "unchanged").
        values["promote_to"] = values["promote_to"] or ""
        try:
            if instance is None:
                saved = registry_create(
                    name=form.cleaned_data["name"], actor=principal, values=values
                )
            else:
                saved = registry_update(registry=instance, actor=principal, values=values)
        except Forbidden:
            raise
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Saved {saved.name}.")
            return redirect("registries:registry_detail", registry=saved.name)
    policy_form = None
    if instance is not None:  # the Manage Feed page's policy section (posts to policy_manage)
        policy = selectors_policies.policy_get(registry=instance)
        policy_form = PolicyForm(initial=policy_initial(policy))
    return render(
        request,
        "registries/registry_form.html",
        {"form": form, "registry": instance, "policy_form": policy_form},
        status=400 if request.method == "POST" else 200,
    )
