import Foundation
import Glibc
import Synchronization

/// Writes finished exchanges to `DIR/<session>/exchanges-NNNN.jsonl`, off the event loops: loops hand
/// records over under a lock (one append each) and a writer thread serialises and writes them.
///
/// Append-only and crash-safe: each record is one `write` of one whole line to a file opened O_APPEND,
/// so a `kill -9` leaves every written line intact; a torn last line (only possible on power loss) is
/// skipped by readers. Files are 0600 in a 0700 folder. If the folder cannot be written (missing
/// permission, full disk) forwarding goes on: records are counted as lost, stderr says so once, and
/// writing resumes as soon as it works again.
final class CaptureStore: Sendable {
    let directory: String
    let session: String
    private let rotateBytes: Int
    private let stats: ProxyStats
    private let queue = Mutex<Pending>(Pending())
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    private struct Pending: ~Copyable {
        var records: [ExchangeRecord] = []
        var bytes = 0
        var closing = false
    }

    /// Records waiting beyond this many bytes of bodies are dropped (and counted): the writer has fallen
    /// far behind, and memory must not grow without bound.
    private static let maxPendingBytes = 256 << 20

    init(directory: String, rotateBytes: Int, stats: ProxyStats, startedAt: Double) {
        self.directory = directory
        self.rotateBytes = rotateBytes
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
        let accepted = queue.withLock { pending -> Bool in
            guard pending.bytes + size <= Self.maxPendingBytes else { return false }
            pending.records.append(record)
            pending.bytes += size
            return true
        }
        if accepted { wake.signal() } else { stats.captureFailed.add(1) }
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

    fileprivate func waitForWork() { _ = wake.wait(timeout: .now() + 1) }
    fileprivate func writerFinished() { done.signal() }
    fileprivate var statsForWriter: ProxyStats { stats }
    fileprivate var rotateLimit: Int { rotateBytes }
}

/// The writer thread's own state: the open file, its size and number, the failure being reported.
private final class WriterState {
    private let store: CaptureStore
    private var fd: Int32 = -1
    private var fileNumber = 0
    private var fileSize = 0
    private var sequence = 0
    private var failing: String?
    private var lostWhileFailing = 0

    init(store: CaptureStore) { self.store = store }

    func run() {
        while true {
            let (records, closing) = store.take()
            for record in records { write(record) }
            if closing { break }
            if records.isEmpty { store.waitForWork() }
        }
        if fd >= 0 { close(fd) }
        store.writerFinished()
    }

    private func write(_ record: ExchangeRecord) {
        sequence += 1
        var line = CaptureFormat.line(record, sequence: sequence)
        if fd >= 0 && fileSize + line.count > store.rotateLimit && fileSize > 0 { closeFile() }
        if fd < 0 { openNextFile() }
        guard fd >= 0, append(&line) else {
            lostWhileFailing += 1
            store.statsForWriter.captureFailed.add(1)
            return
        }
        store.statsForWriter.captureWritten.add(1)
        if failing != nil {
            writeStderr("tracetap: capture: writing to \(store.sessionPath) again after losing \(lostWhileFailing) records\n")
            failing = nil
            lostWhileFailing = 0
        }
    }

    /// One write for the whole line; a short write (disk full) is finished or the line is cut off the file
    /// again, so no partial record stays behind.
    private func append(_ line: inout [UInt8]) -> Bool {
        var written = 0
        while written < line.count {
            let n = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                report(String(cString: strerror(n < 0 ? errno : ENOSPC)))
                if written > 0 { _ = ftruncate(fd, off_t(fileSize)) }
                closeFile()
                return false
            }
            written += n
        }
        fileSize += written
        return true
    }

    private func openNextFile() {
        let folder = store.sessionPath
        for path in [store.directory, folder] where mkdir(path, 0o700) != 0 && errno != EEXIST {
            return report("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        fileNumber += 1
        let path = folder + "/" + String(format: "exchanges-%04d.jsonl", fileNumber)
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            fileNumber -= 1
            return report("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        fileSize = 0
        var header = CaptureFormat.fileHeader(session: store.session, file: fileNumber)
        if !append(&header) { fileNumber -= 1 }
    }

    private func closeFile() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    private func report(_ reason: String) {
        guard failing == nil else { return }
        failing = reason
        writeStderr("tracetap: capture: \(reason); forwarding continues, records are counted as lost until writing works again\n")
    }
}
