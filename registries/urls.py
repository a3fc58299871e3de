from django.urls import path, re_path

from registries.models import REGISTRY_NAME_VALIDATOR
from registries.oci.manifest import NAME_RE, TAG_RE
from registries.views import batches, notifications, pipeline, policies, promotions
from registries.views import registries as views

app_name = "registries"

# Repository names carry slashes and tags cannot contain ':' or '/', so an image is
# addressed like a docker reference: /registries/devdocker/images/team/api:1.0
# The patterns are the validators' own, so URLs and validation never disagree.
REPO = rf"(?P<repository>{NAME_RE.pattern})"
TAG = rf"(?P<tag>{TAG_RE.pattern})"
REG = rf"(?P<registry>{REGISTRY_NAME_VALIDATOR.regex.pattern.strip('^$')})"

urlpatterns = [
    path("", pipeline.pipeline_board, name="pipeline"),
    path("registries/", views.registry_list, name="registry_list"),
    path("audit/", pipeline.audit_list, name="audit"),
    re_path(r"^audit/export\.(?P<format>csv|json)$", pipeline.audit_export, name="audit_export"),
    path("registry/notifications", notifications.registry_notifications, name="notifications"),
    re_path(rf"^registries/{REG}/$", views.registry_detail, name="registry_detail"),
    re_path(
        rf"^registries/{REG}/images/{REPO}$", views.repository_detail, name="repository_detail"
    ),
    re_path(rf"^registries/{REG}/images/{REPO}:{TAG}$", views.tag_detail, name="tag_detail"),
    re_path(rf"^registries/{REG}/images/{REPO}:{TAG}/promote$", promotions.promote, name="promote"),
    re_path(
        rf"^registries/{REG}/images/{REPO}:{TAG}/rollback$",
        promotions.roll_back,
        name="roll_back",
    ),
    re_path(rf"^registries/{REG}/manage$", views.registry_manage, name="registry_manage"),
    path("registries/new", views.registry_manage, name="registry_create"),
    re_path(rf"^registries/{REG}/promote-selected$", batches.batch_form, name="batch_form"),
    path("promotions/", promotions.promotion_list, name="promotion_list"),
    path("promotions/batches/<int:batch_id>/", batches.batch_detail, name="batch_detail"),
    path(
        "promotions/batches/<int:batch_id>/run-again",
        batches.batch_run_again,
        name="batch_run_again",
    ),
    path("promotions/<int:promotion_id>/", promotions.promotion_detail, name="promotion_detail"),
    path(
        "promotions/<int:promotion_id>/run-again",
        promotions.promotion_run_again,
        name="promotion_run_again",
    ),
    # Policies before production: the policy, approvals, webhooks.
    re_path(rf"^registries/{REG}/policy$", policies.policy_manage, name="policy_manage"),
    path("approvals/", policies.approval_list, name="approval_list"),
    path("approvals/<int:request_id>/", policies.approval_detail, name="approval_detail"),
    path("webhooks/", policies.webhook_list, name="webhook_list"),
    path("webhooks/new", policies.webhook_form, name="webhook_create"),
    path("webhooks/<int:webhook_id>/", policies.webhook_detail, name="webhook_detail"),
    path("webhooks/<int:webhook_id>/edit", policies.webhook_form, name="webhook_edit"),
    path("webhooks/<int:webhook_id>/test", policies.webhook_test, name="webhook_test"),
    path("webhooks/<int:webhook_id>/delete", policies.webhook_remove, name="webhook_delete"),
    path(
        "webhooks/deliveries/<int:delivery_id>/redeliver",
        policies.webhook_redeliver,
        name="webhook_redeliver",
    ),
]
