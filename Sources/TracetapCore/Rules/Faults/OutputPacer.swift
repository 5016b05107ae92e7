/// Paces or cuts what a connection writes, for `throttle`, `slice` and `reset`. It covers the bytes from
/// stream offset `start` to `end` (set when the exchange has queued its last byte; before that, open):
/// bytes queued before `start` (a previous response) and after `end` (the next one) pass untouched.
final class OutputPacer {
    private let start: UInt64
    var end: UInt64?
    private let startedAt: UInt64
    private let bytesPerSecond: Int?
    private let slice: (size: Int, delayNanos: UInt64)?
    private let resetAfter: Int?
    /// When the next slice may go out: pieces keep their spacing even when the writer falls behind.
    private var nextPieceAt: UInt64 = 0
    /// Called once, on a later turn of the loop, when the reset point is reached.
    let onReset: () -> Void

    init(start: UInt64, now: UInt64, bytesPerSecond: Int?, slice: (size: Int, delayMs: Int)?, resetAfter: Int?, onReset: @escaping () -> Void) {
        self.start = start
        startedAt = now
        self.bytesPerSecond = bytesPerSecond
        self.slice = slice.map { ($0.size, UInt64($0.delayMs) * 1_000_000) }
        self.resetAfter = resetAfter
        self.onReset = onReset
    }

    enum Allowance: Equatable {
        /// Write at most this many bytes now; if more are queued, wait until `resumeAt`.
        case bytes(Int, resumeAt: UInt64)
        /// Nothing more may go out: reset the connection.
        case reset
        case unlimited
    }

    /// What may be written now, `written` being the stream offset reached so far.
    func allowance(written: UInt64, now: UInt64) -> Allowance {
        if let end, written >= end, resetAfter == nil { return .unlimited }
        let before = written < start ? Int(start - written) : 0
        let sent = written > start ? Int(written - start) : 0
        let elapsed = now - startedAt
        var allowed = Int.max
        var resumeAt = UInt64.max
        if let resetAfter {
            if sent >= resetAfter || end.map({ written >= $0 }) == true { return before > 0 ? .bytes(before, resumeAt: now) : .reset }
            allowed = resetAfter - sent
        }
        if let rate = bytesPerSecond {
            let budget = Int(min(Double(Int.max / 2), Double(rate) * Double(elapsed) / 1e9)) - sent
            // Wait for at least a 20th of a second's worth (or one byte) so that writes stay few.
            let step = max(1, min(rate / 20, 16 * 1024))
            if budget < step { resumeAt = min(resumeAt, startedAt + UInt64(Double(sent + step) / Double(rate) * 1e9)) }
            allowed = min(allowed, max(0, budget))
        }
        if let slice {
            // One piece per write, so the client sees each on its own; the caller writes what it is allowed.
            if now < nextPieceAt {
                allowed = 0
                resumeAt = nextPieceAt
            } else {
                allowed = min(allowed, slice.size)
                nextPieceAt = now + slice.delayNanos
                resumeAt = min(resumeAt, nextPieceAt)
            }
        }
        if let end, Int(end - max(written, start)) <= allowed, resetAfter == nil { return .unlimited }
        return .bytes(before + allowed, resumeAt: resumeAt == .max ? now : resumeAt)
    }
}
