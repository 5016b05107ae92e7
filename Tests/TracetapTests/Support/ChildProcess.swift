import Foundation
import Glibc
import Synchronization

/// A child process started with `posix_spawn`, its stdout and stderr collected.
///
/// Not Foundation's `Process`: it spawns from a thread whose signals are blocked, so its children
/// inherit a blocked SIGTERM and cannot be stopped; here the child starts with an empty signal mask
/// and default dispositions. Only ever stopped by its own PID.
final class ChildProcess: Sendable {
    let pid: pid_t
    private let out = ByteSink()
    private let err = ByteSink()
    private let exitStatus = Mutex<Int32?>(nil)
    private let drainedPipes = Atomic<Int>(0)

    init(_ arguments: [String], stdin: Bool = false) throws {
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else { throw TestFailure("pipe failed") }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        for fd in outPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawnp(&child, arguments[0], &actions, &attributes, argv, environ)
        close(outPipe[1])
        close(errPipe[1])
        guard result == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw TestFailure("could not start \(arguments[0]): \(String(cString: strerror(result)))")
        }
        pid = child
        drain(outPipe[0], into: out)
        drain(errPipe[0], into: err)
    }

    private func drain(_ fd: Int32, into sink: ByteSink) {
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                sink.append(Data(buffer[0..<n]))
            }
            close(fd)
            drainedPipes.add(1, ordering: .releasing)
        }.start()
    }

    var stdout: String { String(decoding: out.bytes, as: UTF8.self) }
    var stderr: String { String(decoding: err.bytes, as: UTF8.self) }

    func signal(_ signal: Int32) { if exitStatus.withLock({ $0 }) == nil { kill(pid, signal) } }

    /// Waits (bounded) until `text` appears on stdout or stderr, or the child exits; looks every `pollMicros`.
    func waitForOutput(_ text: String, seconds: Double = 10, pollMicros: useconds_t = 10_000) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if stdout.contains(text) || stderr.contains(text) { return true }
            if poll() != nil { waitForExit(seconds: 1); return stdout.contains(text) || stderr.contains(text) }
            usleep(pollMicros)
        }
        return false
    }

    /// The exit code (or 128+signal), nil while running.
    func poll() -> Int32? {
        exitStatus.withLock { status in
            if status != nil { return status }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
            let signalled = raw & 0x7f
            status = signalled == 0 ? (raw >> 8) & 0xff : 128 + signalled
            return status
        }
    }

    /// Waits at most `seconds` for the child to exit; if it has not, kills it and returns nil.
    @discardableResult
    func waitForExit(seconds: Double = 15) -> Int32? {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if let status = poll() {
                // Output written just before exit is still in the pipes; let the readers finish.
                for _ in 0..<200 where drainedPipes.load(ordering: .acquiring) < 2 { usleep(5_000) }
                return status
            }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        for _ in 0..<200 where poll() == nil { usleep(10_000) }
        return nil
    }

    /// Stops the child: SIGTERM, then SIGKILL if it has not exited after `seconds`.
    func stop(seconds: Double = 5) {
        signal(SIGTERM)
        waitForExit(seconds: seconds)
    }

    /// Runs to completion (bounded) and returns (exit status, stdout, stderr); status nil on timeout.
    static func run(_ arguments: [String], seconds: Double = 20) throws -> (Int32?, String, String) {
        let child = try ChildProcess(arguments)
        let status = child.waitForExit(seconds: seconds)
        return (status, child.stdout, child.stderr)
    }
}
