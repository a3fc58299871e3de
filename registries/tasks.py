"""Background tasks; they take ids, not objects, and hand over to the runner."""

from django.tasks import task

from registries.runner import promotion_execute


@task(queue_name="promotions")
def promote(promotion_id: int) -> str:
    """Run one promotion in the worker."""
    return promotion_execute(promotion_id=promotion_id).status
