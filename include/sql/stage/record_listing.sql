DELETE FROM {{ schema }}.load_listing WHERE prefix = %(prefix)s;
INSERT INTO {{ schema }}.load_listing (prefix, listed_at, object_count) VALUES (%(prefix)s, %(listed_at)s, %(object_count)s);
