"""The durable outbox and what travels through it: CRP violation reports.

* ``reports``: the report payload (digest §3.6, G27), its triggers and the daily
  per-tenant cap, checked when the data path enqueues (:func:`plan_report`).
* ``signing``: each tenant's report signing secret and the ``X-CRP-Signature``
  header.
* ``sender``: one SSRF-guarded POST (G26).
* ``dispatcher``: the background task that delivers due messages at least once.
"""
