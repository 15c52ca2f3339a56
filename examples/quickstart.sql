-- A first session with fusegate: run it with
--   psql -h 127.0.0.1 -p 5433 -d default -f examples/quickstart.sql
-- (tests/integration/psql.rs runs this file too, so it stays true).

CREATE DATABASE IF NOT EXISTS shop;
USE shop;

CREATE TABLE IF NOT EXISTS orders (
    id       BIGINT NOT NULL,
    customer VARCHAR(40),
    amount   NUMERIC(10,2),
    placed   TIMESTAMP
);

INSERT INTO orders VALUES
    (1, 'ada',   12.50, '2024-05-01 09:30:00'),
    (2, 'brian',  7.25, '2024-05-01 10:02:13'),
    (3, 'ada',   30.00, '2024-05-02 16:45:00');

SELECT customer, count(*) AS orders, sum(amount) AS total
FROM orders
GROUP BY customer
ORDER BY total DESC;

-- Every INSERT wrote a Parquet block, a segment and a snapshot; EXPLAIN
-- shows how many blocks a filter lets the scan skip.
EXPLAIN SELECT * FROM orders WHERE id = 3;

SHOW TABLES;
DROP TABLE orders;
