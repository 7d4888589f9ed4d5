"""Work around apache/airflow#73428 (Airflow 3.3.2) in ``dag.test()`` and ``airflow dags test``.

``DAG.test()`` builds its scheduler DAG by an in-memory serialize/deserialize round trip, which
leaves ``dag.deadline`` holding the encoded deadline alerts instead of ``deadline_alert`` ids.
When such a run *succeeds*, ``DagRun.update_state()`` passes those dicts to
``DeadlineAlert.get_by_id()`` and crashes with ``AttributeError: 'dict' object has no attribute
'hex'``. Since ``sparkify_etl`` has a ``deadline``, every successful ``dag.test()`` of it hits
this. The fix proposed upstream (apache/airflow#73430) decodes dict entries instead of looking
them up; :func:`patch_dag_test_deadlines` does the same. ``plugins/airflow_local_settings.py``
applies it in every Airflow process, so ``airflow dags test sparkify_etl <date>`` works as the
README shows; the scheduler path (ids, not dicts) is unchanged. Remove once Airflow ships the fix.
"""

from __future__ import annotations

from collections.abc import Callable


def patch_dag_test_deadlines() -> Callable[[], None]:
    """Let ``DeadlineAlert.get_by_id`` accept an encoded alert; returns a function that undoes it."""
    from airflow.models.deadline_alert import DeadlineAlert

    original = DeadlineAlert.__dict__["get_by_id"]
    if getattr(original, "_sparkify_compat", False):
        return lambda: None
    lookup = original.__get__(None, DeadlineAlert)

    def get_by_id(cls, deadline_alert_id, **kwargs):
        if isinstance(deadline_alert_id, dict):
            encoded = deadline_alert_id
            return cls(
                name=encoded.get("name"),
                reference=encoded["reference"],
                interval=encoded["interval"],
                callback_def=encoded["callback"],
            )
        return lookup(deadline_alert_id, **kwargs)

    get_by_id._sparkify_compat = True  # type: ignore[attr-defined]
    DeadlineAlert.get_by_id = classmethod(get_by_id)

    def undo() -> None:
        DeadlineAlert.get_by_id = original

    return undo
