/// One span of a trace, from wherever it came: the backend's OpenTelemetry SDK (OTLP), its `Server-Timing`
/// header, the proxy's own phases, or a SQL statement seen on the database leg.
public struct Span: Sendable, Equatable {
    public enum Source: String, Sendable {
        case otlp
        case serverTiming = "server-timing"
        case proxy
        case sql
    }

    /// An attribute value, typed as OTLP types it (arrays and maps kept as their JSON text).
    public enum Value: Sendable, Equatable, CustomStringConvertible {
        case string(String)
        case bool(Bool)
        case int(Int64)
        case double(Double)
        /// An array, a key-value list or bytes, as JSON text.
        case structured(String)

        public var description: String {
            switch self {
            case .string(let text), .structured(let text): text
            case .bool(let flag): String(flag)
            case .int(let number): String(number)
            case .double(let number): String(number)
            }
        }
    }

    public struct Attribute: Sendable, Equatable {
        public var key: String
        public var value: Value
        public init(_ key: String, _ value: Value) {
            self.key = key
            self.value = value
        }
    }

    /// 32 lowercase hex digits.
    public var traceID: String
    /// 16 lowercase hex digits.
    public var spanID: String
    /// Empty for a root span.
    public var parentSpanID: String
    public var name: String
    /// OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    public var kind: Int
    public var startNanos: UInt64
    public var endNanos: UInt64
    public var attributes: [Attribute]
    /// OTLP status code: 0 unset, 1 ok, 2 error.
    public var statusCode: Int
    public var statusMessage: String
    /// The resource's `service.name`.
    public var service: String
    public var source: Source

    public init(traceID: String, spanID: String, parentSpanID: String = "", name: String, kind: Int = 1, startNanos: UInt64, endNanos: UInt64,
                attributes: [Attribute] = [], statusCode: Int = 0, statusMessage: String = "", service: String = "", source: Source) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.name = name
        self.kind = kind
        self.startNanos = startNanos
        self.endNanos = endNanos
        self.attributes = attributes
        self.statusCode = statusCode
        self.statusMessage = statusMessage
        self.service = service
        self.source = source
    }

    public var durationNanos: UInt64 { endNanos >= startNanos ? endNanos - startNanos : 0 }

    public func attribute(_ key: String) -> Value? { attributes.first { $0.key == key }?.value }

    /// A SQL statement's transaction (`c3.t2`: connection 3's second), nil outside one.
    var transaction: String? { attribute("db.transaction")?.description }
}

enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Lowercased when every character is a hex digit and the length is `count`; else nil.
    static func normalized(_ text: String, count: Int) -> String? {
        let lower = text.lowercased()
        guard lower.utf8.count == count, lower.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return nil }
        return lower
    }
}
