"""Through a database leg: COPY out and in (passed through untouched), and a CancelRequest (a second
connection the driver opens to the same host and port) that stops a running pg_sleep. Prints one JSON line.

    python3 cancel-and-copy.py PORT"""
import json, sys, threading, time
import psycopg

port = sys.argv[1]
result = {}
with psycopg.connect(f"host=127.0.0.1 port={port} user=tracetap dbname=postgres", autocommit=True) as connection:
    connection.execute("DROP TABLE IF EXISTS copied; CREATE TABLE copied (n int, word text)")
    with connection.cursor().copy("COPY copied FROM STDIN") as copy:
        for n in range(1000):
            copy.write_row((n, f"word{n}"))
    with connection.cursor().copy("COPY (SELECT n, word FROM copied ORDER BY n) TO STDOUT") as copy:
        rows = [row for row in copy.rows()]
    result["copied"] = len(rows)
    result["last"] = list(rows[-1])
    timer = threading.Timer(0.3, connection.cancel)
    timer.start()
    started = time.monotonic()
    try:
        connection.execute("SELECT pg_sleep(10)")
        result["cancel"] = "not cancelled"
    except psycopg.errors.QueryCanceled as error:
        result["cancel"] = error.sqlstate
    result["cancel_ms"] = round((time.monotonic() - started) * 1000)
    result["after"] = connection.execute("SELECT count(*) FROM copied").fetchone()[0]
print(json.dumps(result))
