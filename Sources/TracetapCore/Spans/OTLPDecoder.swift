/// OTLP/HTTP trace export requests (`ExportTraceServiceRequest`) to spans, from binary protobuf (what the
/// Python, Go and Java SDKs send) or OTLP's JSON mapping (hex IDs, 64-bit integers as strings, enums as
/// numbers). Only the fields a waterfall needs are read; unknown fields are skipped. Spans with invalid IDs
/// (not 16/8 bytes, or all zero) are rejected and counted, as OTLP's partial success reports them.
public enum OTLPDecoder {
    public struct Malformed: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Decoded: Sendable {
        public var spans: [Span] = []
        public var rejected = 0
    }

    /// Arrays and key-value lists nest; deeper than this is refused rather than recursed into.
    static let maxNesting = 16

    // MARK: protobuf

    public static func decodeProtobuf(_ bytes: [UInt8]) throws(Malformed) -> Decoded {
        do throws(ProtobufReader.Malformed) {
            var decoded = Decoded()
            var request = ProtobufReader(bytes[...])
            while let field = try request.nextField() {
                guard field.number == 1, field.wire == .lengthDelimited else { try request.skip(field.wire); continue }
                try resourceSpans(try request.lengthDelimited(), into: &decoded)
            }
            return decoded
        } catch {
            throw Malformed(description: "protobuf: \(error.description)")
        }
    }

    private static func resourceSpans(_ bytes: ArraySlice<UInt8>, into decoded: inout Decoded) throws(ProtobufReader.Malformed) {
        var reader = ProtobufReader(bytes)
        var service = ""
        var spans: [Span] = []
        while let field = try reader.nextField() {
            switch (field.number, field.wire) {
            case (1, .lengthDelimited):
                var resource = ProtobufReader(try reader.lengthDelimited())
                while let inner = try resource.nextField() {
                    guard inner.number == 1, inner.wire == .lengthDelimited else { try resource.skip(inner.wire); continue }
                    let attribute = try keyValue(try resource.lengthDelimited(), depth: 0)
                    if attribute.key == "service.name" { service = attribute.value.description }
                }
            case (2, .lengthDelimited):
                var scope = ProtobufReader(try reader.lengthDelimited())
                while let inner = try scope.nextField() {
                    guard inner.number == 2, inner.wire == .lengthDelimited else { try scope.skip(inner.wire); continue }
                    if let span = try span(try scope.lengthDelimited()) { spans.append(span) } else { decoded.rejected += 1 }
                }
            default:
                try reader.skip(field.wire)
            }
        }
        // The resource may come after its spans on the wire.
        decoded.spans += spans.map { span in
            var span = span
            span.service = service
            return span
        }
    }

    private static func span(_ bytes: ArraySlice<UInt8>) throws(ProtobufReader.Malformed) -> Span? {
        var reader = ProtobufReader(bytes)
        var traceID: ArraySlice<UInt8> = []
        var spanID: ArraySlice<UInt8> = []
        var parentID: ArraySlice<UInt8> = []
        var span = Span(traceID: "", spanID: "", name: "", kind: 0, startNanos: 0, endNanos: 0, source: .otlp)
        while let field = try reader.nextField() {
            switch (field.number, field.wire) {
            case (1, .lengthDelimited): traceID = try reader.lengthDelimited()
            case (2, .lengthDelimited): spanID = try reader.lengthDelimited()
            case (4, .lengthDelimited): parentID = try reader.lengthDelimited()
            case (5, .lengthDelimited): span.name = try reader.string()
            case (6, .varint): span.kind = Int(truncatingIfNeeded: try reader.varint())
            case (7, .fixed64): span.startNanos = try reader.fixed64()
            case (8, .fixed64): span.endNanos = try reader.fixed64()
            case (9, .lengthDelimited): span.attributes.append(try keyValue(try reader.lengthDelimited(), depth: 0))
            case (15, .lengthDelimited):
                var status = ProtobufReader(try reader.lengthDelimited())
                while let inner = try status.nextField() {
                    switch (inner.number, inner.wire) {
                    case (2, .lengthDelimited): span.statusMessage = try status.string()
                    case (3, .varint): span.statusCode = Int(truncatingIfNeeded: try status.varint())
                    default: try status.skip(inner.wire)
                    }
                }
            default: try reader.skip(field.wire)
            }
        }
        guard validID(traceID, count: 16), validID(spanID, count: 8), parentID.isEmpty || parentID.count == 8 else { return nil }
        span.traceID = Hex.encode(traceID)
        span.spanID = Hex.encode(spanID)
        span.parentSpanID = parentID.allSatisfy({ $0 == 0 }) ? "" : Hex.encode(parentID)
        return span
    }

    private static func validID(_ id: ArraySlice<UInt8>, count: Int) -> Bool { id.count == count && id.contains { $0 != 0 } }

    private static func keyValue(_ bytes: ArraySlice<UInt8>, depth: Int) throws(ProtobufReader.Malformed) -> Span.Attribute {
        var reader = ProtobufReader(bytes)
        var attribute = Span.Attribute("", .string(""))
        while let field = try reader.nextField() {
            switch (field.number, field.wire) {
            case (1, .lengthDelimited): attribute.key = try reader.string()
            case (2, .lengthDelimited): attribute.value = try anyValue(try reader.lengthDelimited(), depth: depth + 1)
            default: try reader.skip(field.wire)
            }
        }
        return attribute
    }

    private static func anyValue(_ bytes: ArraySlice<UInt8>, depth: Int) throws(ProtobufReader.Malformed) -> Span.Value {
        guard depth <= maxNesting else { throw ProtobufReader.Malformed(description: "values nested deeper than \(maxNesting)") }
        var reader = ProtobufReader(bytes)
        var value = Span.Value.string("")
        while let field = try reader.nextField() {
            switch (field.number, field.wire) {
            case (1, .lengthDelimited): value = .string(try reader.string())
            case (2, .varint): value = .bool(try reader.varint() != 0)
            case (3, .varint): value = .int(Int64(bitPattern: try reader.varint()))
            case (4, .fixed64): value = .double(Double(bitPattern: try reader.fixed64()))
            case (5, .lengthDelimited):
                var array = ProtobufReader(try reader.lengthDelimited())
                var items: [String] = []
                while let inner = try array.nextField() {
                    guard inner.number == 1, inner.wire == .lengthDelimited else { try array.skip(inner.wire); continue }
                    items.append(jsonText(try anyValue(try array.lengthDelimited(), depth: depth + 1)))
                }
                value = .structured("[" + items.joined(separator: ",") + "]")
            case (6, .lengthDelimited):
                var list = ProtobufReader(try reader.lengthDelimited())
                var members: [String] = []
                while let inner = try list.nextField() {
                    guard inner.number == 1, inner.wire == .lengthDelimited else { try list.skip(inner.wire); continue }
                    let member = try keyValue(try list.lengthDelimited(), depth: depth + 1)
                    members.append(JSONText.quote(member.key) + ":" + jsonText(member.value))
                }
                value = .structured("{" + members.joined(separator: ",") + "}")
            case (7, .lengthDelimited): value = .structured(JSONText.quote(Hex.encode(try reader.lengthDelimited())))
            default: try reader.skip(field.wire)
            }
        }
        return value
    }

    /// A value as JSON text (inside arrays and maps).
    static func jsonText(_ value: Span.Value) -> String {
        switch value {
        case .string(let text): JSONText.quote(text)
        case .structured(let text): text
        case .bool(let flag): String(flag)
        case .int(let number): String(number)
        case .double(let number): number.isFinite ? String(number) : JSONText.quote(String(number))
        }
    }

    // MARK: JSON

    public static func decodeJSON(_ bytes: [UInt8]) throws(Malformed) -> Decoded {
        let document: JSONValue
        do { document = JSONValue(try LineJSON.parse(bytes)) } catch { throw Malformed(description: "JSON: line \(error.line): \(error.reason)") }
        guard case .object(let request) = document else { throw Malformed(description: "JSON: expected an object with resourceSpans") }
        var decoded = Decoded()
        for resourceSpans in request["resourceSpans"]?.items ?? [] {
            var service = ""
            for attribute in resourceSpans["resource"]?["attributes"]?.items ?? [] {
                if attribute["key"]?.text == "service.name" { service = attribute["value"].map { jsonAnyValue($0, depth: 0).description } ?? "" }
            }
            for scopeSpans in resourceSpans["scopeSpans"]?.items ?? [] {
                for item in scopeSpans["spans"]?.items ?? [] {
                    guard var span = jsonSpan(item) else {
                        decoded.rejected += 1
                        continue
                    }
                    span.service = service
                    decoded.spans.append(span)
                }
            }
        }
        return decoded
    }

    private static func jsonSpan(_ item: JSONValue) -> Span? {
        guard let traceID = item["traceId"]?.text.flatMap({ Hex.normalized($0, count: 32) }), traceID != String(repeating: "0", count: 32),
              let spanID = item["spanId"]?.text.flatMap({ Hex.normalized($0, count: 16) }), spanID != String(repeating: "0", count: 16) else { return nil }
        let parentText = item["parentSpanId"]?.text ?? ""
        guard parentText.isEmpty || Hex.normalized(parentText, count: 16) != nil else { return nil }
        let parent = Hex.normalized(parentText, count: 16).map { $0 == String(repeating: "0", count: 16) ? "" : $0 } ?? ""
        var span = Span(traceID: traceID, spanID: spanID, parentSpanID: parent, name: item["name"]?.text ?? "",
                        kind: item["kind"]?.integer.map { Int(truncatingIfNeeded: $0) } ?? 0,
                        startNanos: item["startTimeUnixNano"]?.unsigned ?? 0, endNanos: item["endTimeUnixNano"]?.unsigned ?? 0, source: .otlp)
        span.attributes = attributes(item["attributes"])
        span.statusCode = item["status"]?["code"]?.integer.map { Int(truncatingIfNeeded: $0) } ?? 0
        span.statusMessage = item["status"]?["message"]?.text ?? ""
        return span
    }

    /// OTLP JSON `attributes`: `[{"key": ..., "value": {"stringValue": ...}}]`.
    static func attributes(_ list: JSONValue?) -> [Span.Attribute] {
        (list?.items ?? []).map { Span.Attribute($0["key"]?.text ?? "", $0["value"].map { jsonAnyValue($0, depth: 0) } ?? .string("")) }
    }

    private static func jsonAnyValue(_ value: JSONValue, depth: Int) -> Span.Value {
        guard depth <= maxNesting else { return .structured("null") }
        if let text = value["stringValue"]?.text { return .string(text) }
        if case .bool(let flag)? = value["boolValue"] { return .bool(flag) }
        if let number = value["intValue"]?.integer { return .int(number) }
        if let double = value["doubleValue"] {
            switch double {
            case .number(let number): return .double(number)
            case .string(let text): return .double(Double(text) ?? .nan)
            default: break
            }
        }
        if let array = value["arrayValue"] {
            return .structured("[" + (array["values"]?.items ?? []).map { jsonText(jsonAnyValue($0, depth: depth + 1)) }.joined(separator: ",") + "]")
        }
        if let list = value["kvlistValue"] {
            return .structured("{" + (list["values"]?.items ?? []).map {
                JSONText.quote($0["key"]?.text ?? "") + ":" + jsonText($0["value"].map { jsonAnyValue($0, depth: depth + 1) } ?? .structured("null"))
            }.joined(separator: ",") + "}")
        }
        if let bytes = value["bytesValue"]?.text { return .structured(JSONText.quote(bytes)) }
        return .string("")
    }
}

extension JSONValue {
    subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    var items: [JSONValue] {
        if case .array(let items) = self { return items }
        return []
    }

    var text: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// A 64-bit integer given as a decimal string (proto3 JSON) or a number.
    var integer: Int64? {
        switch self {
        case .string(let text): Int64(text)
        case .number(let number) where number == number.rounded() && abs(number) < 9.2e18: Int64(number)
        default: nil
        }
    }

    var int: Int? { integer.flatMap { Int(exactly: $0) } }

    var double: Double? {
        if case .number(let number) = self { return number }
        return nil
    }

    var flag: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    var unsigned: UInt64? {
        switch self {
        case .string(let text): UInt64(text)
        case .number(let number) where number >= 0 && number == number.rounded() && number < 1.8e19: UInt64(number)
        default: nil
        }
    }
}
