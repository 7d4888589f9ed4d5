SELECT listed_at FROM {{ schema }}.load_listing WHERE prefix = %(prefix)s;
