"""``python -m sparkify_local.moto_main``: moto's S3 server (``moto.server``), without one cost it
repeats on every request.

moto's server finds the backend for each request by testing its host against
``moto.backends.list_of_moto_modules()``, which lists moto's package folder and stats each of its
~200 entries, every time: a quarter of the server's CPU per S3 request here (py-spy, 4,000 PUTs and
GETs). The list cannot change while the server runs, so it is read once. Any other moto than the one
this expects runs unchanged.
"""

from __future__ import annotations


def list_modules_once() -> None:
    """Make ``moto.backends.list_of_moto_modules`` answer from one listing."""
    import moto.backends

    listing = getattr(moto.backends, "list_of_moto_modules", None)
    if callable(listing):
        modules = tuple(listing())
        moto.backends.list_of_moto_modules = lambda: modules


def main(argv: list[str] | None = None) -> None:
    from moto.server import main as moto_main

    list_modules_once()
    moto_main(argv)


if __name__ == "__main__":
    main()
