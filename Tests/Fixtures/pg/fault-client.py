"""Runs statements through a database leg with psycopg (extended protocol) and prints one JSON line per
statement: its outcome (rows, or the SQLSTATE of its error) and how long it took.

    python3 fault-client.py PORT"""
import json, sys, time
import psycopg

with psycopg.connect(f"host=127.0.0.1 port={sys.argv[1]} user=tracetap dbname=postgres", autocommit=True) as connection:
    connection.execute("CREATE TABLE IF NOT EXISTS stock (item int PRIMARY KEY, left_count int)")
    connection.execute("INSERT INTO stock VALUES (1, 5) ON CONFLICT (item) DO UPDATE SET left_count = 5")
    for sql, params in [("SELECT left_count FROM stock WHERE item = %s", (1,)),
                        ("UPDATE stock SET left_count = left_count - 1 WHERE item = %s", (1,)),
                        ("SELECT count(*) FROM stock", None),
                        ("SELECT left_count FROM stock WHERE item = 1 AND %s", (True,))]:
        started = time.monotonic()
        try:
            cursor = connection.execute(sql, params)
            outcome = {"rows": cursor.fetchall() if cursor.description else cursor.rowcount}
        except psycopg.Error as error:
            outcome = {"sqlstate": error.sqlstate, "message": str(error)}
        outcome.update(sql=sql, ms=round((time.monotonic() - started) * 1000))
        print(json.dumps(outcome), flush=True)
