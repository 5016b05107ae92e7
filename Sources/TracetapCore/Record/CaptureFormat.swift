import Glibc
import HTTPCodec

/// The on-disk format, version 1 (documented in the README under "Capture format"). A session folder holds
/// pairs of files: `exchanges-NNNN.jsonl`, one JSON object per exchange, and `bodies-NNNN.bin`, the bodies'
/// raw bytes, which a record points into by offset and length. Raw bodies cost a copy, not an encoding,
/// so recording keeps up with the proxy. Headers are [name, value] pairs in the order and case they arrived.
enum CaptureFormat {
    static let version = 1

    /// The first line of every exchanges file.
    static func fileHeader(session: String, file: Int, rulesSeed: UInt64?, into out: inout LineBuffer) {
        out.append(Array("{\"tracetap_capture\":\(version),\"session\":".utf8))
        JSONBytes.string(session.utf8, utf8: true, into: &out)
        out.append(Array(",\"file\":\(file),\"bodies\":\"\(bodiesName(file))\",\"rules_seed\":\(rulesSeed.map(String.init) ?? "null")}\n".utf8))
    }

    static func exchangesName(_ file: Int) -> String { "exchanges-\(fourDigits(file)).jsonl" }
    static func bodiesName(_ file: Int) -> String { "bodies-\(fourDigits(file)).bin" }
    private static func fourDigits(_ n: Int) -> String { String(repeating: "0", count: max(0, 4 - String(n).count)) + String(n) }

    /// Where a record's bodies went in the bodies file.
    struct BodyPlacement {
        var requestOffset: Int
        var responseOffset: Int
    }

    /// One record as a JSON line, written byte by byte: the writer thread runs this for every exchange, so
    /// it builds no intermediate strings.
    static func line(_ r: ExchangeRecord, sequence: Int, bodies: BodyPlacement, into out: inout LineBuffer) {
        out.append("{\"seq\":")
        JSONBytes.int(Int64(sequence), into: &out)
        out.append(",\"started\":\"")
        timestamp(r.startedAt, into: &out)
        out.append("\",\"started_unix\":")
        JSONBytes.seconds(r.startedAt, into: &out)
        out.append(",\"trace_id\":\"")
        out.appendHex(r.trace.traceID.high)
        out.appendHex(r.trace.traceID.low)
        out.append("\",\"span_id\":\"")
        out.appendHex(r.trace.spanID.value)
        out.append("\",\"parent_span_id\":")
        if let parent = r.trace.parentSpanID {
            out.append(UInt8(ascii: "\""))
            out.appendHex(parent.value)
            out.append(UInt8(ascii: "\""))
        } else {
            out.append("null")
        }
        field("request_id", r.trace.requestID, into: &out)
        field("client", r.clientAddress.utf8, utf8: true, into: &out)
        number("connection", Int64(bitPattern: r.connection), into: &out)
        field("upstream", r.upstreamAddress.utf8, utf8: true, into: &out)
        flag("upstream_reused", r.upstreamReused, into: &out)
        flag("retried", r.retried, into: &out)
        flag("upgraded", r.upgraded, into: &out)
        out.append(",\"request\":")
        if let request = r.request {
            out.append("{\"method\":")
            JSONBytes.string(request.method, into: &out)
            field("target", request.target, into: &out)
            version(request.version, into: &out)
            message(request.headers, r.requestBody, offset: bodies.requestOffset, into: &out)
        } else {
            out.append("null")
        }
        out.append(",\"response\":")
        if let response = r.response {
            out.append("{\"status\":")
            JSONBytes.int(Int64(response.status), into: &out)
            field("reason", response.reason, into: &out)
            version(response.version, into: &out)
            message(response.headers, r.responseBody, offset: bodies.responseOffset, into: &out)
        } else {
            out.append("null")
        }
        number("status", Int64(r.status), into: &out)
        out.append(",\"error\":")
        if let failure = r.failure { JSONBytes.string(failure.rawValue.utf8, utf8: true, into: &out) } else { out.append("null") }
        out.append(",\"error_message\":")
        if let message = r.failureMessage { JSONBytes.string(message.utf8, utf8: true, into: &out) } else { out.append("null") }
        let t = r.timings
        out.append(",\"timings_us\":{\"head_received\":")
        JSONBytes.int(t.headReceived, into: &out)
        number("body_received", t.bodyReceived, into: &out)
        number("connect", t.connect, into: &out)
        number("tls", t.tls, into: &out)
        number("request_sent", t.requestSent, into: &out)
        number("first_response_byte", t.firstResponseByte, into: &out)
        number("response_complete", t.responseComplete, into: &out)
        out.append("},\"faults\":[")
        for (index, fault) in r.faults.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONBytes.string(fault.utf8, utf8: true, into: &out)
        }
        out.append(UInt8(ascii: "]"))
        if let mark = r.duplicate {
            // The group shares the trace ID; `copy` 1 is the one the client was answered from.
            out.append(Array(",\"duplicate\":{\"copy\":\(mark.copy),\"of\":\(mark.of),\"mode\":\"\(mark.concurrent ? "concurrent" : "sequential")\",\"difference\":".utf8))
            if let difference = mark.difference { JSONBytes.string(difference.utf8, utf8: true, into: &out) } else { out.append("null") }
            out.append(UInt8(ascii: "}"))
        }
        out.append("}\n")
    }

    private static func number(_ name: StaticString, _ value: Int64, into out: inout LineBuffer) {
        key(name, into: &out)
        JSONBytes.int(value, into: &out)
    }

    private static func flag(_ name: StaticString, _ value: Bool, into out: inout LineBuffer) {
        key(name, into: &out)
        out.append(value ? "true" : "false")
    }

    private static func key(_ name: StaticString, into out: inout LineBuffer) {
        out.append(UInt8(ascii: ","))
        out.append(UInt8(ascii: "\""))
        out.append(name)
        out.append(UInt8(ascii: "\""))
        out.append(UInt8(ascii: ":"))
    }

    private static func version(_ version: HTTPVersion, into out: inout LineBuffer) {
        out.append(",\"version\":\"HTTP/")
        out.append(UInt8(ascii: "0") + version.major)
        out.append(UInt8(ascii: "."))
        out.append(UInt8(ascii: "0") + version.minor)
        out.append(UInt8(ascii: "\""))
    }

    private static func field<C: Collection>(_ name: StaticString, _ value: C, utf8: Bool = false, into out: inout LineBuffer) where C.Element == UInt8 {
        key(name, into: &out)
        JSONBytes.string(value, utf8: utf8, into: &out)
    }

    private static func message(_ headers: HeaderFields, _ body: CapturedBody, offset: Int, into out: inout LineBuffer) {
        out.append(",\"headers\":[")
        for i in 0..<headers.count {
            out.append(i == 0 ? "[" : ",[")
            JSONBytes.string(headers.name(at: i), into: &out)
            out.append(UInt8(ascii: ","))
            JSONBytes.string(headers.value(at: i), into: &out)
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "]"))
        number("body_offset", Int64(offset), into: &out)
        number("body_length", Int64(body.bytes.count), into: &out)
        number("body_size", Int64(body.size), into: &out)
        flag("body_truncated", body.truncated, into: &out)
        out.append(UInt8(ascii: "}"))
    }

    /// ISO 8601 UTC with milliseconds: `2026-11-22T22:45:53.354Z`.
    static func timestamp(_ seconds: Double, into out: inout LineBuffer) {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        let millis = Int((seconds - Double(Int(seconds))) * 1000)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var v = value
            while divisor > 0 { out.append(UInt8(ascii: "0") + UInt8(v / divisor % 10)); v %= divisor; divisor /= 10 }
        }
        digits(Int(parts.tm_year) + 1900, 4); out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2); out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2); out.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2); out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2); out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2); out.append(UInt8(ascii: "."))
        digits(millis, 3); out.append(UInt8(ascii: "Z"))
    }

    static func timestamp(_ seconds: Double) -> String {
        var out = LineBuffer(capacity: 32)
        timestamp(seconds, into: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }
}

/// JSON string literals written straight into bytes (RFC 8259 §7).
enum JSONBytes {

    static func int(_ value: Int64, into out: inout LineBuffer) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        unsigned(value.magnitude, into: &out)
    }

    static func unsigned(_ value: UInt64, into out: inout LineBuffer) {
        var magnitude = value
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            out.append(UnsafeRawBufferPointer(rebasing: buffer[(20 - count)...]))
        }
    }

    /// Unix seconds with microseconds: `1795387839.976549`.
    static func seconds(_ value: Double, into out: inout LineBuffer) {
        let micros = Int64((value * 1_000_000).rounded())
        int(micros / 1_000_000, into: &out)
        out.append(UInt8(ascii: "."))
        let fraction = micros % 1_000_000
        var scale: Int64 = 100_000
        while scale > 0 { out.append(UInt8(ascii: "0") + UInt8(fraction / scale % 10)); scale /= 10 }
    }

    /// Protocol bytes are taken as Latin-1 (what HTTP field values are, RFC 9110 §5.5): bytes ≥ 0x80
    /// become U+0080...U+00FF, so any header survives the round trip exactly. `utf8: true` is for our own
    /// Swift strings, whose bytes are UTF-8 already.
    static func string<C: Collection>(_ bytes: C, utf8: Bool = false, into out: inout LineBuffer) where C.Element == UInt8 {
        out.append(UInt8(ascii: "\""))
        // Runs that need no escaping (nearly all of a header) are copied whole.
        let copied: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            guard let base = buffer.baseAddress else { return }
            var runStart = 0
            var index = 0
            while index < buffer.count {
                // Eight bytes at a time while none of them needs escaping.
                if index + 8 <= buffer.count,
                   !wordNeedsEscape(UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self), utf8: utf8) {
                    index += 8
                    continue
                }
                if needsEscape(buffer[index], utf8: utf8) {
                    out.append(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[runStart..<index])))
                    escape(buffer[index], into: &out)
                    runStart = index + 1
                }
                index += 1
            }
            out.append(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[runStart...])))
        }
        if copied == nil {
            for byte in bytes {
                if needsEscape(byte, utf8: utf8) { escape(byte, into: &out) } else { out.append(byte) }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Whether any of eight bytes needs escaping: the classic "has a byte less than n / equal to c" bit
    /// tricks (exact for presence), so a header is scanned a word at a time.
    @inline(__always)
    private static func wordNeedsEscape(_ word: UInt64, utf8: Bool) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        func hasZeroByte(_ v: UInt64) -> UInt64 { (v &- ones) & ~v & high }
        let control = (word &- ones &* 0x20) & ~word & high
        let special = hasZeroByte(word ^ (ones &* 0x22)) | hasZeroByte(word ^ (ones &* 0x5C)) | hasZeroByte(word ^ (ones &* 0x7F))
        return (control | special | (utf8 ? 0 : word & high)) != 0
    }

    @inline(__always)
    private static func needsEscape(_ byte: UInt8, utf8: Bool) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte == 0x7F || (byte >= 0x80 && !utf8)
    }

    private static func escape(_ byte: UInt8, into out: inout LineBuffer) {
        switch byte {
        case UInt8(ascii: "\""): out.append(0x5C); out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C); out.append(0x5C)
        case 0x80...0xFF:
            out.append(0xC0 | (byte >> 6))
            out.append(0x80 | (byte & 0x3F))
        default:
            out.append("\\u00")
            out.append(LineBuffer.hexDigit(byte >> 4))
            out.append(LineBuffer.hexDigit(byte & 0xF))
        }
    }
}
