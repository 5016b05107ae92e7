import Glibc
import CTracetapSys

/// Anything registered with the loop: a listener, a client or upstream connection, the wake-up fd.
protocol EventHandler: AnyObject {
    func handle(events: UInt32)
}

enum Epoll {
    static let readable = UInt32(EPOLLIN.rawValue)
    static let writable = UInt32(EPOLLOUT.rawValue)
    static let peerClosed = UInt32(EPOLLRDHUP.rawValue)
    static let hangup = UInt32(EPOLLHUP.rawValue)
    static let error = UInt32(EPOLLERR.rawValue)
    static let exclusive = UInt32(EPOLLEXCLUSIVE.rawValue)
}

/// One epoll loop on one thread. It owns every fd registered with it; nothing here is shared across threads
/// except the wake-up eventfd, which other threads only write to.
final class EventLoop {
    let epollFD: Int32
    let wakeFD: Int32
    private(set) var now: UInt64
    let timers: TimerWheel
    /// One reusable read buffer for every socket of this loop: reads land here, then go where they belong.
    let scratch: UnsafeMutableRawBufferPointer
    private var handlers: [EventHandler?] = []
    private var generations: [UInt32] = []
    private var nextGeneration: UInt32 = 1
    /// Work to run once per wake-up, after all events (flushing the access log in one write).
    var afterEvents: [() -> Void] = []
    var onWake: () -> Void = {}

    init(wakeFD: Int32) {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        self.wakeFD = wakeFD
        now = Sockets.monotonicNanos()
        timers = TimerWheel(now: now)
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        var event = epoll_event()
        event.events = Epoll.readable
        event.data.u64 = UInt64(UInt32.max)
        epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event)
    }

    deinit {
        close(epollFD)
        scratch.deallocate()
    }

    func register(_ fd: Int32, _ handler: EventHandler, events: UInt32) {
        let index = Int(fd)
        if index >= handlers.count {
            let grow = max(index + 1, handlers.count * 2)
            handlers.append(contentsOf: [EventHandler?](repeating: nil, count: grow - handlers.count))
            generations.append(contentsOf: [UInt32](repeating: 0, count: grow - generations.count))
        }
        handlers[index] = handler
        nextGeneration = nextGeneration == UInt32.max - 1 ? 1 : nextGeneration + 1
        generations[index] = nextGeneration
        var event = epoll_event()
        event.events = events
        event.data.u64 = UInt64(fd) | UInt64(nextGeneration) << 32
        epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event)
    }

    func modify(_ fd: Int32, events: UInt32) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = UInt64(fd) | UInt64(generations[Int(fd)]) << 32
        epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event)
    }

    /// Forgets an fd before it is closed; events already fetched for it are dropped by the generation check.
    func unregister(_ fd: Int32) {
        epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
        handlers[Int(fd)] = nil
        generations[Int(fd)] = 0
    }

    func refreshNow() -> UInt64 {
        now = Sockets.monotonicNanos()
        return now
    }

    /// Runs until `shouldStop` says so; checked after every wake-up.
    func run(shouldStop: () -> Bool) {
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while !shouldStop() {
            let timeout = timers.millisecondsToNext(now: refreshNow())
            let n = epoll_wait(epollFD, events, Int32(capacity), timeout)
            _ = refreshNow()
            if n > 0 {
                for i in 0..<Int(n) {
                    let data = events[i].data.u64
                    if data == UInt64(UInt32.max) {
                        drainWakeFD()
                        onWake()
                        continue
                    }
                    let fd = Int(data & 0xFFFF_FFFF)
                    guard fd < handlers.count, generations[fd] == UInt32(data >> 32), let handler = handlers[fd] else { continue }
                    handler.handle(events: events[i].events)
                }
            }
            timers.advance(to: now)
            for work in afterEvents { work() }
        }
    }

    private func drainWakeFD() {
        var value: UInt64 = 0
        _ = read(wakeFD, &value, 8)
    }
}
