import Glibc
import HTTPCodec
import TraceContext

/// One request and its response: the forwarding loop. The client connection hands it a parsed head;
/// it tags the request, takes an upstream connection, streams the body both ways with backpressure,
/// and reports a record when it ends. Every way out goes through `complete`, `respondWithError` or `abort`.
final class Exchange {
    private unowned let client: ClientConnection
    private unowned let loop: ProxyLoop
    let request: RequestHead?
    private var requestBody: BodyDecoder
    private let requestEncoder: BodyEncoder
    private let tag: TraceTag
    private var record: ExchangeRecord
    private let startedAt: UInt64
    private var upstream: UpstreamConnection?
    private var outgoingHead: [UInt8] = []
    private var requestForwarded = false
    private var responseScanner = HeadScanner()
    private var responseBody: BodyDecoder?
    private var responseEncoder = BodyEncoder(chunked: false)
    private var responseKeepsUpstream = false
    private var keepClientAlive = false
    private var responseStarted = false
    private var tunneling = false
    private var finished = false
    private var connectStartedAt: UInt64 = 0
    /// Set while an `abort` fault waits for the request body to arrive.
    private var answerAfterBody: (() -> Void)?

    init(client: ClientConnection, request: RequestHead, framing: BodyFraming, startedAt: UInt64) {
        self.client = client
        loop = client.loop
        self.request = request
        requestBody = BodyDecoder(framing: framing, errorStatus: 400)
        requestEncoder = BodyEncoder(chunked: framing == .chunked)
        tag = RequestTagger.tag(request.headers, random: &client.loop.random)
        self.startedAt = startedAt
        record = loop.newRecord(tag: tag, request: request, client: client)
        record.requestBody.expect(framing, cap: loop.config.captureBodyCap)
        outgoingHead = loop.tagger.outgoingHead(request, framing: framing, tag: tag, clientHost: client.peerHost)
    }

    /// An exchange for a request the codec refused: nothing goes upstream, but it is answered and recorded.
    init(client: ClientConnection, rejected request: RequestHead?, error: HTTPError, startedAt: UInt64) {
        self.client = client
        loop = client.loop
        self.request = request
        requestBody = BodyDecoder(framing: .none, errorStatus: 400)
        requestEncoder = BodyEncoder(chunked: false)
        let headers = request?.headers ?? HeaderFields()
        tag = RequestTagger.tag(headers, random: &client.loop.random)
        self.startedAt = startedAt == 0 ? client.loop.events.now : startedAt
        record = loop.newRecord(tag: tag, request: request, client: client)
    }

    private var now: UInt64 { loop.events.now }
    private func micros(_ at: UInt64) -> Int64 { Int64(at >= startedAt ? (at - startedAt) / 1000 : 0) }

    private var isRetryable: Bool {
        guard let request, case .none = requestBody.framing else { return false }
        return request.methodIs("GET") || request.methodIs("HEAD") || request.methodIs("OPTIONS")
    }

    // MARK: request path: client -> upstream

    func start() {
        record.timings.headReceived = micros(now)
        if requestBody.isComplete { record.timings.bodyReceived = record.timings.headReceived }
        else { client.setDeadline(afterNanos: loop.config.headerTimeout.nanos) }
        keepClientAlive = request?.wantsKeepAlive ?? false
        applyRequestFaults()
    }

    /// The rules' faults that act before anything goes upstream: answer at once (`abort`), hold and give up
    /// (`timeout`), or wait (`delay`, summed) and then forward.
    private func applyRequestFaults() {
        guard let request else { return connectUpstream(fresh: false) }
        let faults = loop.rules.faults(for: request)
        record.faults = faults.map(\.label)
        var delayMillis = 0
        for applied in faults {
            switch applied.fault {
            case .abort(let status, let body):
                // Read the request body first (and drop it), so the client gets the answer on a healthy connection.
                answerAfterBody = { [self] in respond(status: status, body: Array(body.utf8), kind: nil, message: "fault rule \(applied.rule) answered \(status)") }
                return drainRequestBody()
            case .timeout(let ms, let answer):
                return loop.after(nanos: UInt64(ms) * 1_000_000) { [self] in
                    let message = "fault rule \(applied.rule) held the request for \(ms) ms"
                    if answer { respondWithError(status: 504, message: message, kind: .faultTimeout) } else { abort(.faultTimeout, message) }
                }
            case .delay(let ms, let jitter):
                delayMillis += ms + loop.rules.jitter(upTo: jitter)
            }
        }
        guard delayMillis > 0 else { return connectUpstream(fresh: false) }
        loop.after(nanos: UInt64(delayMillis) * 1_000_000) { [self] in
            if !finished { connectUpstream(fresh: false) }
        }
    }

    private func connectUpstream(fresh: Bool) {
        connectStartedAt = now
        do {
            let (connection, reused) = try loop.pool.acquire(for: self, fresh: fresh)
            upstream = connection
            record.upstreamReused = reused
            if reused { upstreamConnected() }
        } catch {
            upstreamFailed(error, kind: ExchangeRecord.Failure(connectError: error.kind))
        }
    }

    func upstreamConnected() {
        guard let upstream, !finished else { return }
        record.timings.connect = record.upstreamReused ? 0 : Int64((now - connectStartedAt) / 1000)
        if !record.upstreamReused && upstream.tlsMicros >= 0 { record.timings.tls = upstream.tlsMicros }
        upstream.setDeadline(afterNanos: loop.config.responseTimeout.nanos)
        sendRequest(to: upstream) {
            upstream.send(outgoingHead)
            if requestBody.isComplete { requestForwarded = true } else { pumpRequestBody() }
        }
    }

    /// Sends what `work` writes upstream in one batch (`upstreamDrained` notes when it is all out), then
    /// pauses the client while the upstream cannot keep up.
    private func sendRequest(to upstream: UpstreamConnection, _ work: () -> Void) {
        upstream.batch(work)
        guard !finished else { return }
        client.peerBackpressure = upstream.outbound.readableCount >= Connection.highWater
        client.updateInterest()
    }

    /// New client bytes: request body, tunnel data, or the next pipelined request (which waits its turn).
    func clientInputAvailable() {
        if tunneling { return pumpTunnel(from: client) }
        if !requestBody.isComplete {
            client.setDeadline(afterNanos: loop.config.headerTimeout.nanos)
            if answerAfterBody != nil { return drainRequestBody() }
            if let upstream { sendRequest(to: upstream) { pumpRequestBody() } }
        }
    }

    /// Consumes the request body without forwarding it (it is still captured), then gives the answer.
    private func drainRequestBody() {
        if !requestBody.isComplete {
            let (received, failure) = Exchange.relayBody(&requestBody, from: client, encoder: requestEncoder, to: nil,
                                                         capture: &record.requestBody, cap: loop.config.captureBodyCap)
            record.requestBodyBytes += UInt64(received)
            if let failure { return respondWithError(status: failure.status, message: failure.reason, kind: .malformedRequest) }
            guard requestBody.isComplete else { return client.updateInterest() }
            client.clearDeadline()
            record.timings.bodyReceived = micros(now)
        }
        let answer = answerAfterBody
        answerAfterBody = nil
        answer?()
    }

    private func pumpRequestBody() {
        guard let upstream, upstream.isConnected, !finished, !requestBody.isComplete else { return }
        let (forwarded, failure) = Exchange.relayBody(&requestBody, from: client, encoder: requestEncoder, to: upstream,
                                                      capture: &record.requestBody, cap: loop.config.captureBodyCap)
        record.requestBodyBytes += UInt64(forwarded)
        if let failure {
            return respondWithError(status: failure.status, message: failure.reason, kind: .malformedRequest)
        }
        if requestBody.isComplete {
            client.clearDeadline()
            record.timings.bodyReceived = micros(now)
            upstream.send(requestEncoder.end(trailers: requestBody.trailers))
            requestForwarded = true
        }
    }

    func upstreamDrained() {
        if requestForwarded && record.timings.requestSent < 0 { record.timings.requestSent = micros(now) }
        client.peerBackpressure = false
    }

    /// Decodes what `source` holds of a body and sends it, re-framed by `encoder`, to `destination` (nil:
    /// nowhere); keeps
    /// up to `cap` bytes of it in `captured` (cap 0: capture off). Returns the payload bytes moved and the
    /// framing error, if the body was malformed.
    static func relayBody(_ decoder: inout BodyDecoder, from source: Connection, encoder: BodyEncoder,
                          to destination: Connection?, capture captured: inout CapturedBody, cap: Int) -> (forwarded: Int, failure: HTTPError?) {
        var failure: HTTPError?
        var forwarded = 0
        let used = source.inbound.withReadableBytes { input -> Int in
            do throws(HTTPError) {
                return try decoder.decode(input) { data in
                    forwarded += data.count
                    if cap > 0 { captured.append(data, cap: cap) }
                    if let destination { forward(data, encoder: encoder, to: destination) }
                }
            } catch {
                failure = error
                return 0
            }
        }
        source.inbound.consume(used)
        return (forwarded, failure)
    }

    static func forward(_ data: UnsafeRawBufferPointer, encoder: BodyEncoder, to connection: Connection) {
        if encoder.chunked {
            connection.send(ChunkedEncoder.chunkSizeLine(data.count))
            connection.send(data)
            connection.send(ChunkedEncoder.crlf)
        } else {
            connection.send(data)
        }
    }

    // MARK: response path: upstream -> client

    func upstreamInputAvailable(eof: Bool) {
        client.batch { relayResponse(eof: eof) }
        // The upstream pauses while the client cannot keep up.
        if let upstream, !finished { upstream.peerBackpressure = client.outbound.readableCount >= Connection.highWater }
    }

    private func relayResponse(eof: Bool) {
        guard let upstream, !finished else { return }
        if tunneling {
            pumpTunnel(from: upstream)
            if eof { endTunnel() }
            return
        }
        if record.timings.firstResponseByte < 0 && !upstream.inbound.isEmpty {
            record.timings.firstResponseByte = micros(now)
        }
        if responseBody == nil {
            readResponseHeads(upstream, eof: eof)
        }
        if responseBody != nil, !finished {
            upstream.setDeadline(afterNanos: loop.config.responseTimeout.nanos)
            pumpResponseBody(upstream, eof: eof)
        }
    }

    /// Reads interim (1xx) heads and the final head.
    private func readResponseHeads(_ upstream: UpstreamConnection, eof: Bool) {
        while !finished {
            if upstream.inbound.isEmpty {
                if eof { upstreamClosedEarly(upstream) }
                return
            }
            let head: ResponseHead
            do throws(HTTPError) {
                let limits = loop.config.limits
                let parsed: ResponseHead? = try upstream.inbound.withReadableBytes { (bytes) throws(HTTPError) -> ResponseHead? in
                    guard let length = try responseScanner.scan(bytes, limits: limits, tooLongStartLine: 502, tooLargeHead: 502) else { return nil }
                    let head = try HeadParser.parseResponse(UnsafeRawBufferPointer(rebasing: bytes[0..<length]), limits: limits)
                    upstream.inbound.consume(length)
                    return head
                }
                guard let parsed else {
                    if eof { upstreamFailed(SocketError("upstream closed the connection in the middle of the response head"), kind: .upstreamClosedEarly) }
                    return
                }
                head = parsed
            } catch {
                return upstreamFailed(SocketError("upstream sent a malformed response: \(error.reason)"), kind: .upstreamMalformed)
            }
            responseScanner.reset()
            if head.status == 101 {
                guard let request, HopByHop.requestsUpgrade(request.headers) else {
                    return upstreamFailed(SocketError("upstream switched protocols without being asked"), kind: .upstreamMalformed)
                }
                return startTunnel(head, upstream)
            }
            if (100..<200).contains(head.status) {
                // RFC 9110 §15.2: a proxy forwards 1xx (100 Continue, 103 Early Hints) to HTTP/1.1 clients.
                if request?.version == .http11 {
                    client.send(ResponseWriter.head(head, framing: .keepUpstream, tag: tag, connection: nil))
                }
                continue
            }
            return startResponse(head, upstream)
        }
    }

    private func startResponse(_ head: ResponseHead, _ upstream: UpstreamConnection) {
        let framing: BodyFraming
        do throws(HTTPError) { framing = try head.bodyFraming(requestIsHead: request?.isHead ?? false) } catch {
            return upstreamFailed(SocketError("upstream sent a malformed response: \(error.reason)"), kind: .upstreamMalformed)
        }
        let http11Client = request?.version == .http11
        let clientFraming: ResponseWriter.Framing
        switch framing {
        case .none:
            clientFraming = .keepUpstream
        case .contentLength(let n):
            clientFraming = .contentLength(n)
        case .chunked, .untilClose:
            // HTTP/1.1 clients get chunked (re-framing a close-delimited body keeps their connection);
            // HTTP/1.0 clients cannot parse chunked, so their body ends at close.
            clientFraming = http11Client ? .chunked : .closeDelimited
            if !http11Client { keepClientAlive = false }
        }
        if case .chunked = clientFraming { responseEncoder = BodyEncoder(chunked: true) }
        responseKeepsUpstream = head.wantsKeepAlive && framing != .untilClose
        if loop.shuttingDown { keepClientAlive = false }
        let connection: [UInt8]? = !keepClientAlive ? FieldName.close : (http11Client ? nil : ResponseWriter.keepAliveValue)
        client.send(ResponseWriter.head(head, framing: clientFraming, tag: tag, connection: connection))
        responseStarted = true
        record.response = head
        record.status = head.status
        responseBody = BodyDecoder(framing: framing, errorStatus: 502)
        record.responseBody.expect(framing, cap: loop.config.captureBodyCap)
    }

    private func pumpResponseBody(_ upstream: UpstreamConnection, eof: Bool) {
        guard var body = responseBody else { return }
        let encoder = responseEncoder
        let (forwarded, failure) = Exchange.relayBody(&body, from: upstream, encoder: encoder, to: client,
                                                      capture: &record.responseBody, cap: loop.config.captureBodyCap)
        record.responseBodyBytes += UInt64(forwarded)
        if let failure {
            responseBody = body
            return abort(.upstreamMalformed, "upstream sent a malformed body: \(failure.reason)")
        }
        if !body.isComplete && eof && !body.finishAtEOF() {
            responseBody = body
            return abort(.upstreamClosedEarly, "upstream closed the connection before the response body was complete")
        }
        responseBody = body
        if body.isComplete {
            client.send(encoder.end(trailers: body.trailers))
            return complete(upstreamReusable: !eof && responseKeepsUpstream && upstream.inbound.isEmpty)
        }
    }

    func clientDrained() {
        upstream?.peerBackpressure = false
        if tunneling { client.peerBackpressure = false }
    }

    // MARK: tunnel (101 Switching Protocols)

    private func startTunnel(_ head: ResponseHead, _ upstream: UpstreamConnection) {
        tunneling = true
        responseStarted = true
        record.upgraded = true
        record.response = head
        record.status = 101
        keepClientAlive = false
        upstream.clearDeadline()
        client.clearDeadline()
        client.send(ResponseWriter.head(head, framing: .keepUpstream, tag: tag, connection: nil))
        pumpTunnel(from: client)
        pumpTunnel(from: upstream)
    }

    private func pumpTunnel(from source: Connection) {
        guard let upstream else { return }
        let destination: Connection = source === client ? upstream : client
        let count = source.inbound.readableCount
        guard count > 0 else { return }
        source.inbound.withReadableBytes { destination.send($0) }
        source.inbound.consume(count)
        if source === client { record.requestBodyBytes += UInt64(count) } else { record.responseBodyBytes += UInt64(count) }
        source.peerBackpressure = destination.outbound.readableCount >= Connection.highWater
    }

    private func endTunnel() {
        complete(upstreamReusable: false)
    }

    // MARK: endings

    private func complete(upstreamReusable: Bool) {
        guard !finished else { return }
        finished = true
        record.timings.responseComplete = micros(now)
        if let upstream {
            self.upstream = nil
            if upstreamReusable && requestForwarded { loop.pool.release(upstream) } else { upstream.close() }
        }
        loop.exchangeFinished(record)
        client.exchangeFinished(keepAlive: keepClientAlive && requestBody.isComplete && !tunneling)
    }

    /// Answers with the proxy's own error response; only possible while no response head has gone out.
    func respondWithError(status: Int, message: String, kind: ExchangeRecord.Failure) {
        respond(status: status, body: nil, kind: kind, message: message)
    }

    /// The proxy's own response: an error page (`body` nil) or a given body (an `abort` fault).
    private func respond(status: Int, body: [UInt8]?, kind: ExchangeRecord.Failure?, message: String) {
        guard !finished else { return }
        guard !responseStarted else { return abort(kind ?? .upstreamError, message) }
        finished = true
        upstream?.close()
        upstream = nil
        let keepAlive = keepClientAlive && requestBody.isComplete && kind != .malformedRequest && kind != .requestTimeout
        client.send(body.map { ResponseWriter.own(status: status, body: $0, tag: tag, close: !keepAlive) }
                    ?? ResponseWriter.error(status: status, message: message, tag: tag, close: !keepAlive))
        record.status = status
        record.failure = kind
        record.failureMessage = kind == nil ? nil : message
        record.timings.responseComplete = micros(now)
        loop.exchangeFinished(record)
        client.exchangeFinished(keepAlive: keepAlive)
    }

    /// Ends the exchange without a clean response: the client connection closes, so it cannot mistake a
    /// partial body for a whole one.
    private func abort(_ kind: ExchangeRecord.Failure, _ message: String) {
        guard !finished else { return }
        finished = true
        upstream?.close()
        upstream = nil
        record.failure = kind
        record.failureMessage = message
        record.timings.responseComplete = micros(now)
        loop.exchangeFinished(record)
        client.teardown(reason: message)
    }

    func upstreamFailed(_ error: SocketError, kind: ExchangeRecord.Failure) {
        guard !finished else { return }
        let status = kind == .upstreamResponseTimeout ? 504 : 502
        respondWithError(status: status, message: "\(error.message) (upstream \(loop.shared.config.upstream))", kind: kind)
    }

    /// The upstream closed or reset before any response byte. A pooled connection may have been closed by
    /// the upstream just as it was reused; a body-less safe request cannot have had an effect, so it is
    /// retried once on a new connection. Anything else is reported, never silently resent.
    func upstreamClosedEarly(_ connection: UpstreamConnection, reset: Bool = false) {
        guard !finished else { return }
        if record.upstreamReused && !record.retried && isRetryable && record.timings.firstResponseByte < 0 {
            record.retried = true
            loop.shared.stats.upstreamRetries.add(1)
            connection.close()
            upstream = nil
            return connectUpstream(fresh: true)
        }
        let what = reset ? "upstream reset the connection" : "upstream closed the connection"
        upstreamFailed(SocketError("\(what) before sending a response"), kind: reset ? .upstreamReset : .upstreamClosedEarly)
    }

    func upstreamTimedOut(connecting: Bool) {
        if connecting {
            upstreamFailed(SocketError("connecting to the upstream timed out after \(loop.config.connectTimeout)s"), kind: .upstreamConnectTimeout)
        } else {
            upstreamFailed(SocketError("upstream did not answer within \(loop.config.responseTimeout)s"), kind: .upstreamResponseTimeout)
        }
    }

    func clientClosed(reset: Bool) {
        guard !finished else { return }
        if tunneling { return endTunnel() }
        abort(.clientAborted, reset ? "client reset the connection" : "client closed the connection before the response")
    }

    func clientTimedOut() {
        respondWithError(status: 408, message: "request body not received within \(loop.config.headerTimeout)s", kind: .requestTimeout)
    }
}
