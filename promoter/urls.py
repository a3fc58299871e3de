from django.contrib import admin
from django.urls import include, path

from accounts.docker_token import docker_token
from accounts.urls import administration_patterns
from api.urls import health
from promoter import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("health", health, name="health"),  # ProGet's health object (pgutil health)
    path("readyz", views.readyz, name="readyz"),
    path("auth/token", docker_token, name="docker_token"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/", include("api.urls")),
    path("administration/", include((administration_patterns, "administration"))),
    path("", include("registries.urls")),
]

handler400 = "promoter.views.bad_request"
handler404 = "promoter.views.page_not_found"
handler403 = "promoter.views.permission_denied"
handler500 = "promoter.views.server_error"
