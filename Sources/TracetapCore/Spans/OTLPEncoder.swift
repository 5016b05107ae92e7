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
        var out = LineBuffer(capacity: 256)
        append(attributes, into: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// `attributes` as a JSON array of `KeyValue`s; arrays and maps travel as their JSON text in a string.
    static func append(_ attributes: [Span.Attribute], into out: inout LineBuffer) {
        out.append(UInt8(ascii: "["))
        for (index, attribute) in attributes.enumerated() {
            out.append(index == 0 ? #"{"key":"# : #",{"key":"#)
            JSONText.append(attribute.key, into: &out)
            switch attribute.value {
            case .string(let text), .structured(let text):
                out.append(#","value":{"stringValue":"#)
                JSONText.append(text, into: &out)
                out.append("}}")
            case .bool(let flag):
                out.append(flag ? #","value":{"boolValue":true}}"# : #","value":{"boolValue":false}}"#)
            case .int(let number):
                out.append(#","value":{"intValue":""#)
                JSONBytes.int(number, into: &out)
                out.append("\"}}")
            case .double(let number):
                // JSON has no NaN or infinity; OTLP's mapping writes them as strings.
                let text = Array("\(number)".utf8)
                out.append(#","value":{"doubleValue":"#)
                if number.isFinite { out.append(text) } else { out.append(UInt8(ascii: "\"")); out.append(text); out.append(UInt8(ascii: "\"")) }
                out.append("}}")
            }
        }
        out.append(UInt8(ascii: "]"))
    }
}
