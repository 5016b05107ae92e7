"""Writes the OTLP fixtures the decoder tests read, with the official protobuf classes (pip
opentelemetry-proto): trace.pb (binary protobuf, as the Python, Go and Java SDKs send it) and trace.json
(OTLP's JSON mapping, as the JS SDK sends it). Run from this folder; the outputs are committed."""
import json
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
request = ExportTraceServiceRequest()
resource_spans = request.resource_spans.add()
resource_spans.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="shop")))
scope_spans = resource_spans.scope_spans.add()
scope_spans.scope.name = "opentelemetry.instrumentation.flask"
server = scope_spans.spans.add(trace_id=TRACE, span_id=bytes.fromhex("eee19b7ec3c1b174"), parent_span_id=bytes.fromhex("00f067aa0ba902b7"),
                               name="GET /orders", kind=Span.SPAN_KIND_SERVER,
                               start_time_unix_nano=1544712660000000000, end_time_unix_nano=1544712660120000000)
server.attributes.extend([
    KeyValue(key="http.request.method", value=AnyValue(string_value="GET")),
    KeyValue(key="http.response.status_code", value=AnyValue(int_value=200)),
    KeyValue(key="sampled", value=AnyValue(bool_value=True)),
    KeyValue(key="ratio", value=AnyValue(double_value=0.25)),
    KeyValue(key="tags", value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(int_value=-7)]))),
    KeyValue(key="nested", value=AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="k", value=AnyValue(string_value="v"))]))),
])
server.flags = 0x301
child = scope_spans.spans.add(trace_id=TRACE, span_id=bytes.fromhex("1111111111111111"), parent_span_id=bytes.fromhex("eee19b7ec3c1b174"),
                              name="load orders", kind=Span.SPAN_KIND_INTERNAL,
                              start_time_unix_nano=1544712660010000000, end_time_unix_nano=1544712660090000000,
                              status=Status(code=Status.STATUS_CODE_ERROR, message="deadlock detected"))
child.events.add(time_unix_nano=1544712660050000000, name="retry")
other = request.resource_spans.add()
other.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="mailer")))
other.scope_spans.add().spans.add(trace_id=TRACE, span_id=bytes.fromhex("2222222222222222"), parent_span_id=bytes.fromhex("1111111111111111"),
                                  name="send email", kind=Span.SPAN_KIND_CLIENT,
                                  start_time_unix_nano=1544712660020000000, end_time_unix_nano=1544712660030000000)

with open("trace.pb", "wb") as f:
    f.write(request.SerializeToString())

# OTLP JSON: lowerCamelCase keys, enums as integers, 64-bit integers as strings, IDs as hex (not base64).
def hexify(node):
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                import base64
                out[key] = base64.b64decode(value).hex().upper()
            else:
                out[key] = hexify(value)
        return out
    if isinstance(node, list):
        return [hexify(v) for v in node]
    return node

document = hexify(MessageToDict(request, use_integers_for_enums=True))
with open("trace.json", "w") as f:
    json.dump(document, f, indent=1)
    f.write("\n")
