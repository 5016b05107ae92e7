public struct HTTPVersion: Equatable, Sendable, CustomStringConvertible {
    public var major: UInt8
    public var minor: UInt8
    public init(major: UInt8, minor: UInt8) { self.major = major; self.minor = minor }
    public static let http11 = HTTPVersion(major: 1, minor: 1)
    public static let http10 = HTTPVersion(major: 1, minor: 0)
    public var description: String { "HTTP/\(major).\(minor)" }
}

public struct RequestHead: Sendable {
    public var methodRange: Range<Int>
    public var targetRange: Range<Int>
    public var version: HTTPVersion
    public var headers: HeaderFields

    public var method: ArraySlice<UInt8> { headers.storage[methodRange] }
    public var target: ArraySlice<UInt8> { headers.storage[targetRange] }
    public var methodString: String { String(decoding: method, as: UTF8.self) }
    public var targetString: String { String(decoding: target, as: UTF8.self) }

    public func methodIs(_ upper: String) -> Bool { method.elementsEqual(upper.utf8) }
    public var isHead: Bool { methodIs("HEAD") }

    /// Whether the client asked to keep the connection (RFC 9112 §9.3).
    public var wantsKeepAlive: Bool {
        let options = headers.listElements(FieldName.connection)
        if options.contains(FieldName.close) { return false }
        return version == .http11 || options.contains(FieldName.keepAlive)
    }
}

public struct ResponseHead: Sendable {
    public var version: HTTPVersion
    public var status: Int
    public var reasonRange: Range<Int>
    public var headers: HeaderFields

    public var reason: ArraySlice<UInt8> { headers.storage[reasonRange] }

    /// Replaces the status code and its reason phrase (a `modify` fault).
    public mutating func replaceStatus(_ status: Int) {
        self.status = status
        reasonRange = headers.appendRaw(Array(reasonPhrase(status).utf8))
    }

    public var wantsKeepAlive: Bool {
        let options = headers.listElements(FieldName.connection)
        if options.contains(FieldName.close) { return false }
        return version == .http11 || options.contains(FieldName.keepAlive)
    }
}

/// Finds where a head ends, across reads, without rescanning what it has seen (so a client sending one byte
/// at a time costs linear work), and enforces the size limits before the head is complete.
public struct HeadScanner: Sendable {
    private var searchFrom = 0
    public init() {}

    public mutating func reset() { searchFrom = 0 }

    /// Returns the head's length (through its empty line) once `bytes` holds a whole head; nil while it is incomplete.
    /// `tooLongStartLine` is the status for an overlong first line (414 for requests).
    public mutating func scan(_ bytes: UnsafeRawBufferPointer, limits: HeadLimits, tooLongStartLine: Int,
                              tooLargeHead: Int) throws(HTTPError) -> Int? {
        let count = bytes.count
        var i = searchFrom
        var end: Int?
        while i < count {
            guard bytes[i] == ASCII.lf else { i += 1; continue }
            if i + 1 >= count { searchFrom = i; break }
            if bytes[i + 1] == ASCII.lf { end = i + 2; break }
            if bytes[i + 1] == ASCII.cr {
                if i + 2 >= count { searchFrom = i; break }
                if bytes[i + 2] == ASCII.lf { end = i + 3; break }
            }
            i += 1
            searchFrom = i
        }
        if let end {
            if end > limits.maxHeadBytes { throw HTTPError(tooLargeHead, "header section larger than \(limits.maxHeadBytes) bytes") }
            return end
        }
        if i >= count { searchFrom = count }
        if count > limits.maxHeadBytes { throw HTTPError(tooLargeHead, "header section larger than \(limits.maxHeadBytes) bytes") }
        if firstLineLength(bytes) == nil && count > limits.maxStartLine {
            throw HTTPError(tooLongStartLine, "start line longer than \(limits.maxStartLine) bytes")
        }
        return nil
    }

    private func firstLineLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        bytes.firstIndex(of: ASCII.lf)
    }
}

/// Strict head parsing (RFC 9112 §2-§5). Every deviation that could make two parsers disagree is an error.
public enum HeadParser {
    /// Bytes that may precede a request line: RFC 9112 §2.2 lets a server skip empty lines left by a previous body.
    public static func leadingEmptyLines(_ bytes: UnsafeRawBufferPointer) -> Int {
        var i = 0
        while i + 1 < bytes.count, bytes[i] == ASCII.cr, bytes[i + 1] == ASCII.lf, i < 8 { i += 2 }
        return i
    }

    public static func parseRequest(_ bytes: UnsafeRawBufferPointer, limits: HeadLimits = HeadLimits()) throws(HTTPError) -> RequestHead {
        let storage = Array(bytes)
        var lines = try LineReader(storage, errorStatus: 400)
        guard let line = lines.next() else { throw HTTPError(400, "empty request") }
        if line.count > limits.maxStartLine { throw HTTPError(414, "request line longer than \(limits.maxStartLine) bytes") }
        // method SP request-target SP HTTP-version
        var i = line.lowerBound
        while i < line.upperBound, ASCII.isTokenChar(storage[i]) { i += 1 }
        let methodRange = line.lowerBound..<i
        guard !methodRange.isEmpty, i < line.upperBound, storage[i] == ASCII.space else {
            throw HTTPError(400, "malformed request line")
        }
        i += 1
        let targetStart = i
        while i < line.upperBound, storage[i] > 0x20, storage[i] < 0x7F { i += 1 }
        let targetRange = targetStart..<i
        guard !targetRange.isEmpty, i < line.upperBound, storage[i] == ASCII.space else {
            throw HTTPError(400, "malformed request target")
        }
        let version = try parseVersion(storage, (i + 1)..<line.upperBound, errorStatus: 400)
        guard version.major == 1 else { throw HTTPError(505, "HTTP version \(version) not supported") }
        let headers = try parseFields(storage, &lines, limits: limits, errorStatus: 400, tooMany: 431)
        let head = RequestHead(methodRange: methodRange, targetRange: targetRange, version: version, headers: headers)
        try validateHost(head)
        return head
    }

    public static func parseResponse(_ bytes: UnsafeRawBufferPointer, limits: HeadLimits = HeadLimits()) throws(HTTPError) -> ResponseHead {
        let storage = Array(bytes)
        var lines = try LineReader(storage, errorStatus: 502)
        guard let line = lines.next(), line.count >= 12 else { throw HTTPError(502, "malformed status line") }
        let version = try parseVersion(storage, line.lowerBound..<(line.lowerBound + 8), errorStatus: 502)
        let s = line.lowerBound + 8
        guard storage[s] == ASCII.space, version.major == 1,
              ASCII.isDigit(storage[s + 1]), ASCII.isDigit(storage[s + 2]), ASCII.isDigit(storage[s + 3]) else {
            throw HTTPError(502, "malformed status line")
        }
        let status = Int(storage[s + 1] - 48) * 100 + Int(storage[s + 2] - 48) * 10 + Int(storage[s + 3] - 48)
        var reasonStart = s + 4
        if reasonStart < line.upperBound {
            guard storage[reasonStart] == ASCII.space else { throw HTTPError(502, "malformed status line") }
            reasonStart += 1
        }
        for b in storage[reasonStart..<line.upperBound] where !ASCII.isFieldValueChar(b) {
            throw HTTPError(502, "control character in reason phrase")
        }
        let headers = try parseFields(storage, &lines, limits: limits, errorStatus: 502, tooMany: 502)
        return ResponseHead(version: version, status: status, reasonRange: reasonStart..<line.upperBound, headers: headers)
    }

    /// Parses trailer field lines (without the final empty line) with the same rules as header fields.
    public static func parseTrailerFields(_ bytes: [UInt8], limits: HeadLimits, errorStatus: Int) throws(HTTPError) -> HeaderFields {
        var withEnd = bytes
        withEnd.append(contentsOf: [ASCII.cr, ASCII.lf])
        var lines = try LineReader(withEnd, errorStatus: errorStatus)
        return try parseFields(withEnd, &lines, limits: limits, errorStatus: errorStatus, tooMany: errorStatus)
    }

    static func parseVersion(_ s: [UInt8], _ r: Range<Int>, errorStatus: Int) throws(HTTPError) -> HTTPVersion {
        guard r.count == 8, s[r.lowerBound] == 72, s[r.lowerBound + 1] == 84, s[r.lowerBound + 2] == 84,
              s[r.lowerBound + 3] == 80, s[r.lowerBound + 4] == ASCII.slash,
              ASCII.isDigit(s[r.lowerBound + 5]), s[r.lowerBound + 6] == 46, ASCII.isDigit(s[r.lowerBound + 7]) else {
            throw HTTPError(errorStatus, "malformed HTTP version")
        }
        return HTTPVersion(major: s[r.lowerBound + 5] - 48, minor: s[r.lowerBound + 7] - 48)
    }

    static func parseFields(_ storage: [UInt8], _ lines: inout LineReader, limits: HeadLimits,
                            errorStatus: Int, tooMany: Int) throws(HTTPError) -> HeaderFields {
        var headers = HeaderFields(storage: storage)
        while let line = lines.next() {
            if line.isEmpty { return headers }
            if ASCII.isWhitespace(storage[line.lowerBound]) {
                throw HTTPError(errorStatus, "obsolete line folding (obs-fold) in header section")
            }
            var i = line.lowerBound
            while i < line.upperBound, ASCII.isTokenChar(storage[i]) { i += 1 }
            guard i < line.upperBound, i > line.lowerBound else { throw HTTPError(errorStatus, "malformed header field") }
            guard storage[i] == ASCII.colon else {
                if ASCII.isWhitespace(storage[i]) { throw HTTPError(errorStatus, "whitespace between header field name and colon") }
                throw HTTPError(errorStatus, "invalid character in header field name")
            }
            let nameEnd = i
            var valueStart = i + 1
            var valueEnd = line.upperBound
            while valueStart < valueEnd, ASCII.isWhitespace(storage[valueStart]) { valueStart += 1 }
            while valueEnd > valueStart, ASCII.isWhitespace(storage[valueEnd - 1]) { valueEnd -= 1 }
            for j in valueStart..<valueEnd where !ASCII.isFieldValueChar(storage[j]) {
                throw HTTPError(errorStatus, "NUL or control character in header field value")
            }
            headers.appendParsed(nameStart: line.lowerBound, nameEnd: nameEnd, valueStart: valueStart, valueEnd: valueEnd)
            if headers.count > limits.maxFields { throw HTTPError(tooMany, "more than \(limits.maxFields) header fields") }
        }
        throw HTTPError(errorStatus, "header section not terminated")
    }

    /// RFC 9112 §3.2: an HTTP/1.1 request carries exactly one Host, and it must be a plausible authority.
    static func validateHost(_ head: RequestHead) throws(HTTPError) {
        let hosts = head.headers.values(FieldName.host)
        if hosts.count > 1 { throw HTTPError(400, "more than one Host header") }
        if head.version == .http11 && hosts.isEmpty { throw HTTPError(400, "HTTP/1.1 request without Host") }
        if let host = hosts.first {
            for b in host where !(ASCII.isTokenChar(b) || b == ASCII.colon || b == 91 || b == 93 || b == 64) {
                throw HTTPError(400, "invalid Host header")
            }
        }
    }
}

/// Splits a head into lines, refusing bare LF and bare CR (RFC 9112 §2.2: a proxy must not guess).
struct LineReader {
    private var lines: [Range<Int>] = []
    private var index = 0

    init(_ s: [UInt8], errorStatus: Int) throws(HTTPError) {
        var start = 0
        var i = 0
        let n = s.count
        while i < n {
            let b = s[i]
            if b == ASCII.lf {
                guard i > 0, s[i - 1] == ASCII.cr else {
                    throw HTTPError(errorStatus, "bare LF line ending")
                }
                lines.append(start..<(i - 1))
                start = i + 1
            } else if b == ASCII.cr, i + 1 < n, s[i + 1] != ASCII.lf {
                throw HTTPError(errorStatus, "bare CR in header section")
            } else if b == 0 {
                throw HTTPError(errorStatus, "NUL byte in header section")
            }
            i += 1
        }
    }

    mutating func next() -> Range<Int>? {
        guard index < lines.count else { return nil }
        defer { index += 1 }
        return lines[index]
    }
}
