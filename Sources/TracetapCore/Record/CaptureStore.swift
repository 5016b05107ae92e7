import Foundation
import Glibc
import Synchronization

/// Writes finished exchanges to `DIR/<session>/exchanges-NNNN.jsonl` (+ `bodies-NNNN.bin`), off the event loops: loops hand
/// records over under a lock (one append each) and a writer thread serialises and writes them.
///
/// Append-only and crash-safe: files are opened O_APPEND and a batch's bodies are written before the lines
/// that point at them, so after a `kill -9` every line on disk has its bodies; a write cut short by the
/// kill can leave at most one torn last line, which readers skip. Files are 0600 in a 0700 folder. If the folder cannot be written (missing
/// permission, full disk) forwarding goes on: records are counted as lost, stderr says so once, and
/// writing resumes as soon as it works again.
///
/// The disk is bounded twice: a session keeps at most `maxBytes` (the oldest pair of files is removed when a
/// new pair starts past it, like a ring), and nothing is written while the disk has less than
/// `minFreeBytes` left (records are counted as lost), so a long run of large bodies cannot fill the disk.
final class CaptureStore: Sendable {
    let directory: String
    let session: String
    private let rotateBytes: Int
    let maxBytes: Int
    static let minFreeBytes = 1 << 30
    private let stats: ProxyStats
    private let queue = Mutex<Pending>(Pending())
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    private struct Pending: ~Copyable {
        var records: [ExchangeRecord] = []
        var bytes = 0
        var closing = false
        /// Batches the writer is done with, freed by the next loop that submits (see `submit`).
        var written: [[ExchangeRecord]] = []
    }

    /// Records waiting beyond this many bytes of bodies are dropped (and counted): the writer has fallen
    /// far behind, and memory must not grow without bound. With `lossless` the loop waits for room instead.
    private let maxPendingBytes: Int
    private let lossless: Bool

    /// The fault rules' seed, written in each file's header so that a chaos run can be repeated exactly.
    let rulesSeed: UInt64?

    init(directory: String, rotateBytes: Int, maxBytes: Int, queueBytes: Int, lossless: Bool, stats: ProxyStats, startedAt: Double,
         rulesSeed: UInt64?) {
        self.directory = directory
        maxPendingBytes = queueBytes
        self.lossless = lossless
        self.rulesSeed = rulesSeed
        self.rotateBytes = rotateBytes
        self.maxBytes = maxBytes
        self.stats = stats
        session = Self.sessionName(startedAt)
        let thread = Thread { [self] in WriterState(store: self).run() }
        thread.name = "tracetap-capture"
        thread.start()
    }

    /// Session folders sort by name in time order: `2026-11-22T22-45-53.354Z`.
    static func sessionName(_ seconds: Double) -> String {
        CaptureFormat.timestamp(seconds).replacingOccurrences(of: ":", with: "-")
    }

    var sessionPath: String { directory + "/" + session }

    /// Called on a loop thread with a finished exchange.
    func submit(_ record: ExchangeRecord) {
        let size = record.requestBody.bytes.count + record.responseBody.bytes.count + 2048
        // Only the first record into an empty queue wakes the writer: one wake-up per batch, not per record.
        // Written records come back and are freed here, on a loop thread: their memory was allocated by the
        // loops, and freeing it on the writer thread made the two threads contend for malloc's arena
        // (measured: capture cost a third more CPU per request that way).
        let (accepted, wasEmpty, finished) = enqueue(record, size: size)
        if accepted {
            if wasEmpty { wake.signal() }
        } else if lossless {
            // The writer is behind: this loop waits for it (the disk's speed becomes the proxy's) rather
            // than lose the record; polling, since this only happens while the disk is the bottleneck.
            var queued = false
            for _ in 0..<60_000 where !queued && !queue.withLock({ $0.closing }) {
                wake.signal()
                usleep(500)
                queued = enqueue(record, size: size).accepted
            }
            if !queued { stats.captureFailed.add(1) }
        } else {
            stats.captureFailed.add(1)
        }
        _ = consume finished
    }

    private func enqueue(_ record: ExchangeRecord, size: Int) -> (accepted: Bool, wasEmpty: Bool, finished: [[ExchangeRecord]]) {
        queue.withLock { pending -> (Bool, Bool, [[ExchangeRecord]]) in
            let finished = pending.written
            pending.written = []
            // A record larger than the whole queue still goes alone into an empty one.
            guard pending.bytes + size <= maxPendingBytes || pending.records.isEmpty && !pending.closing else { return (false, false, finished) }
            pending.records.append(record)
            pending.bytes += size
            return (true, pending.records.count == 1, finished)
        }
    }

    /// Writes what is queued, then stops the writer.
    func finish() {
        queue.withLock { $0.closing = true }
        wake.signal()
        done.wait()
    }

    fileprivate func take() -> (records: [ExchangeRecord], closing: Bool) {
        queue.withLock { pending in
            let records = pending.records
            pending.records = []
            pending.bytes = 0
            return (records, pending.closing)
        }
    }

    fileprivate func giveBack(_ records: [ExchangeRecord]) {
        queue.withLock { $0.written.append(records) }
    }

    fileprivate func waitForWork() { _ = wake.wait(timeout: .now() + 1) }
    fileprivate func writerFinished() { done.signal() }
    fileprivate var statsForWriter: ProxyStats { stats }
    fileprivate var rotateLimit: Int { rotateBytes }
}

/// The writer thread's own state: the open pair of files, their sizes and number, what is buffered for
/// the next write, the failure being reported.
private final class WriterState {
    private let store: CaptureStore
    private var lines: Int32 = -1
    private var bodies: Int32 = -1
    private var fileNumber = 0
    private var linesSize = 0
    private var bodiesSize = 0
    private var sequence = 0
    private var failing: String?
    private var lostWhileFailing = 0
    /// The session's finished file pairs, oldest first, with their sizes: the ring `maxBytes` bounds.
    private var finishedFiles: [(number: Int, bytes: Int)] = []
    private var warnedAboutBudget = false
    /// Lines and small bodies of the records in hand, written together: one `write` per file per batch
    /// instead of one per record.
    private var pendingLines = LineBuffer(capacity: WriterState.batchBytes + 16 * 1024)
    private var pendingBodies: [UInt8] = []
    private var pendingRecords = 0

    /// Bodies up to this size are gathered into the batch; larger ones are written straight from the record.
    private static let gatherLimit = 64 * 1024
    private static let batchBytes = 256 * 1024

    init(store: CaptureStore) { self.store = store }

    func run() {
        pendingBodies.reserveCapacity(Self.batchBytes + Self.gatherLimit)
        // The session exists (with its header and seed) from the start, not from the first exchange.
        openNextFiles()
        while true {
            let (records, closing) = store.take()
            for record in records { add(record) }
            flush()
            if !records.isEmpty && !closing { store.giveBack(records) }
            if closing { break }
            // Idle: sleep until a record arrives. Busy: let a few milliseconds of records gather.
            if records.isEmpty { store.waitForWork() } else { usleep(2_000) }
        }
        closeFiles()
        store.writerFinished()
    }

    private func add(_ record: ExchangeRecord) {
        sequence += 1
        if lines >= 0 && (linesSize + pendingLines.count > store.rotateLimit || bodiesSize + pendingBodies.count > store.rotateLimit) {
            flush()
            closeFiles()
        }
        if lines < 0 { openNextFiles() }
        guard lines >= 0 else { return lost(1) }
        let requestOffset = bodiesSize + pendingBodies.count
        guard place(record.requestBody.bytes), place(record.responseBody.bytes) else { return lost(1) }
        let placement = CaptureFormat.BodyPlacement(requestOffset: requestOffset, responseOffset: requestOffset + record.requestBody.bytes.count)
        CaptureFormat.line(record, sequence: sequence, bodies: placement, into: &pendingLines)
        pendingRecords += 1
        if pendingLines.count >= Self.batchBytes || pendingBodies.count >= Self.batchBytes { flush() }
    }

    /// Queues a small body, or writes a large one at once (after what is queued, to keep offsets right).
    private func place(_ body: [UInt8]) -> Bool {
        if body.count <= Self.gatherLimit {
            pendingBodies.append(contentsOf: body)
            return true
        }
        guard writeBodies() else { return false }
        return body.withUnsafeBytes { append($0, to: bodies, size: &bodiesSize) }
    }

    private func writeBodies() -> Bool {
        defer { pendingBodies.removeAll(keepingCapacity: true) }
        return pendingBodies.isEmpty || pendingBodies.withUnsafeBytes { append($0, to: bodies, size: &bodiesSize) }
    }

    /// Bodies first, then the lines that point at them: a line on disk always has its bodies.
    private func flush() {
        guard pendingRecords > 0 else { return pendingBodies.removeAll(keepingCapacity: true) }
        let count = pendingRecords
        pendingRecords = 0
        defer { pendingLines.removeAll() }
        guard lines >= 0, writeBodies(), append(pendingLines.bytes, to: lines, size: &linesSize) else { return lost(count) }
        store.statsForWriter.captureWritten.add(count)
        if failing != nil {
            writeStderr("tracetap: capture: writing to \(store.sessionPath) again after losing \(lostWhileFailing) records\n")
            failing = nil
            lostWhileFailing = 0
        }
    }

    private func lost(_ count: Int) {
        lostWhileFailing += count
        store.statsForWriter.captureFailed.add(count)
    }

    /// Writes all of `bytes`; on failure (disk full) cuts the file back to its last whole write, so no
    /// partial record stays behind, drops what is pending and closes the pair so the next record tries afresh.
    private func append(_ bytes: UnsafeRawBufferPointer, to fd: Int32, size: inout Int) -> Bool {
        var written = 0
        while written < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + written, bytes.count - written)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                report(String(cString: strerror(n < 0 ? errno : ENOSPC)))
                _ = ftruncate(fd, off_t(size))
                closeFiles()
                return false
            }
            written += n
        }
        size += written
        return true
    }

    private func openNextFiles() {
        let folder = store.sessionPath
        for path in [store.directory, folder] where mkdir(path, 0o700) != 0 && errno != EEXIST {
            return report("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        var disk = statvfs()
        if statvfs(folder, &disk) == 0, Int(disk.f_bavail) * Int(disk.f_frsize) < CaptureStore.minFreeBytes {
            return report("less than \(CaptureStore.minFreeBytes >> 30) GiB left on the disk of \(folder)")
        }
        keepWithinBudget()
        let number = fileNumber + 1
        let linesPath = folder + "/" + CaptureFormat.exchangesName(number)
        let bodiesPath = folder + "/" + CaptureFormat.bodiesName(number)
        lines = open(linesPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        bodies = open(bodiesPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard lines >= 0, bodies >= 0 else {
            report("cannot open \(linesPath): \(String(cString: strerror(errno)))")
            return closeFiles()
        }
        fileNumber = number
        linesSize = Int(lseek(lines, 0, SEEK_END))
        bodiesSize = Int(lseek(bodies, 0, SEEK_END))
        if linesSize == 0 {
            var header = LineBuffer(capacity: 256)
            CaptureFormat.fileHeader(session: store.session, file: number, rulesSeed: store.rulesSeed, into: &header)
            _ = append(header.bytes, to: lines, size: &linesSize)
        }
    }

    /// Removes the oldest file pairs until what stays, with the next pair to come, fits in `maxBytes`.
    private func keepWithinBudget() {
        while let oldest = finishedFiles.first, finishedFiles.reduce(0, { $0 + $1.bytes }) + store.rotateLimit > store.maxBytes {
            unlink(store.sessionPath + "/" + CaptureFormat.exchangesName(oldest.number))
            unlink(store.sessionPath + "/" + CaptureFormat.bodiesName(oldest.number))
            finishedFiles.removeFirst()
            store.statsForWriter.captureFilesRemoved.add(1)
            if !warnedAboutBudget {
                warnedAboutBudget = true
                writeStderr("tracetap: capture: \(store.sessionPath) reached \(store.maxBytes >> 20) MiB; its oldest files are removed as new ones are written (--capture-max-bytes)\n")
            }
        }
    }

    private func closeFiles() {
        if lines >= 0 { finishedFiles.append((fileNumber, linesSize + bodiesSize)) }
        if lines >= 0 { close(lines) }
        if bodies >= 0 { close(bodies) }
        lines = -1
        bodies = -1
        // Lines still pending point into the closed bodies file: they cannot be written elsewhere.
        if pendingRecords > 0 { lost(pendingRecords) }
        pendingRecords = 0
        pendingLines.removeAll()
        pendingBodies.removeAll(keepingCapacity: true)
    }

    private func report(_ reason: String) {
        guard failing == nil else { return }
        failing = reason
        writeStderr("tracetap: capture: \(reason); forwarding continues, records are counted as lost until writing works again\n")
    }
}
