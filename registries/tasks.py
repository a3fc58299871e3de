"""Background tasks; they take ids, not objects."""

from django.tasks import task

from registries.promotions import promotion_execute


@task(queue_name="promotions")
def promote(promotion_id: int) -> str:
    """Run one promotion in the worker."""
    return promotion_execute(promotion_id=promotion_id).status
