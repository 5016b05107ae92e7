import Synchronization

/// The last exchanges of this run, for the web UI's live list: each loop adds a summary as an exchange
/// ends (one short lock), and readers (the event streams, `/api/exchanges`) take what came after the
/// sequence number they have seen. A ring: the oldest go when it is full, and a reader that fell behind
/// is told it missed some.
final class LiveFeed: Sendable {
    struct Entry: Sendable {
        var seq: UInt64
        var summary: ExchangeSummary
        var json: String { summary.json(seq: Int(seq)) }
    }

    let capacity: Int
    private let ring: Mutex<Ring>

    private struct Ring: ~Copyable {
        var entries: [Entry] = []
        /// Where the next entry goes once the ring is full.
        var next = 0
        var lastSeq: UInt64 = 0
    }

    init(capacity: Int) {
        self.capacity = capacity
        var ring = Ring()
        ring.entries.reserveCapacity(capacity)
        self.ring = Mutex(ring)
    }

    func add(_ record: ExchangeRecord) {
        let summary = ExchangeSummary(record)
        ring.withLock { ring in
            ring.lastSeq += 1
            let entry = Entry(seq: ring.lastSeq, summary: summary)
            if ring.entries.count < capacity {
                ring.entries.append(entry)
            } else {
                ring.entries[ring.next] = entry
                ring.next = (ring.next + 1) % capacity
            }
        }
    }

    /// Up to `limit` entries after `seq`, oldest first; `missed` when some after `seq` are already gone.
    func entries(after seq: UInt64, limit: Int) -> (entries: [Entry], missed: Bool) {
        ring.withLock { ring in
            guard ring.lastSeq > seq, limit > 0 else { return ([], false) }
            let oldest = ring.lastSeq - UInt64(ring.entries.count) + 1
            let first = max(seq + 1, oldest)
            let count = Int(min(UInt64(limit), ring.lastSeq - first + 1))
            // The entry with number `oldest` sits at `next` (0 until the ring has wrapped).
            let start = (ring.next + Int(first - oldest)) % ring.entries.count
            let result = (0..<count).map { ring.entries[(start + $0) % ring.entries.count] }
            return (result, first > seq + 1)
        }
    }
}
