/// Byte classes of RFC 9110 §5.6 and RFC 9112, on bytes, never on Strings.
public enum ASCII {
    public static let cr: UInt8 = 13
    public static let lf: UInt8 = 10
    public static let space: UInt8 = 32
    public static let tab: UInt8 = 9
    public static let colon: UInt8 = 58
    public static let comma: UInt8 = 44
    public static let semicolon: UInt8 = 59
    public static let slash: UInt8 = 47

    @inline(__always) public static func lower(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b | 0x20 : b }

    @inline(__always) public static func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }

    @inline(__always) public static func isWhitespace(_ b: UInt8) -> Bool { b == space || b == tab }

    /// tchar: the characters of a token (methods, field names, coding names).
    @inline(__always) public static func isTokenChar(_ b: UInt8) -> Bool {
        switch b {
        case 48...57, 65...90, 97...122: return true
        case 33, 35, 36, 37, 38, 39, 42, 43, 45, 46, 94, 95, 96, 124, 126: return true
        default: return false
        }
    }

    /// field-vchar plus SP/HTAB: what a field value may hold. NUL, other controls and DEL may not.
    @inline(__always) public static func isFieldValueChar(_ b: UInt8) -> Bool {
        b == tab || (b >= 0x20 && b != 0x7F)
    }

    /// A hex digit's value, or nil.
    @inline(__always) public static func hexValue(_ b: UInt8) -> UInt64? {
        switch b {
        case 48...57: return UInt64(b - 48)
        case 65...70: return UInt64(b - 55)
        case 97...102: return UInt64(b - 87)
        default: return nil
        }
    }

    public static func trimmingWhitespace<C: BidirectionalCollection>(_ bytes: C) -> C.SubSequence where C.Element == UInt8 {
        var slice = bytes[...]
        while let f = slice.first, isWhitespace(f) { slice = slice.dropFirst() }
        while let l = slice.last, isWhitespace(l) { slice = slice.dropLast() }
        return slice
    }

    public static func equalsIgnoringCase<C: Collection>(_ bytes: C, _ lowercase: [UInt8]) -> Bool where C.Element == UInt8 {
        bytes.count == lowercase.count && zip(bytes, lowercase).allSatisfy { lower($0) == $1 }
    }

    /// Parses 1*DIGIT, refusing signs, empties and values past 2^60 (RFC 9110 §8.6 warns of overflow).
    public static func parseDecimal<C: Collection>(_ bytes: C) -> UInt64? where C.Element == UInt8 {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value: UInt64 = 0
        for b in bytes {
            guard isDigit(b) else { return nil }
            value = value * 10 + UInt64(b - 48)
        }
        return value
    }

    public static func decimal(_ value: Int) -> [UInt8] { Array(String(value).utf8) }
}

/// Lowercase names of the fields the codec and the proxy look up.
public enum FieldName {
    public static let host = Array("host".utf8)
    public static let contentLength = Array("content-length".utf8)
    public static let transferEncoding = Array("transfer-encoding".utf8)
    public static let connection = Array("connection".utf8)
    public static let keepAlive = Array("keep-alive".utf8)
    public static let te = Array("te".utf8)
    public static let trailer = Array("trailer".utf8)
    public static let upgrade = Array("upgrade".utf8)
    public static let expect = Array("expect".utf8)
    public static let via = Array("via".utf8)
    public static let xForwardedFor = Array("x-forwarded-for".utf8)
    public static let xForwardedProto = Array("x-forwarded-proto".utf8)
    public static let xForwardedHost = Array("x-forwarded-host".utf8)
    public static let traceparent = Array("traceparent".utf8)
    public static let tracestate = Array("tracestate".utf8)
    public static let xRequestID = Array("x-request-id".utf8)
    /// Tracetap's own request header asking for a fault; never forwarded.
    public static let xTracetapFault = Array("x-tracetap-fault".utf8)
    public static let chunked = Array("chunked".utf8)
    public static let close = Array("close".utf8)
    public static let continue100 = Array("100-continue".utf8)
    public static let proxyPrefix = Array("proxy-".utf8)
}

/// Field names as the proxy writes them: canonical case for the classic fields, lowercase for
/// Trace Context's, as its spec spells them.
public enum CanonicalName {
    public static let host = Array("Host".utf8)
    public static let contentLength = Array("Content-Length".utf8)
    public static let transferEncoding = Array("Transfer-Encoding".utf8)
    public static let connection = Array("Connection".utf8)
    public static let via = Array("Via".utf8)
    public static let xForwardedFor = Array("X-Forwarded-For".utf8)
    public static let xForwardedProto = Array("X-Forwarded-Proto".utf8)
    public static let xForwardedHost = Array("X-Forwarded-Host".utf8)
    public static let xRequestID = Array("X-Request-ID".utf8)
    public static let traceparent = Array("traceparent".utf8)
    public static let tracestate = Array("tracestate".utf8)
    public static let traceresponse = Array("traceresponse".utf8)
}
