"""Records a real PostgreSQL conversation for the decoder tests: relays one client (psycopg) to a server and
writes every chunk as it arrived, in order, as `F` or `B` (frontend/backend), a 4-byte big-endian length and
the bytes. Run with a server on 127.0.0.1:PORT (trust auth, user tracetap):

    python3 record-stream.py PORT > conversation.bin

The conversation: a simple query with three statements, a transaction (BEGIN, UPDATE, COMMIT), a pipeline
of five extended-protocol statements sent before any reply is read, one of which fails, and an error in a
simple query."""
import socket, struct, sys, threading
import psycopg

server_port = int(sys.argv[1])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
chunks, lock = [], threading.Lock()


def relay():
    client, _ = listener.accept()
    upstream = socket.create_connection(("127.0.0.1", server_port))

    def pump(source, destination, tag):
        while True:
            data = source.recv(65536)
            if not data:
                destination.shutdown(socket.SHUT_WR)
                return
            with lock:
                chunks.append((tag, data))
            destination.sendall(data)

    threads = [threading.Thread(target=pump, args=(client, upstream, b"F")), threading.Thread(target=pump, args=(upstream, client, b"B"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


relayer = threading.Thread(target=relay)
relayer.start()
port = listener.getsockname()[1]
with psycopg.connect(f"host=127.0.0.1 port={port} user=tracetap dbname=postgres sslmode=disable", autocommit=True) as connection:
    connection.execute("DROP TABLE IF EXISTS items; CREATE TABLE items (id int PRIMARY KEY, n int); INSERT INTO items VALUES (1, 10), (2, 20), (3, 30)")
    with connection.transaction():
        connection.execute("UPDATE items SET n = n + 1 WHERE id = %s", (1,))
    with connection.pipeline() as pipeline:
        cursors = [connection.execute("SELECT n FROM items WHERE id = %s", (i,)) for i in (1, 2, 3)]
        try:
            connection.execute("SELECT 1/0")
            connection.execute("SELECT n FROM items WHERE id = %s", (3,))
            pipeline.sync()
        except psycopg.Error:
            pass
    try:
        connection.execute("SELECT 1; SELECT no_such_column FROM items; SELECT 2", prepare=False)
    except psycopg.Error:
        pass
relayer.join()
for tag, data in chunks:
    sys.stdout.buffer.write(tag + struct.pack(">I", len(data)) + data)
