"""The rules that matter are backed by the database, and History cannot be rewritten."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from registries.models import HistoryEvent, Promotion, Registry, Repository, Tag
from registries.records import history_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    return history_record(
        action="pushed",
        registry="devdocker",
        repository="team/api",
        tag="1.0",
        digest="sha256:" + "1" * 64,
        actor="Admin",
    )


def test_history_cannot_be_changed_or_deleted_through_the_orm(event):
    event.comment = "rewritten"
    with pytest.raises(TypeError, match="append-only"):
        event.save()
    with pytest.raises(TypeError, match="append-only"):
        event.delete()
    with pytest.raises(TypeError, match="append-only"):
        HistoryEvent.objects.filter(pk=event.pk).update(comment="x")
    with pytest.raises(TypeError, match="append-only"):
        HistoryEvent.objects.all().delete()


def test_history_cannot_be_changed_or_deleted_with_sql(event):
    for sql in (
        "UPDATE registries_historyevent SET comment = 'x'",
        "DELETE FROM registries_historyevent",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)
    event_row = HistoryEvent.objects.get(pk=event.pk)
    assert event_row.comment == ""


def test_deleting_a_user_keeps_their_history():
    user = get_user_model().objects.create_user("leaver", password="x" * 12)
    from accounts.permissions import Principal

    history_record(
        action="pushed",
        registry="devdocker",
        repository="team/api",
        tag="1.0",
        digest="sha256:" + "2" * 64,
        actor=Principal(user=user),
    )
    user.delete()
    assert HistoryEvent.objects.get().actor == "leaver"


def test_one_tag_name_per_repository():
    repo = Repository.objects.create(registry=Registry.objects.create(name="r1"), name="team/api")
    Tag.objects.create(
        repository=repo, name="1.0", digest="sha256:" + "3" * 64, pushed_at=timezone.now()
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Tag.objects.create(
            repository=repo, name="1.0", digest="sha256:" + "4" * 64, pushed_at=timezone.now()
        )


def test_one_running_promotion_per_target_tag():
    source, target = Registry.objects.create(name="src"), Registry.objects.create(name="dst")
    fields = dict(
        source=source,
        target=target,
        repository="team/api",
        tag="1.0",
        digest="sha256:" + "5" * 64,
        actor="Admin",
    )
    Promotion.objects.create(status="running", **fields)
    Promotion.objects.create(status="queued", **fields)  # queued ones may wait
    with pytest.raises(IntegrityError), transaction.atomic():
        Promotion.objects.create(status="running", **fields)
