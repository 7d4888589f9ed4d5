"""The data-quality page of the Airflow UI (``plugins/sparkify_quality_page.py`` registers it).

``results`` reads ``quality_results`` for a window (read-only), ``grid`` turns the rows into the
page's grid, summary, history charts and failures, and ``app`` is the FastAPI app that Airflow's
api-server mounts at ``/sparkify/quality``, behind Airflow's auth manager.
"""
