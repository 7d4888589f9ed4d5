"""The local stack: an embedded PostgreSQL, moto's S3 server and demo data, on loopback only.

Used by ``make run`` / ``make up`` (:mod:`sparkify_local.runner`) and by the tests.
"""
