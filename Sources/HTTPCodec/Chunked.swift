/// Incremental decoder for the chunked transfer coding (RFC 9112 §7.1). It hands out the data and
/// collects trailer lines; sizes that overflow, bare LFs and control bytes are errors.
public struct ChunkedDecoder: Sendable {
    enum State: Sendable {
        case size(value: UInt64, digits: Int)
        case afterSize(value: UInt64)
        case chunkExtension(value: UInt64)
        case sizeLF(value: UInt64)
        case data(remaining: UInt64)
        case dataCR
        case dataLF
        case trailer
        case done
    }

    static let maxChunkSize: UInt64 = 1 << 60
    static let maxExtensionBytes = 4096
    static let maxTrailerBytes = 64 * 1024

    private var state = State.size(value: 0, digits: 0)
    private var extensionBytes = 0
    private var currentLine: [UInt8] = []
    /// Raw trailer field lines, each ending in CRLF, without the final empty line.
    public private(set) var trailers: [UInt8] = []
    public let errorStatus: Int

    public init(errorStatus: Int = 400) { self.errorStatus = errorStatus }

    public var isDone: Bool { if case .done = state { return true } else { return false } }

    /// Decodes from `input`, calling `onData` for each run of body bytes. Returns how many bytes it used;
    /// once the body is complete it stops, so anything after it stays for the next message.
    public mutating func decode(_ input: UnsafeRawBufferPointer, onData: (UnsafeRawBufferPointer) -> Void) throws(HTTPError) -> Int {
        var i = 0
        let n = input.count
        while i < n {
            switch state {
            case .data(let remaining):
                let take = Int(min(UInt64(n - i), remaining))
                onData(UnsafeRawBufferPointer(rebasing: input[i..<(i + take)]))
                i += take
                state = remaining == UInt64(take) ? .dataCR : .data(remaining: remaining - UInt64(take))
                continue
            case .done:
                return i
            default:
                break
            }
            let b = input[i]
            i += 1
            switch state {
            case .size(let value, let digits):
                if let h = ASCII.hexValue(b) {
                    let next = value << 4 | h
                    guard value <= (ChunkedDecoder.maxChunkSize >> 4), next <= ChunkedDecoder.maxChunkSize else {
                        throw HTTPError(errorStatus, "chunk size overflows")
                    }
                    state = .size(value: next, digits: digits + 1)
                } else if digits == 0 {
                    throw HTTPError(errorStatus, "invalid chunk size")
                } else {
                    try afterSize(b, value: value)
                }
            case .afterSize(let value):
                try afterSize(b, value: value)
            case .chunkExtension(let value):
                extensionBytes += 1
                if extensionBytes > ChunkedDecoder.maxExtensionBytes { throw HTTPError(errorStatus, "chunk extensions too long") }
                if b == ASCII.cr { state = .sizeLF(value: value) }
                else if !ASCII.isFieldValueChar(b) { throw HTTPError(errorStatus, "control character in chunk extension") }
            case .sizeLF(let value):
                guard b == ASCII.lf else { throw HTTPError(errorStatus, "chunk size line not ended by CRLF") }
                state = value == 0 ? .trailer : .data(remaining: value)
            case .dataCR:
                guard b == ASCII.cr else { throw HTTPError(errorStatus, "chunk data longer than its size") }
                state = .dataLF
            case .dataLF:
                guard b == ASCII.lf else { throw HTTPError(errorStatus, "chunk data not ended by CRLF") }
                state = .size(value: 0, digits: 0)
            case .trailer:
                try trailerByte(b)
            case .data, .done:
                break
            }
        }
        return i
    }

    private mutating func afterSize(_ b: UInt8, value: UInt64) throws(HTTPError) {
        switch b {
        case ASCII.cr: state = .sizeLF(value: value)
        case ASCII.semicolon: state = .chunkExtension(value: value)
        case ASCII.space, ASCII.tab: state = .afterSize(value: value)
        default: throw HTTPError(errorStatus, "invalid chunk size")
        }
    }

    private mutating func trailerByte(_ b: UInt8) throws(HTTPError) {
        currentLine.append(b)
        if trailers.count + currentLine.count > ChunkedDecoder.maxTrailerBytes {
            throw HTTPError(errorStatus, "trailer section too large")
        }
        guard b == ASCII.lf else { return }
        guard currentLine.count >= 2, currentLine[currentLine.count - 2] == ASCII.cr else {
            throw HTTPError(errorStatus, "bare LF in trailer section")
        }
        if currentLine.count == 2 {
            _ = try HeadParser.parseTrailerFields(trailers, limits: HeadLimits(), errorStatus: errorStatus)
            state = .done
        } else {
            trailers.append(contentsOf: currentLine)
        }
        currentLine.removeAll(keepingCapacity: true)
    }
}

/// Writes the chunked coding.
public enum ChunkedEncoder {
    public static func appendChunk(_ data: UnsafeRawBufferPointer, to out: inout ByteBuffer) {
        guard data.count > 0 else { return }
        out.append(contentsOf: chunkSizeLine(data.count))
        out.append(data)
        out.append(contentsOf: crlf)
    }

    public static func chunkSizeLine(_ count: Int) -> [UInt8] {
        Array(String(count, radix: 16).utf8) + crlf
    }

    /// The last chunk, the trailer lines (each with its CRLF) and the final empty line.
    public static func lastChunk(trailers: [UInt8]) -> [UInt8] {
        [48, ASCII.cr, ASCII.lf] + trailers + crlf
    }

    public static let crlf: [UInt8] = [ASCII.cr, ASCII.lf]
}
