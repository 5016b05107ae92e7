/// Something with one deadline at a time (a connection's idle, header or response timeout).
protocol TimerTarget: AnyObject {
    var timer: TimerSlot { get set }
    func deadlineReached()
}

struct TimerSlot {
    var deadline: UInt64 = 0
    var bucket: Int32 = -1
    var position: Int32 = 0
}

/// A hashed timing wheel with 10 ms ticks: O(1) to set, move and cancel a deadline, which every connection
/// does on every request. Deadlines past the wheel's span wait in the last slot and are placed again.
final class TimerWheel {
    static let tickNanos: UInt64 = 10_000_000
    static let slotCount = 8192

    private var buckets = [[TimerTarget]](repeating: [], count: TimerWheel.slotCount)
    private var currentTick: UInt64
    private(set) var count = 0

    init(now: UInt64) { currentTick = now / TimerWheel.tickNanos }

    func schedule(_ target: TimerTarget, at deadline: UInt64) {
        cancel(target)
        var tick = max(deadline / TimerWheel.tickNanos + 1, currentTick + 1)
        tick = min(tick, currentTick + UInt64(TimerWheel.slotCount - 1))
        let bucket = Int(tick % UInt64(TimerWheel.slotCount))
        target.timer = TimerSlot(deadline: deadline, bucket: Int32(bucket), position: Int32(buckets[bucket].count))
        buckets[bucket].append(target)
        count += 1
    }

    func cancel(_ target: TimerTarget) {
        let slot = target.timer
        target.timer.deadline = 0
        guard slot.bucket >= 0 else { return }
        let bucket = Int(slot.bucket)
        let last = buckets[bucket].removeLast()
        if Int(slot.position) < buckets[bucket].count {
            buckets[bucket][Int(slot.position)] = last
            last.timer.position = slot.position
        }
        target.timer.bucket = -1
        count -= 1
    }

    /// Fires every deadline up to `now`.
    func advance(to now: UInt64) {
        let targetTick = now / TimerWheel.tickNanos
        while currentTick < targetTick {
            currentTick += 1
            let bucket = Int(currentTick % UInt64(TimerWheel.slotCount))
            guard !buckets[bucket].isEmpty else { continue }
            let due = buckets[bucket]
            buckets[bucket] = []
            count -= due.count
            for target in due { target.timer.bucket = -1 }
            for target in due where target.timer.bucket < 0 && target.timer.deadline != 0 {
                if target.timer.deadline > now {
                    schedule(target, at: target.timer.deadline)
                } else {
                    target.timer.deadline = 0
                    target.deadlineReached()
                }
            }
        }
    }

    /// Milliseconds epoll may sleep before the next deadline could be due (at most one second).
    func millisecondsToNext(now: UInt64) -> Int32 {
        guard count > 0 else { return 1000 }
        let nowTick = now / TimerWheel.tickNanos
        var tick = currentTick + 1
        while tick <= currentTick + 100 {
            if !buckets[Int(tick % UInt64(TimerWheel.slotCount))].isEmpty {
                let dueAt = tick * TimerWheel.tickNanos
                return dueAt <= now ? 0 : Int32(min(1000, (dueAt - now) / 1_000_000 + 1))
            }
            tick += 1
        }
        return nowTick > currentTick ? 0 : 1000
    }
}
