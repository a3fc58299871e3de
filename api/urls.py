from django.urls import path, re_path

from api import views

app_name = "api"

# Path parameters take anything to the end, newlines included (the views check them), so an
# odd value gets the API's own 404 or 400 and never the HTML 404 page.
ANY = r"[\s\S]+"

urlpatterns = [
    path("promotions/promote", views.promote, name="promote"),
    path("promotions/list", views.promotion_list, name="promotion_list"),
    re_path(
        rf"^promotions/status/(?P<promotion_id>{ANY})$",
        views.promotion_status,
        name="promotion_status",
    ),
    path("management/feeds/list", views.feed_list, name="feed_list"),
    re_path(rf"^management/feeds/get/(?P<name>{ANY})$", views.feed_get, name="feed_get"),
    path("management/feeds/create", views.feed_create, name="feed_create"),
    re_path(rf"^management/feeds/update/(?P<name>{ANY})$", views.feed_update, name="feed_update"),
    re_path(rf"^management/feeds/delete/(?P<name>{ANY})$", views.feed_delete, name="feed_delete"),
    path("api-keys/create", views.api_key_create, name="api_key_create"),
    path("api-keys/list", views.api_key_list, name="api_key_list"),
    re_path(
        rf"^api-keys/delete/(?P<api_key_id>{ANY})$", views.api_key_delete, name="api_key_delete"
    ),
    path("openapi.json", views.openapi_json, name="openapi"),
    path("docs", views.docs, name="docs"),
    re_path(r"^(?P<rest>[\s\S]*)$", views.not_found),
]
