/// W3C Trace Context `traceparent` (Level 2): `version-traceid-parentid-flags`, lowercase hex.
public struct TraceParent: Equatable, Sendable {
    public var traceID: TraceID
    public var parentID: SpanID
    public var flags: UInt8

    public init(traceID: TraceID, parentID: SpanID, flags: UInt8) {
        self.traceID = traceID
        self.parentID = parentID
        self.flags = flags
    }

    /// Parses a header value; nil for anything the spec says to ignore (then the trace restarts).
    public static func parse<C: Collection>(_ raw: C) -> TraceParent? where C.Element == UInt8 {
        var value = Array(raw)
        while let f = value.first, f == 32 || f == 9 { value.removeFirst() }
        while let l = value.last, l == 32 || l == 9 { value.removeLast() }
        guard value.count >= 55, value[2] == 45, value[35] == 45, value[52] == 45,
              let version = Hex.byte(value[0], value[1]), version != 0xFF else { return nil }
        // Version 00 is exactly 55 characters; a later version may append fields after another dash.
        if version == 0 { guard value.count == 55 else { return nil } }
        else if value.count > 55 && value[55] != 45 { return nil }
        guard let high = Hex.uint64(value[3..<19]), let low = Hex.uint64(value[19..<35]),
              let parent = Hex.uint64(value[36..<52]), let flags = Hex.byte(value[53], value[54]),
              high | low != 0, parent != 0 else { return nil }
        // Unknown versions are re-emitted as 00, whose only defined flags are sampled and random.
        return TraceParent(traceID: TraceID(high: high, low: low), parentID: SpanID(parent),
                           flags: version == 0 ? flags : flags & 0x03)
    }

    public var encoded: [UInt8] {
        var out: [UInt8] = [48, 48, 45]
        out.reserveCapacity(55)
        Hex.append(traceID.high, to: &out)
        Hex.append(traceID.low, to: &out)
        out.append(45)
        Hex.append(parentID.value, to: &out)
        out.append(45)
        Hex.appendByte(flags, to: &out)
        return out
    }

    public var string: String { String(decoding: encoded, as: UTF8.self) }
}

public struct TraceID: Hashable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }

    public var hexBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        Hex.append(high, to: &out)
        Hex.append(low, to: &out)
        return out
    }

    public var description: String { String(decoding: hexBytes, as: UTF8.self) }

    public static func parse(_ text: String) -> TraceID? {
        let bytes = Array(text.utf8)
        guard bytes.count == 32, let h = Hex.uint64(bytes[0..<16]), let l = Hex.uint64(bytes[16..<32]) else { return nil }
        return TraceID(high: h, low: l)
    }
}

public struct SpanID: Hashable, Sendable, CustomStringConvertible {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }

    public var hexBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        Hex.append(value, to: &out)
        return out
    }

    public var description: String { String(decoding: hexBytes, as: UTF8.self) }
}

/// Lowercase hex, as Trace Context requires (uppercase is invalid on input).
enum Hex {
    static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    static func nibble(_ b: UInt8) -> UInt8? {
        switch b {
        case 48...57: return b - 48
        case 97...102: return b - 87
        default: return nil
        }
    }

    static func byte(_ a: UInt8, _ b: UInt8) -> UInt8? {
        guard let h = nibble(a), let l = nibble(b) else { return nil }
        return h << 4 | l
    }

    static func uint64(_ s: ArraySlice<UInt8>) -> UInt64? {
        var v: UInt64 = 0
        for b in s {
            guard let n = nibble(b) else { return nil }
            v = v << 4 | UInt64(n)
        }
        return v
    }

    static func append(_ v: UInt64, to out: inout [UInt8]) {
        var shift = 60
        while shift >= 0 {
            out.append(digits[Int((v >> UInt64(shift)) & 0xF)])
            shift -= 4
        }
    }

    static func appendByte(_ v: UInt8, to out: inout [UInt8]) {
        out.append(digits[Int(v >> 4)])
        out.append(digits[Int(v & 0xF)])
    }
}
