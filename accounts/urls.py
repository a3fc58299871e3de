from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]

# Included at /administration/ with the namespace "administration" (promoter/urls.py).
administration_patterns = [
    path("", views.administration, name="index"),
    path("users-tasks", views.users_tasks, name="users_tasks"),
    path("privileges/<int:privilege_id>/remove", views.privilege_remove, name="privilege_remove"),
    path("tasks", views.task_list, name="task_list"),
    path("tasks/<int:task_id>/edit", views.task_edit, name="task_edit"),
    path("tasks/<int:task_id>/delete", views.task_delete, name="task_delete"),
    path("api-keys", views.api_key_list, name="api_key_list"),
    path("api-keys/new", views.api_key_create, name="api_key_create"),
    path("api-keys/<int:api_key_id>/created", views.api_key_created, name="api_key_created"),
    path("api-keys/<int:api_key_id>/revoke", views.api_key_revoke, name="api_key_revoke"),
    path("users", views.user_list, name="user_list"),
    path("users/new", views.user_create, name="user_create"),
    path("users/<int:user_id>", views.user_edit, name="user_edit"),
    path("groups/new", views.group_create, name="group_create"),
    path("groups/<int:group_id>/delete", views.group_delete, name="group_delete"),
]
