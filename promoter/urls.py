from django.contrib import admin
from django.urls import include, path

from accounts.token_service import docker_token
from accounts.urls import administration_patterns
from registries import views as registry_views

urlpatterns = [
    path("healthz", registry_views.healthz, name="healthz"),
    path("auth/token", docker_token, name="docker_token"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/", include("api.urls")),
    path("administration/", include((administration_patterns, "administration"))),
    path("", include("registries.urls")),
]

handler404 = "registries.views.page_not_found"
handler403 = "registries.views.permission_denied"
handler500 = "registries.views.server_error"
