/// Spans to OTLP's JSON mapping (`ExportTraceServiceRequest`): what `tracetap export --format otlp` writes
/// and what a collector's OTLP/HTTP endpoint takes.
public enum OTLPEncoder {
    /// One request holding `spans`, grouped into one resource per service.
    public static func request(_ spans: [Span]) -> String {
        var services: [String] = []
        var byService: [String: [Span]] = [:]
        for span in spans {
            if byService[span.service] == nil { services.append(span.service) }
            byService[span.service, default: []].append(span)
        }
        let resources = services.map { service in
            #"{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":\#(JSONText.quote(service))}}]},"#
                + #""scopeSpans":[{"scope":{"name":"tracetap"},"spans":[\#(byService[service]!.map(span).joined(separator: ","))]}]}"#
        }
        return #"{"resourceSpans":[\#(resources.joined(separator: ","))]}"#
    }

    static func span(_ span: Span) -> String {
        var attributes = span.attributes
        attributes.append(Span.Attribute("tracetap.source", .string(span.source.rawValue)))
        return #"{"traceId":"\#(span.traceID)","spanId":"\#(span.spanID)","# + (span.parentSpanID.isEmpty ? "" : #""parentSpanId":"\#(span.parentSpanID)","#)
            + #""name":\#(JSONText.quote(span.name)),"kind":\#(span.kind),"startTimeUnixNano":"\#(span.startNanos)","endTimeUnixNano":"\#(span.endNanos)","#
            + #""attributes":\#(Self.attributes(attributes)),"status":{"code":\#(span.statusCode)"#
            + (span.statusMessage.isEmpty ? "" : #","message":\#(JSONText.quote(span.statusMessage))"#) + "}}"
    }

    static func attributes(_ attributes: [Span.Attribute]) -> String {
        "[" + attributes.map { #"{"key":\#(JSONText.quote($0.key)),"value":\#(value($0.value))}"# }.joined(separator: ",") + "]"
    }

    /// An `AnyValue`; arrays and maps travel as their JSON text in a string.
    static func value(_ value: Span.Value) -> String {
        switch value {
        case .string(let text), .structured(let text): #"{"stringValue":\#(JSONText.quote(text))}"#
        case .bool(let flag): #"{"boolValue":\#(flag)}"#
        case .int(let number): #"{"intValue":"\#(number)"}"#
        case .double(let number): number.isFinite ? #"{"doubleValue":\#(number)}"# : #"{"doubleValue":"\#(number)"}"#
        }
    }
}
