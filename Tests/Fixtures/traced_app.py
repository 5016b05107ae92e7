"""A small Flask backend instrumented with the OpenTelemetry SDK, for the end-to-end trace tests.

    python3 traced_app.py --otlp http://127.0.0.1:ADMIN/v1/traces [--server-timing]

Prints `PORT <n>` once listening on 127.0.0.1. Each request continues the trace of the `traceparent` it
received and produces three spans, exported at once over OTLP/HTTP protobuf (the SDK's default):
the request span (middleware), the handler (controller) and a service call inside it. Routes:
  /orders        the three spans; with --server-timing also a Server-Timing header
  /timing-only   no spans, only `Server-Timing: db;dur=12.5, app;dur=30;desc="render"`
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


server = make_server("127.0.0.1", 0, app, threaded=True)
print(f"PORT {server.port}", flush=True)
server.serve_forever()
