"""What AWS accepts as names: the patterns the setup's params and the operators' arguments are checked against.

Each ends in ``\\Z``, not ``$``: ``$`` also matches before a trailing newline."""

from __future__ import annotations

import re

REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d\Z")
CLUSTER_ID = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)\Z")
SERVERLESS_NAME = re.compile(r"^[a-z0-9-]{3,64}\Z")
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}\Z")
SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}\Z")
USERNAME = re.compile(r"^[a-z][a-z0-9_]{0,126}\Z")
NODE_TYPE = re.compile(r"^[a-z0-9]+\.[a-z0-9]+\Z")
PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:[\w+=,.@/-]+\Z")
