-- name: DatabaseSize :many
-- The database's size and each table of the server's schema with its
-- indexes and TOAST, in one catalog read: the admin listener asks at every
-- scrape (ldkbackup_db_size_bytes, ldkbackup_db_table_bytes). The database size
-- is a subquery so that it is computed once (it reads the whole directory).
SELECT c.relname::text AS table_name,
    pg_total_relation_size(c.oid)::bigint AS table_bytes,
    (SELECT pg_database_size(current_database()))::bigint AS database_bytes
FROM pg_catalog.pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
ORDER BY c.relname;
