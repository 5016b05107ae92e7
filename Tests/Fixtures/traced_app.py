"""A small Flask backend instrumented with the OpenTelemetry SDK, for the end-to-end trace tests.

    python3 traced_app.py --otlp http://127.0.0.1:ADMIN/v1/traces [--server-timing] [--db 'host=... port=...']

Prints `PORT <n>` once listening on 127.0.0.1. Each request continues the trace of the `traceparent` it
received and produces three spans, exported at once over OTLP/HTTP protobuf (the SDK's default):
the request span (middleware), the handler (controller) and a service call inside it. Routes:
  /orders        the three spans; with --server-timing also a Server-Timing header
  /timing-only   no spans, only `Server-Timing: db;dur=12.5, app;dur=30;desc="render"`
With --db (psycopg to PostgreSQL, through the proxy's database leg in the tests):
  /db/orders     SELECT count(*) with no comment (the proxy attributes it by time), then a SELECT with a
                 sqlcommenter comment carrying the service span's traceparent
  /db/buy        read-modify-write in a transaction: SELECT the stock, pause, UPDATE it, COMMIT; every
                 statement commented
"""
import argparse, sys, time
from flask import Flask, g, request, jsonify
from werkzeug.serving import make_server
from opentelemetry import trace, propagate
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

parser = argparse.ArgumentParser()
parser.add_argument("--otlp", required=True)
parser.add_argument("--server-timing", action="store_true")
parser.add_argument("--db")
options = parser.parse_args()

provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=options.otlp)))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("traced_app")
app = Flask(__name__)


@app.before_request
def middleware_start():
    if request.path == "/timing-only":
        return
    context = propagate.extract({name.lower(): value for name, value in request.headers.items()})
    g.span = tracer.start_span(f"{request.method} {request.path}", context=context, kind=trace.SpanKind.SERVER,
                               attributes={"http.request.method": request.method, "http.route": request.path})
    g.token = trace.context_api.attach(trace.set_span_in_context(g.span))


@app.after_request
def middleware_end(response):
    if hasattr(g, "span"):
        g.span.set_attribute("http.response.status_code", response.status_code)
        if options.server_timing:
            response.headers["Server-Timing"] = "db;dur=5"
        trace.context_api.detach(g.token)
        g.span.end()
    return response


def load_orders():
    with tracer.start_as_current_span("service load_orders", attributes={"orders.count": 2}):
        time.sleep(0.01)
        return [{"id": 1}, {"id": 2}]


@app.route("/orders")
def list_orders():
    with tracer.start_as_current_span("controller list_orders"):
        time.sleep(0.002)
        orders = load_orders()
        return jsonify(orders)


@app.route("/timing-only")
def timing_only():
    response = jsonify({"ok": True})
    response.headers["Server-Timing"] = 'db;dur=12.5, app;dur=30;desc="render"'
    return response


def commented(sql):
    """sqlcommenter: the current span's context as a traceparent comment, as OpenTelemetry's
    instrumentations write it with enable_commenter."""
    context = trace.get_current_span().get_span_context()
    return f"{sql} /*traceparent='00-{context.trace_id:032x}-{context.span_id:016x}-01'*/"


if options.db:
    import psycopg

    def connect():
        return psycopg.connect(options.db, autocommit=True)

    with connect() as setup:
        setup.execute("CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY, user_id int, item text)")
        setup.execute("CREATE TABLE IF NOT EXISTS stock (item int PRIMARY KEY, left_count int)")
        setup.execute("TRUNCATE orders")
        setup.execute("INSERT INTO orders (user_id, item) VALUES (1, 'book'), (1, 'pen'), (2, 'lamp')")
        setup.execute("INSERT INTO stock VALUES (1, 1) ON CONFLICT (item) DO UPDATE SET left_count = 1")

    @app.route("/db/orders")
    def db_orders():
        with tracer.start_as_current_span("controller db_orders"):
            with connect() as connection:
                total = connection.execute("SELECT count(*) FROM orders").fetchone()[0]
                with tracer.start_as_current_span("service load_orders"):
                    rows = connection.execute(commented("SELECT id, item FROM orders WHERE user_id = %s"), (1,)).fetchall()
            return jsonify({"total": total, "mine": [{"id": r[0], "item": r[1]} for r in rows]})

    @app.route("/db/buy", methods=["POST"])
    def db_buy():
        with tracer.start_as_current_span("service buy"):
            with psycopg.connect(options.db) as connection:  # a transaction until commit
                left = connection.execute(commented("SELECT left_count FROM stock WHERE item = 1")).fetchone()[0]
                time.sleep(0.05)
                if left > 0:
                    connection.execute(commented("UPDATE stock SET left_count = %s WHERE item = 1"), (left - 1,))
                connection.commit()
            return (jsonify({"bought": left > 0}), 201 if left > 0 else 409)


server = make_server("127.0.0.1", 0, app, threaded=True)
print(f"PORT {server.port}", flush=True)
server.serve_forever()
