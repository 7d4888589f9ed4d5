"""The tag that marks what sparkify_setup created: the teardown deletes only what carries it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

CREATED_BY_KEY = "sparkify-created-by"
CREATED_BY_VALUE = "sparkify_setup"
PROJECT_TAGS = {CREATED_BY_KEY: CREATED_BY_VALUE, "project": "sparkify"}


def tag_list(*, lower: bool = False) -> list[dict[str, str]]:
    """The setup's tags, as ``[{"Key", "Value"}]`` (or ``key``/``value`` for Redshift Serverless)."""
    k, v = ("key", "value") if lower else ("Key", "Value")
    return [{k: key, v: value} for key, value in PROJECT_TAGS.items()]


def is_ours(tags: Sequence[Mapping[str, str]] | None) -> bool:
    """Whether a resource's tags say sparkify_setup created it."""
    for tag in tags or ():
        key = tag.get("Key", tag.get("key"))
        if key == CREATED_BY_KEY and tag.get("Value", tag.get("value")) == CREATED_BY_VALUE:
            return True
    return False
