{#- The quality page only reads: its statements run in a read-only transaction (the same words on
    PostgreSQL and Redshift), so even a bug in the page cannot change the warehouse. -#}
START TRANSACTION READ ONLY;
