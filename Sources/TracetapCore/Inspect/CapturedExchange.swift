import CTracetapSys
import Foundation

/// One exchange read back from a capture file (see `CaptureFormat` for the line it comes from).
public struct CapturedExchange: Sendable {
    public struct Message: Sendable {
        public var version: String
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]
        public var bodySize: Int
        public var bodyTruncated: Bool

        public func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }

        /// The body as the application sees it when it was sent gzip-encoded (the store keeps it as sent);
        /// nil when it is not gzip, or cannot be decoded (cut by the capture cap, corrupt).
        public var gunzipped: [UInt8]? {
            guard !bodyTruncated, let coding = header("content-encoding")?.lowercased().trimmingCharacters(in: .whitespaces),
                  coding == "gzip" || coding == "x-gzip" else { return nil }
            return Gzip.decompress(body)
        }
    }

    public var session: String
    public var sequence: Int
    public var started: String
    public var startedUnix: Double
    public var traceID: String
    public var spanID: String
    public var requestID: String
    public var client: String
    /// The client connection it came on (unique within a session; 0 when unknown).
    public var connection: UInt64
    public var upstream: String
    public var upstreamReused: Bool
    public var method: String
    public var target: String
    public var request: Message?
    public var responseStatus: Int
    public var responseReason: String
    public var response: Message?
    /// The status the client received (the proxy's own, e.g. 502, when the upstream failed); 0 for none.
    public var status: Int
    public var error: String?
    public var errorMessage: String?
    /// Microseconds from the first byte of the request head; -1 where a phase did not happen.
    public var timings: [String: Int]
    public var faults: [String]
    /// For a request sent by a `duplicate` fault: which copy, of how many, and how the group's responses differ.
    public var duplicate: (copy: Int, of: Int, difference: String?)?

    public var path: String { String(target.prefix { $0 != "?" }) }
    public var durationMicros: Int { timings["response_complete"] ?? -1 }
    /// `SESSION:SEQ`, what `tracetap show` takes.
    public var id: String { "\(session):\(sequence)" }

    /// `bodies`: the session file the record's body offsets point into.
    init?(line: Data, session: String, bodies: Data) {
        self.init(line: line, session: session) { offset, length in
            offset + length <= bodies.count ? [UInt8](bodies[bodies.startIndex + offset..<bodies.startIndex + offset + length]) : []
        }
    }

    /// `body`: reads `length` bytes at `offset` of the session's bodies file (empty when it cannot).
    init?(line: Data, session: String, body: (_ offset: Int, _ length: Int) -> [UInt8]) {
        // Our own parser into a plain enum: Foundation's JSONSerialization and the casts out of its
        // dictionaries took most of `tracetap ls` on a large session.
        guard let object = try? JSONValue(LineJSON.parse([UInt8](line))), let sequence = object["seq"]?.int else { return nil }
        self.session = session
        self.sequence = sequence
        started = object["started"]?.text ?? ""
        startedUnix = object["started_unix"]?.double ?? 0
        traceID = object["trace_id"]?.text ?? ""
        spanID = object["span_id"]?.text ?? ""
        requestID = object["request_id"]?.text ?? ""
        client = object["client"]?.text ?? ""
        connection = object["connection"]?.unsigned ?? 0
        upstream = object["upstream"]?.text ?? ""
        upstreamReused = object["upstream_reused"]?.flag ?? false
        let request = object["request"]
        method = request?["method"]?.text ?? "-"
        target = request?["target"]?.text ?? "-"
        self.request = request.flatMap { Self.message($0, body: body) }
        let response = object["response"]
        responseStatus = response?["status"]?.int ?? 0
        responseReason = response?["reason"]?.text ?? ""
        self.response = response.flatMap { Self.message($0, body: body) }
        status = object["status"]?.int ?? 0
        error = object["error"]?.text
        errorMessage = object["error_message"]?.text
        if case .object(let members) = object["timings_us"] { timings = members.compactMapValues(\.int) } else { timings = [:] }
        faults = object["faults"]?.items.compactMap(\.text) ?? []
        if let mark = object["duplicate"], let copy = mark["copy"]?.int, let of = mark["of"]?.int {
            duplicate = (copy, of, mark["difference"]?.text)
        }
    }

    /// nil for JSON null (no request or response recorded).
    private static func message(_ object: JSONValue, body read: (Int, Int) -> [UInt8]) -> Message? {
        guard case .object = object else { return nil }
        let pairs = object["headers"]?.items.compactMap { pair -> (name: String, value: String)? in
            let parts = pair.items.compactMap(\.text)
            return parts.count == 2 ? (name: parts[0], value: parts[1]) : nil
        } ?? []
        let offset = object["body_offset"]?.int ?? 0
        let length = object["body_length"]?.int ?? 0
        let body = offset >= 0 && length > 0 ? read(offset, length) : []
        return Message(version: object["version"]?.text ?? "HTTP/1.1", headers: pairs, body: body,
                       bodySize: object["body_size"]?.int ?? body.count, bodyTruncated: object["body_truncated"]?.flag ?? false)
    }
}

/// Reads a capture store: session folders, their files in order, one exchange per line. Lines that do not
/// parse (a torn last line after a power loss) are counted and skipped.
public struct CaptureReader: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// Session names, oldest first (names sort by start time).
    public func sessions() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { isDirectory(directory + "/" + $0) }.sorted()
    }

    /// `withBodies: false` leaves every body empty (sizes still given) and does not read the bodies files.
    public func exchanges(in session: String, withBodies: Bool = true) -> (exchanges: [CapturedExchange], skippedLines: Int) {
        let folder = directory + "/" + session
        var result: [CapturedExchange] = []
        var skipped = 0
        for file in exchangeFiles(in: session) {
            guard let data = FileManager.default.contents(atPath: folder + "/" + file) else { continue }
            let bodies = withBodies ? FileManager.default.contents(atPath: folder + "/" + Self.bodiesFile(of: file)) ?? Data() : Data()
            for (index, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() where index > 0 {
                if let exchange = CapturedExchange(line: Data(line), session: session, bodies: bodies) { result.append(exchange) } else { skipped += 1 }
            }
        }
        return (result.sorted { $0.sequence < $1.sequence }, skipped)
    }

    /// One exchange by its span ID, bodies read from just where they lie (see `exchanges(in:lineContaining:limit:withBodies:)`).
    public func exchange(in session: String, spanID: String) -> CapturedExchange? {
        exchanges(in: session, lineContaining: "\"span_id\":\"\(spanID)\"", limit: 1, withBodies: true).first
    }

    /// The exchanges of one trace, oldest first, without reading the rest of the session.
    public func exchanges(in session: String, traceID: String, limit: Int = .max, withBodies: Bool = false) -> [CapturedExchange] {
        exchanges(in: session, lineContaining: "\"trace_id\":\"\(traceID)\"", limit: limit, withBodies: withBodies).filter { $0.traceID == traceID }
    }

    /// The first `limit` exchanges whose line holds `needle`, oldest first: the files are searched for it as
    /// bytes, only the lines that have it are parsed, and their bodies are read from just where they lie.
    private func exchanges(in session: String, lineContaining needle: String, limit: Int, withBodies: Bool) -> [CapturedExchange] {
        let folder = directory + "/" + session
        let needle = Data(needle.utf8)
        var found: [CapturedExchange] = []
        for file in exchangeFiles(in: session) where found.count < limit {
            guard let data = FileManager.default.contents(atPath: folder + "/" + file) else { continue }
            let bodies = withBodies ? FileHandle(forReadingAtPath: folder + "/" + Self.bodiesFile(of: file)) : nil
            defer { try? bodies?.close() }
            var from = data.startIndex
            while found.count < limit, let hit = Self.search(data, for: needle, from: from) {
                let start = data[..<hit.lowerBound].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? data.startIndex
                let end = data[hit.upperBound...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
                from = end
                let exchange = CapturedExchange(line: data[start..<end], session: session) { offset, length in
                    guard let bodies, (try? bodies.seek(toOffset: UInt64(offset))) != nil, let bytes = try? bodies.read(upToCount: length) else { return [] }
                    return [UInt8](bytes)
                }
                if let exchange { found.append(exchange) }
            }
        }
        return found
    }

    /// memmem over the file's bytes: Data's own `range(of:)` compares byte by byte, several times slower
    /// on a session of hundreds of megabytes.
    private static func search(_ data: Data, for needle: Data, from: Data.Index) -> Range<Data.Index>? {
        data.withUnsafeBytes { haystack in
            needle.withUnsafeBytes { wanted -> Range<Data.Index>? in
                let start = from - data.startIndex
                guard let base = haystack.baseAddress, let hit = tt_memmem(base + start, haystack.count - start, wanted.baseAddress, wanted.count) else {
                    return nil
                }
                let offset = data.startIndex + (UnsafeRawPointer(hit) - UnsafeRawPointer(base))
                return offset..<offset + needle.count
            }
        }
    }

    private func exchangeFiles(in session: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/" + session)) ?? [])
            .filter { $0.hasPrefix("exchanges-") && $0.hasSuffix(".jsonl") }.sorted()
    }

    private static func bodiesFile(of exchangesFile: String) -> String {
        exchangesFile.replacingOccurrences(of: "exchanges-", with: "bodies-").replacingOccurrences(of: ".jsonl", with: ".bin")
    }

    /// The fault rules' seed the session ran with (`--seed` repeats its choices); nil with rules off.
    public func rulesSeed(of session: String) -> UInt64? {
        let folder = directory + "/" + session
        guard let first = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter({ $0.hasPrefix("exchanges-") }).min(),
              let handle = FileHandle(forReadingAtPath: folder + "/" + first) else { return nil }
        defer { try? handle.close() }
        let head = handle.readData(ofLength: 4096)
        guard let line = head.split(separator: UInt8(ascii: "\n")).first,
              let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { return nil }
        return (object["rules_seed"] as? NSNumber)?.uint64Value
    }

    /// An exchange by `SESSION:SEQ`, `SEQ` (newest session), trace ID or request ID (newest first). The ID
    /// is searched for as it is written in the files; only the lines that have it are parsed.
    public func find(_ id: String) -> CapturedExchange? {
        let all = sessions()
        func numbered(_ sequence: Int, in session: String) -> CapturedExchange? {
            exchanges(in: session, lineContaining: "{\"seq\":\(sequence),", limit: 1, withBodies: true).first { $0.sequence == sequence }
        }
        if let colon = id.lastIndex(of: ":"), let sequence = Int(id[id.index(after: colon)...]) {
            return numbered(sequence, in: String(id[..<colon]))
        }
        if let sequence = Int(id), let newest = all.last {
            return numbered(sequence, in: newest)
        }
        for session in all.reversed() {
            // One search for the ID as a JSON string finds it as a trace ID and as a request ID alike.
            let named = exchanges(in: session, lineContaining: JSONText.quote(id), limit: .max, withBodies: false)
            if let newest = named.filter({ $0.traceID == id || $0.requestID == id }).max(by: { $0.sequence < $1.sequence }) {
                return exchange(in: session, spanID: newest.spanID)
            }
        }
        return nil
    }

    private func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }
}
