from django.urls import path, re_path

from registries import views, views_promotions

app_name = "registries"

# Repository names carry slashes and tags cannot contain ':' or '/', so an image is
# addressed like a docker reference: /registries/devdocker/images/team/api:1.0
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPO = rf"(?P<repository>{_COMPONENT}(?:/{_COMPONENT})*)"
TAG = r"(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127})"
REG = r"(?P<registry>[a-z0-9]+(?:[._-][a-z0-9]+)*)"

urlpatterns = [
    path("", views.registry_list, name="registry_list"),
    path("registry/notifications", views.registry_notifications, name="notifications"),
    re_path(rf"^registries/{REG}/$", views.registry_detail, name="registry_detail"),
    re_path(
        rf"^registries/{REG}/images/{REPO}$", views.repository_detail, name="repository_detail"
    ),
    re_path(rf"^registries/{REG}/images/{REPO}:{TAG}$", views.tag_detail, name="tag_detail"),
    re_path(
        rf"^registries/{REG}/images/{REPO}:{TAG}/promote$", views_promotions.promote, name="promote"
    ),
    re_path(
        rf"^registries/{REG}/images/{REPO}:{TAG}/rollback$",
        views_promotions.roll_back,
        name="roll_back",
    ),
    re_path(
        rf"^registries/{REG}/manage$", views_promotions.registry_manage, name="registry_manage"
    ),
    path("registries/new", views_promotions.registry_manage, name="registry_create"),
    path("promotions/", views_promotions.promotion_list, name="promotion_list"),
    path(
        "promotions/<int:promotion_id>/", views_promotions.promotion_detail, name="promotion_detail"
    ),
    path(
        "promotions/<int:promotion_id>/run-again",
        views_promotions.promotion_run_again,
        name="promotion_run_again",
    ),
]
