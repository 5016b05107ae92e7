import Glibc
import HTTPCodec
import TraceContext

/// One request and its response: the forwarding loop. The client connection hands it a parsed head;
/// it tags the request, takes an upstream connection, streams the body both ways with backpressure,
/// and reports a record when it ends. Every way out goes through `complete`, `respondWithError` or `abort`.
final class Exchange: UpstreamUser {
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
    /// What the fault rules ask of this exchange.
    private var plan = FaultPlan()
    /// Set while the request body is read in full before going on: to answer an `abort`, to match rules
    /// on the body, or to send a body more than once (`duplicate`).
    private var afterBody: (() -> Void)?
    /// The whole request body when it was read before forwarding; nil while it streams.
    private var heldBody: CapturedBody?
    /// A `delay` before the response: the upstream's answer waits, unread.
    private var holdingResponse = false
    private var responseDelayed = false
    /// The response is all queued but a fault still shapes it: the exchange ends when the `reset` happens,
    /// or when a throttled or sliced response has been written out (so its timing is what the client saw).
    private enum Lingering { case untilReset, untilWritten }
    private var lingering: Lingering?
    private var duplicates: DuplicateGroup?
    /// Response bytes kept on the record: the capture cap, more while duplicates need comparing.
    private var responseKeepCap: Int
    /// The largest request body read in full before forwarding; larger ones stream and skip body rules.
    static let holdLimit = 1 << 20

    init(client: ClientConnection, request: RequestHead, framing: BodyFraming, startedAt: UInt64) {
        self.client = client
        loop = client.loop
        self.request = request
        requestBody = BodyDecoder(framing: framing, errorStatus: 400)
        requestEncoder = BodyEncoder(chunked: framing == .chunked)
        tag = RequestTagger.tag(request.headers, random: &client.loop.random)
        self.startedAt = startedAt
        record = loop.newRecord(tag: tag, request: request, clientAddress: client.peerHost, connection: client.id)
        responseKeepCap = loop.config.captureBodyCap
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
        record = loop.newRecord(tag: tag, request: request, clientAddress: client.peerHost, connection: client.id)
        responseKeepCap = 0
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
        guard let request else { return connectUpstream(fresh: false) }
        loop.rules.refresh()
        if loop.rules.needBody && canHoldBody { return holdBody { [self] in chooseFaults(request) } }
        chooseFaults(request)
    }

    /// Bodies that may be read in full before forwarding: none, or a declared length up to `holdLimit`.
    private var canHoldBody: Bool {
        switch requestBody.framing {
        case .none: true
        case .contentLength(let length): length <= UInt64(Exchange.holdLimit)
        default: false
        }
    }

    private func holdBody(then next: @escaping () -> Void) {
        heldBody = CapturedBody()
        afterBody = next
        drainRequestBody()
    }

    /// Asks the rules, then acts on what they chose: answer at once (`abort`), give up later (`timeout`),
    /// read the body first (`duplicate`), wait (`delay`), and forward.
    private func chooseFaults(_ request: RequestHead) {
        let faults = loop.rules.faults(for: request, body: heldBody?.bytes)
        guard !faults.isEmpty else { return connectUpstream(fresh: false) }
        record.faults = faults.map(\.label)
        plan = loop.rules.plan(faults)
        if let answer = plan.answer {
            let rule = faults.last { $0.fault is Abort }?.rule ?? "?"
            afterBody = { [self] in respond(status: answer.status, body: answer.body, kind: nil, message: "fault rule \(rule) answered \(answer.status)") }
            return drainRequestBody()
        }
        if let giveUp = plan.giveUp {
            let rule = faults.last { $0.fault is Timeout }?.rule ?? "?"
            loop.after(nanos: UInt64(giveUp.ms) * 1_000_000) { [self] in
                let message = "fault rule \(rule) " + (giveUp.forward ? "dropped the upstream's answer" : "held the request") + " for \(giveUp.ms) ms"
                if giveUp.respond { respondWithError(status: 504, message: message, kind: .faultTimeout) } else { abort(.faultTimeout, message) }
            }
            if !giveUp.forward { return }
        }
        var outgoing = request
        plan.requestEdits.apply(to: &outgoing.headers)
        if let duplicate = plan.duplicate {
            guard canHoldBody else {
                // A streamed body cannot be sent twice; say so on the record instead of pretending.
                plan.duplicate = nil
                record.faults = record.faults.map { $0.hasSuffix(":duplicate") ? $0 + "-skipped-body-too-large" : $0 }
                return forward(outgoing)
            }
            duplicates = DuplicateGroup(loop: loop, fault: duplicate, request: outgoing, tag: tag, clientHost: client.peerHost,
                                        connection: client.id, faults: record.faults)
            responseKeepCap = max(responseKeepCap, Exchange.holdLimit)
            outgoing.headers.append(name: DuplicateGroup.headerName, value: Array("1/\(duplicate.count)".utf8))
            if heldBody == nil { return holdBody { [self] in forward(outgoing) } }
        }
        forward(outgoing)
    }

    /// Forwards after the request `delay`, if any.
    private func forward(_ outgoing: RequestHead) {
        if plan.duplicate != nil || !plan.requestEdits.isEmpty {
            outgoingHead = loop.tagger.outgoingHead(outgoing, framing: requestBody.framing, tag: tag, clientHost: client.peerHost)
        }
        guard plan.requestDelayMs > 0 else { return connectAndDuplicate() }
        loop.after(nanos: UInt64(plan.requestDelayMs) * 1_000_000) { [self] in
            if !finished { connectAndDuplicate() }
        }
    }

    private func connectAndDuplicate() {
        if let duplicates, let body = heldBody { duplicates.start(body: body.bytes) }
        connectUpstream(fresh: false)
    }

    private func connectUpstream(fresh: Bool) {
        connectStartedAt = now
        takeUpstream(from: loop.pool, fresh: fresh) { upstream = $0; record.upstreamReused = $1 }
    }

    func upstreamConnected() {
        guard let upstream, !finished else { return }
        record.timings.connect = record.upstreamReused ? 0 : Int64((now - connectStartedAt) / 1000)
        if !record.upstreamReused && upstream.tlsMicros >= 0 { record.timings.tls = upstream.tlsMicros }
        upstream.setDeadline(afterNanos: loop.config.responseTimeout.nanos)
        sendRequest(to: upstream) {
            if let rate = plan.requestBytesPerSecond {
                upstream.pacer = OutputPacer(start: upstream.bytesQueued, now: now, bytesPerSecond: rate, slice: nil, resetAfter: nil) {}
            }
            upstream.send(outgoingHead)
            if let heldBody {
                upstream.send(heldBody.bytes)
                requestForwarded = true
            } else if requestBody.isComplete {
                requestForwarded = true
            } else {
                pumpRequestBody()
            }
            if requestForwarded { upstream.pacer?.end = upstream.bytesQueued }
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
            if afterBody != nil { return drainRequestBody() }
            if let upstream { sendRequest(to: upstream) { pumpRequestBody() } }
        }
    }

    /// Reads the request body without forwarding it (into `heldBody` when holding it, else only captured),
    /// then goes on with `afterBody`.
    private func drainRequestBody() {
        if !requestBody.isComplete {
            let captureCap = loop.config.captureBodyCap
            let (received, failure) = heldBody == nil
                ? Exchange.relayBody(&requestBody, from: client, encoder: requestEncoder, to: nil, capture: &record.requestBody, cap: captureCap)
                : Exchange.relayBody(&requestBody, from: client, encoder: requestEncoder, to: nil, capture: &heldBody!, cap: Exchange.holdLimit)
            record.requestBodyBytes += UInt64(received)
            if let failure { return respondWithError(status: failure.status, message: failure.reason, kind: .malformedRequest) }
            guard requestBody.isComplete else { return client.updateInterest() }
            client.clearDeadline()
            record.timings.bodyReceived = micros(now)
            if let heldBody, captureCap > 0 { record.requestBody = heldBody.prefix(captureCap) }
        }
        let next = afterBody
        afterBody = nil
        next?()
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
            upstream.pacer?.end = upstream.bytesQueued
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
        // The upstream pauses while the client cannot keep up, or while a `delay` holds the response.
        if let upstream, !finished { upstream.peerBackpressure = holdingResponse || client.outbound.readableCount >= Connection.highWater }
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
        if holdingResponse { return }
        if plan.giveUp?.forward == true {
            // `timeout` after forwarding: the answer is read and dropped; the timer answers the client.
            return upstream.inbound.consume(upstream.inbound.readableCount)
        }
        if plan.responseDelayMs > 0 && !responseDelayed && !upstream.inbound.isEmpty { return delayResponse(upstream) }
        if responseBody == nil {
            readResponseHeads(upstream, eof: eof)
        }
        if responseBody != nil, !finished {
            upstream.setDeadline(afterNanos: loop.config.responseTimeout.nanos)
            pumpResponseBody(upstream, eof: eof)
        }
    }

    /// Leaves the response unread for the `delay` before it, then carries on as if it had just arrived.
    private func delayResponse(_ upstream: UpstreamConnection) {
        responseDelayed = true
        holdingResponse = true
        upstream.clearDeadline()
        loop.after(nanos: UInt64(plan.responseDelayMs) * 1_000_000) { [self] in
            holdingResponse = false
            guard !finished, let upstream = self.upstream else { return }
            upstream.setDeadline(afterNanos: loop.config.responseTimeout.nanos)
            upstreamInputAvailable(eof: upstream.sawEOF)
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
                guard let parsed = try upstream.takeResponseHead(&responseScanner) else {
                    if eof { upstreamFailed(SocketError("upstream closed the connection in the middle of the response head"), kind: .upstreamClosedEarly) }
                    return
                }
                head = parsed
            } catch {
                return upstreamFailed(SocketError("upstream sent a malformed response: \(error.reason)"), kind: .upstreamMalformed)
            }
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

    private func startResponse(_ received: ResponseHead, _ upstream: UpstreamConnection) {
        var head = received
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
        plan.responseEdits.apply(to: &head.headers)
        if let status = plan.status { head.replaceStatus(status) }
        if plan.shapesResponse {
            client.pacer = OutputPacer(start: client.bytesQueued, now: now, bytesPerSecond: plan.responseBytesPerSecond,
                                       slice: plan.slice, resetAfter: plan.resetAfterBytes) { [self] in resetClient() }
        }
        client.send(ResponseWriter.head(head, framing: clientFraming, tag: tag, connection: connection))
        responseStarted = true
        record.response = head
        record.status = head.status
        responseBody = BodyDecoder(framing: framing, errorStatus: 502)
        record.responseBody.expect(framing, cap: responseKeepCap)
    }

    private func pumpResponseBody(_ upstream: UpstreamConnection, eof: Bool) {
        guard var body = responseBody else { return }
        let encoder = responseEncoder
        let (forwarded, failure) = Exchange.relayBody(&body, from: upstream, encoder: encoder, to: client,
                                                      capture: &record.responseBody, cap: responseKeepCap)
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
        if lingering == .untilWritten {
            lingering = nil
            record.timings.responseComplete = micros(now)
            return finishWithClient()
        }
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
        client.pacer?.end = client.bytesQueued
        if plan.resetAfterBytes != nil && !client.isClosed {
            // The reset point comes at the latest with the response's last byte.
            lingering = .untilReset
            _ = client.flush()
            return
        }
        if client.pacer != nil && !client.outbound.isEmpty {
            lingering = .untilWritten
            return
        }
        finishWithClient()
    }

    private func finishWithClient() {
        report()
        client.exchangeFinished(keepAlive: keepClientAlive && requestBody.isComplete && !tunneling)
    }

    /// A `reset` fault's moment: RST the client connection, mid-response or after it.
    private func resetClient() {
        guard !client.isClosed else { return }
        if !finished || lingering == .untilReset {
            finished = true
            lingering = nil
            upstream?.close()
            upstream = nil
            record.failure = .faultReset
            record.failureMessage = "fault rule reset the client connection after \(plan.resetAfterBytes ?? 0) response bytes"
            record.timings.responseComplete = micros(now)
            report()
        }
        Sockets.setResetOnClose(client.fd)
        client.teardown(reason: "reset by a fault rule")
    }

    /// Hands the finished record on: to the recorders, or to the duplicate group it belongs to.
    private func report() {
        if let duplicates { duplicates.firstFinished(record) } else { loop.exchangeFinished(record) }
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
        record.status = status
        record.failure = kind
        record.failureMessage = kind == nil ? nil : message
        record.timings.responseComplete = micros(now)
        // Recorded before the client can read the answer, so its next request's record comes after this one.
        report()
        client.send(body.map { ResponseWriter.own(status: status, body: $0, tag: tag, close: !keepAlive) }
                    ?? ResponseWriter.error(status: status, message: message, tag: tag, close: !keepAlive))
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
        report()
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
        if lingering != nil {
            lingering = nil
            return report()
        }
        guard !finished else { return }
        if tunneling { return endTunnel() }
        abort(.clientAborted, reset ? "client reset the connection" : "client closed the connection before the response")
    }

    func clientTimedOut() {
        respondWithError(status: 408, message: "request body not received within \(loop.config.headerTimeout)s", kind: .requestTimeout)
    }
}
