-- pgbench script of the wide-result-set scenario (bench/postgres/wide-table.ts creates the table).
SELECT * FROM wide LIMIT 1000;
