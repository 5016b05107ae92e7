import Foundation
import Glibc
import Synchronization

/// SIGINT and SIGTERM for the long-running commands: blocked in every thread from the start and taken by one
/// thread with `sigwait`, so a signal sent the moment the proxy says it is ready stays pending until it is
/// taken. (A handler installed after the ready line misses it; SIG_IGN in that gap drops it.)
enum ShutdownSignals {
    private static let action = Mutex<(@Sendable () -> Void)?>(nil)

    /// Call before any thread starts: threads inherit the blocked mask. Until `onSignal` is set, a signal
    /// ends the process as it would have by default (with the status a shell shows for it).
    static func hold() {
        var blocked = signals
        pthread_sigmask(SIG_BLOCK, &blocked, nil)
        Thread {
            var set = signals
            while true {
                var taken: Int32 = 0
                guard sigwait(&set, &taken) == 0 else { continue }
                guard let action = action.withLock({ $0 }) else { exit(128 + taken) }
                action()
            }
        }.start()
    }

    /// What each later SIGINT or SIGTERM does.
    static func onSignal(_ body: @escaping @Sendable () -> Void) {
        action.withLock { $0 = body }
    }

    private static var signals: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        return set
    }
}
