import Glibc
import HTTPCodec

/// One non-blocking socket with an input and an output queue. Reading stops while the input is full or
/// the other side of the exchange cannot take more (backpressure), so memory stays bounded whatever the
/// body size. Subclasses decide what the bytes mean.
class Connection: EventHandler, TimerTarget {
    enum ReadOutcome { case data, eof, failed(Int32) }

    static let highWater = 256 * 1024

    let fd: Int32
    unowned let loop: ProxyLoop
    var inbound = ByteBuffer()
    var outbound = ByteBuffer()
    var timer = TimerSlot()
    private(set) var isClosed = false
    private(set) var sawEOF = false
    /// A send failed (peer reset or gone); the socket's own error event tears the connection down.
    private(set) var writeBroken = false
    /// Set by the exchange while the other side's output queue is full.
    var peerBackpressure = false { didSet { if peerBackpressure != oldValue { updateInterest() } } }
    private var interest: UInt32
    /// Inside `batch`: sends queue up and leave in one write at the end.
    private var batching = false
    /// Paces or cuts output for a fault (`throttle`, `slice`, `reset`); nil almost always.
    var pacer: OutputPacer?
    /// Stream offsets: bytes ever handed to `send`, and bytes the kernel took. Pacers measure on them.
    private(set) var bytesQueued: UInt64 = 0
    private var bytesWritten: UInt64 = 0
    /// Output waits for the pacer's timer, not for the socket.
    private var pacedWait = false

    init(fd: Int32, loop: ProxyLoop, events: UInt32) {
        self.fd = fd
        self.loop = loop
        interest = events
        loop.events.register(fd, self, events: events)
    }

    var wantsRead: Bool { !isClosed && !sawEOF && !peerBackpressure && inbound.readableCount < Connection.highWater }

    func updateInterest() {
        guard !isClosed else { return }
        var desired: UInt32 = wantsRead ? Epoll.readable | Epoll.peerClosed : 0
        // Mid-batch the queue is about to be written directly; asking for writability now would cost two
        // epoll_ctl calls per response.
        if (!outbound.isEmpty && !batching && !pacedWait) || writeBroken { desired |= Epoll.writable }
        if desired != interest {
            interest = desired
            loop.events.modify(fd, events: desired)
        }
    }

    /// Reads what the socket holds, up to the input limit.
    func readFromSocket() -> ReadOutcome {
        let scratch = loop.events.scratch
        while inbound.readableCount < Connection.highWater {
            let n = read(fd, scratch.baseAddress, scratch.count)
            if n > 0 {
                inbound.append(UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
                if n < scratch.count { break }
                continue
            }
            if n == 0 { sawEOF = true; return .eof }
            let error = errno
            if error == EAGAIN || error == EWOULDBLOCK { break }
            if error == EINTR { continue }
            return .failed(error)
        }
        return .data
    }

    /// Sends at once when nothing is queued, and queues whatever the kernel did not take.
    func send(_ bytes: UnsafeRawBufferPointer) {
        guard !isClosed, !writeBroken, bytes.count > 0 else { return }
        bytesQueued += UInt64(bytes.count)
        if pacer != nil {
            outbound.append(bytes)
            if !batching { _ = flush() }
            return
        }
        var offset = 0
        if outbound.isEmpty && !batching {
            while offset < bytes.count {
                let n = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                if n > 0 { offset += n; bytesWritten += UInt64(n); continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
                markWriteBroken()
                return
            }
        }
        if offset < bytes.count {
            outbound.append(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            updateInterest()
        }
    }

    /// Runs `work`, then writes everything it sent in one system call: a response head and its body
    /// (or a chunk's size line, data and CRLF) go out together instead of one `send` each.
    func batch(_ work: () -> Void) {
        if batching { return work() }
        batching = true
        work()
        batching = false
        if !isClosed && !outbound.isEmpty && flush() && outbound.isEmpty { outputDrained() }
    }

    func send(_ bytes: [UInt8]) { bytes.withUnsafeBytes { send($0) } }

    /// Takes a whole request head off the front of the input; nil while it is incomplete.
    func takeRequestHead(_ scanner: inout HeadScanner) throws(HTTPError) -> RequestHead? {
        try takeHead(&scanner, tooLongStartLine: 414, tooLargeHead: 431) { (bytes, limits) throws(HTTPError) in
            try HeadParser.parseRequest(bytes, limits: limits)
        }
    }

    /// Takes a whole response head off the front of the input; nil while it is incomplete. An oversized
    /// head is the upstream's fault: 502.
    func takeResponseHead(_ scanner: inout HeadScanner) throws(HTTPError) -> ResponseHead? {
        try takeHead(&scanner, tooLongStartLine: 502, tooLargeHead: 502) { (bytes, limits) throws(HTTPError) in
            try HeadParser.parseResponse(bytes, limits: limits)
        }
    }

    private func takeHead<Head>(_ scanner: inout HeadScanner, tooLongStartLine: Int, tooLargeHead: Int,
                                _ parse: (UnsafeRawBufferPointer, HeadLimits) throws(HTTPError) -> Head) throws(HTTPError) -> Head? {
        let limits = loop.config.limits
        let found = try inbound.withReadableBytes { (bytes) throws(HTTPError) -> (Head, Int)? in
            guard let length = try scanner.scan(bytes, limits: limits, tooLongStartLine: tooLongStartLine, tooLargeHead: tooLargeHead) else { return nil }
            return (try parse(UnsafeRawBufferPointer(rebasing: bytes[0..<length]), limits), length)
        }
        guard let (head, length) = found else { return nil }
        inbound.consume(length)
        scanner.reset()
        return head
    }

    /// Writes queued output (as much as a pacer allows); false when the peer is gone.
    func flush() -> Bool {
        if writeBroken { return false }
        if pacedWait { return true }
        guard var limit = pacedLimit() else { return true }
        while !outbound.isEmpty && limit > 0 {
            let n = outbound.withReadableBytes { Glibc.send(fd, $0.baseAddress, min($0.count, limit), Int32(MSG_NOSIGNAL)) }
            if n > 0 { outbound.consume(n); bytesWritten += UInt64(n); limit -= n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
            markWriteBroken()
            return false
        }
        // The response's last byte may be a `reset` fault's moment.
        if outbound.isEmpty, pacer?.end != nil, pacedLimit() == nil { return true }
        if outbound.isEmpty { outbound.releaseCapacityIfEmpty() }
        updateInterest()
        return true
    }

    /// How many bytes the pacer lets out now (all, without one); nil when output stops: a reset is due.
    private func pacedLimit() -> Int? {
        guard let pacer else { return .max }
        switch pacer.allowance(written: bytesWritten, now: loop.events.now) {
        case .unlimited:
            if pacer.end != nil { self.pacer = nil }
            return .max
        case .reset:
            self.pacer = nil
            pacedWait = true
            loop.after(nanos: 0, pacer.onReset)
            return nil
        case .bytes(let allowed, let resumeAt):
            if allowed < outbound.readableCount { waitForPacer(until: resumeAt) }
            return allowed
        }
    }

    private func waitForPacer(until resumeAt: UInt64) {
        pacedWait = true
        let delay = resumeAt > loop.events.now ? resumeAt - loop.events.now : 0
        loop.after(nanos: max(delay, 1_000_000)) { [weak self] in
            guard let self, !self.isClosed else { return }
            self.pacedWait = false
            if self.flush() && self.outbound.isEmpty { self.outputDrained() }
        }
    }

    private func markWriteBroken() {
        writeBroken = true
        outbound = ByteBuffer()
        updateInterest()
    }

    func setDeadline(afterNanos nanos: UInt64) {
        loop.events.timers.schedule(self, at: loop.events.now + nanos)
    }

    func clearDeadline() { loop.events.timers.cancel(self) }

    func closeSocket() {
        guard !isClosed else { return }
        isClosed = true
        pacer = nil
        clearDeadline()
        loop.events.unregister(fd)
        close(fd)
        inbound = ByteBuffer()
        outbound = ByteBuffer()
    }

    func handle(events: UInt32) {}
    func deadlineReached() {}
    /// The output queue emptied after being non-empty.
    func outputDrained() {}
}
