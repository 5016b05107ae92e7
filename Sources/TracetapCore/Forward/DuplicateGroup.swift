import HTTPCodec
import TraceContext

/// The requests a `duplicate` fault sends: the client's own exchange (copy 1) and `count - 1` copies of
/// its request, sent after it (sequential) or beside it (concurrent). All are reported together once
/// every one has answered, each marked with its place and whether the responses differ.
final class DuplicateGroup {
    /// Sent upstream on every copy (`2/3`), so the backend's logs can tell them apart.
    static let headerName = Array("X-Tracetap-Duplicate".utf8)

    private unowned let loop: ProxyLoop
    private let fault: Duplicate
    private let request: RequestHead
    private let tag: TraceTag
    private let clientHost: String
    private let connection: UInt64
    private let faults: [String]
    private var body: [UInt8] = []
    private var records: [ExchangeRecord?]
    /// Copies in flight; they and the group keep each other alive until the last one answers.
    private var running: [DuplicateCopy] = []
    private var nextCopy = 2
    private var started = false

    init(loop: ProxyLoop, fault: Duplicate, request: RequestHead, tag: TraceTag, clientHost: String, connection: UInt64, faults: [String]) {
        self.connection = connection
        self.loop = loop
        self.fault = fault
        self.request = request
        self.tag = tag
        self.clientHost = clientHost
        self.faults = faults
        records = Array(repeating: nil, count: fault.count)
    }

    /// Called as the first copy goes upstream: concurrent copies go with it.
    func start(body: [UInt8]) {
        self.body = body
        started = true
        if fault.concurrent { while nextCopy <= fault.count { startNextCopy() } }
    }

    /// The client's exchange is over.
    func firstFinished(_ record: ExchangeRecord) {
        // Ended before it went upstream (client gone, delay cut short): there is nothing to duplicate.
        guard started else { return loop.exchangeFinished(record) }
        finished(copy: 1, record)
    }

    func finished(copy: Int, _ record: ExchangeRecord) {
        records[copy - 1] = record
        running.removeAll { $0.copy == copy }
        if !fault.concurrent && nextCopy <= fault.count { return startNextCopy() }
        guard records.allSatisfy({ $0 != nil }) else { return }
        let all = records.compactMap { $0 }
        let difference = DuplicateGroup.difference(all, ignoring: fault.ignore)
        for var record in all {
            record.duplicate = DuplicateMark(group: all[0].id, copy: all.firstIndex { $0.id == record.id }! + 1, of: fault.count,
                                             concurrent: fault.concurrent, difference: difference)
            if loop.config.captureBodyCap < record.responseBody.bytes.count { record.responseBody = record.responseBody.prefix(loop.config.captureBodyCap) }
            loop.exchangeFinished(record)
        }
    }

    private func startNextCopy() {
        let copy = nextCopy
        nextCopy += 1
        var head = request
        head.headers.append(name: DuplicateGroup.headerName, value: Array("\(copy)/\(fault.count)".utf8))
        let copyTag = tag.withNewSpan(random: &loop.random)
        var record = loop.newRecord(tag: copyTag, request: head, clientAddress: clientHost, connection: connection)
        record.faults = faults
        record.requestBodyBytes = UInt64(body.count)
        record.requestBody.size = UInt64(body.count)
        record.requestBody.bytes = Array(body.prefix(loop.config.captureBodyCap))
        let outgoing = loop.tagger.outgoingHead(head, framing: body.isEmpty ? .none : .contentLength(UInt64(body.count)), tag: copyTag, clientHost: clientHost)
        let runner = DuplicateCopy(copy: copy, group: self, loop: loop, record: record, bytes: outgoing + body)
        running.append(runner)
        runner.start()
    }

    /// Status first, then bodies: JSON compared as values without the ignored fields, anything else byte for byte.
    static func difference(_ records: [ExchangeRecord], ignoring ignore: [String]) -> String? {
        let first = records[0]
        for (index, other) in records.enumerated().dropFirst() {
            if other.status != first.status || other.failure != first.failure {
                return "copy \(index + 1): \(outcome(other)) vs \(outcome(first))"
            }
            if let difference = bodyDifference(other.responseBody, first.responseBody, ignoring: ignore) {
                return "copy \(index + 1): \(difference)"
            }
        }
        return nil
    }

    private static func outcome(_ record: ExchangeRecord) -> String {
        record.failure.map { $0.rawValue } ?? "status \(record.status)"
    }

    /// nil when the bodies agree (as JSON without the ignored fields, or byte for byte), else where they differ.
    private static func bodyDifference(_ a: CapturedBody, _ b: CapturedBody, ignoring ignore: [String]) -> String? {
        if let left = try? LineJSON.parse(a.bytes), let right = try? LineJSON.parse(b.bytes), !a.truncated, !b.truncated {
            return JSONValue(left).removing(ignore).firstDifference(from: JSONValue(right).removing(ignore))
        }
        if a.bytes == b.bytes && a.size == b.size { return nil }
        return a.size == b.size ? "body differs (\(a.size) bytes each)" : "body size \(a.size) vs \(b.size) bytes"
    }
}

/// One extra copy of a duplicated request: its own upstream connection, its response read in full (up to
/// the hold limit) for the comparison, and its own record.
final class DuplicateCopy: UpstreamUser {
    let copy: Int
    private let group: DuplicateGroup
    private unowned let loop: ProxyLoop
    private var record: ExchangeRecord
    private let bytes: [UInt8]
    private var upstream: UpstreamConnection?
    private var scanner = HeadScanner()
    private var body: BodyDecoder?
    private var done = false
    private let startedAt: UInt64
    private var connectStartedAt: UInt64 = 0

    init(copy: Int, group: DuplicateGroup, loop: ProxyLoop, record: ExchangeRecord, bytes: [UInt8]) {
        self.copy = copy
        self.group = group
        self.loop = loop
        self.record = record
        self.bytes = bytes
        startedAt = loop.events.now
    }

    private func micros() -> Int64 { Int64((loop.events.now - startedAt) / 1000) }

    func start() {
        record.timings.headReceived = 0
        record.timings.bodyReceived = 0
        connectStartedAt = loop.events.now
        takeUpstream(from: loop.pool, fresh: false) { upstream = $0; record.upstreamReused = $1 }
    }

    func upstreamConnected() {
        guard let upstream, !done else { return }
        record.timings.connect = record.upstreamReused ? 0 : Int64((loop.events.now - connectStartedAt) / 1000)
        upstream.setDeadline(afterNanos: loop.config.responseTimeout.nanos)
        upstream.send(bytes)
        if upstream.outbound.isEmpty { upstreamDrained() }
    }

    func upstreamDrained() {
        if record.timings.requestSent < 0 { record.timings.requestSent = micros() }
    }

    func upstreamInputAvailable(eof: Bool) {
        guard let upstream, !done else { return }
        if record.timings.firstResponseByte < 0 && !upstream.inbound.isEmpty { record.timings.firstResponseByte = micros() }
        do throws(HTTPError) {
            while body == nil {
                guard let head = try upstream.takeResponseHead(&scanner) else {
                    return eof ? finish(.upstreamClosedEarly, "upstream closed the connection before the response was complete") : ()
                }
                if (100..<200).contains(head.status) { continue }
                record.response = head
                record.status = head.status
                body = BodyDecoder(framing: try head.bodyFraming(requestIsHead: record.request?.isHead ?? false), errorStatus: 502)
            }
            guard var decoder = body else { return }
            let used = try upstream.inbound.withReadableBytes { (input) throws(HTTPError) -> Int in
                try decoder.decode(input) { data in
                    record.responseBodyBytes += UInt64(data.count)
                    record.responseBody.append(data, cap: Exchange.holdLimit)
                }
            }
            upstream.inbound.consume(used)
            body = decoder
            if decoder.isComplete { return finish(nil, nil, reusable: !eof && upstream.inbound.isEmpty && record.response?.wantsKeepAlive == true) }
            if eof {
                if decoder.finishAtEOF() { return finish(nil, nil) }
                finish(.upstreamClosedEarly, "upstream closed the connection before the response was complete")
            }
        } catch {
            finish(.upstreamMalformed, "upstream sent a malformed response: \(error.reason)")
        }
    }

    func upstreamFailed(_ error: SocketError, kind: ExchangeRecord.Failure) { finish(kind, error.message) }

    func upstreamClosedEarly(_ connection: UpstreamConnection, reset: Bool) {
        finish(reset ? .upstreamReset : .upstreamClosedEarly, "upstream \(reset ? "reset" : "closed") the connection before sending a response")
    }

    func upstreamTimedOut(connecting: Bool) {
        finish(connecting ? .upstreamConnectTimeout : .upstreamResponseTimeout, "upstream did not answer in time")
    }

    private func finish(_ failure: ExchangeRecord.Failure?, _ message: String?, reusable: Bool = false) {
        guard !done else { return }
        done = true
        if let upstream {
            self.upstream = nil
            if reusable { loop.pool.release(upstream) } else { upstream.close() }
        }
        record.failure = failure
        record.failureMessage = message
        if failure != nil { record.status = 0 }
        record.timings.responseComplete = micros()
        group.finished(copy: copy, record)
    }
}
