"""A stand-in OpenTelemetry collector for the export test: an OTLP/HTTP endpoint that accepts
POST /v1/traces (JSON), parses each body with the official protobuf classes (opentelemetry-proto; OTLP JSON
carries IDs as hex, which the collector maps to bytes as the real one does), answers {} and prints one JSON
line per span: trace, span and parent IDs (hex), name, service. Prints `PORT <n>` when listening."""
import base64, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def hex_ids_to_base64(node):
    if isinstance(node, dict):
        return {k: (base64.b64encode(bytes.fromhex(v)).decode() if k in ("traceId", "spanId", "parentSpanId") and v else hex_ids_to_base64(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [hex_ids_to_base64(v) for v in node]
    return node


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            request = Parse(json.dumps(hex_ids_to_base64(json.loads(body))), ExportTraceServiceRequest())
        except Exception as error:  # a body the official parser refuses is the test's failure
            print(json.dumps({"error": str(error)}), flush=True)
            self.send_response(400)
            self.end_headers()
            return
        for resource_spans in request.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"), "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    print(json.dumps({"trace": span.trace_id.hex(), "span": span.span_id.hex(), "parent": span.parent_span_id.hex(),
                                      "name": span.name, "service": service, "duration_ns": span.end_time_unix_nano - span.start_time_unix_nano}), flush=True)
        reply = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


server = HTTPServer(("127.0.0.1", 0), Handler)
print(f"PORT {server.server_port}", flush=True)
server.serve_forever()
