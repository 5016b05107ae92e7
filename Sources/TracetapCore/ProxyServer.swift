import Dispatch
import Foundation
import Glibc
import Synchronization
import CTracetapSys
import TraceContext

public struct StartupError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// The proxy: binds its sockets when created (so a busy port fails here, with a clear message), then runs
/// one event loop per thread until asked to stop.
public final class ProxyServer: Sendable {
    let shared: ProxyShared
    public let port: Int
    public let adminPort: Int?
    /// The database legs, in the order configured.
    public var databaseLegs: [DatabaseLeg] { shared.databaseLegs }
    private let stopped = DispatchGroup()
    private let released = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)

    public init(config original: ProxyConfig) throws(StartupError) {
        var config = original
        // Off loopback, captures must not be readable by whoever can reach the port: a token it is, made
        // here when none was given (the start-up line prints it).
        if let admin = config.admin, !admin.isLoopback, config.adminToken == nil {
            var random = SystemRandomNumberGenerator()
            config.adminToken = SpanID(random.next()).description + SpanID(random.next()).description
        }
        if config.upstream.isTLS { TLSBridge.globalInit() }
        signal(SIGPIPE, SIG_IGN)
        let listenFD: Int32
        var adminFD: Int32?
        do throws(SocketError) {
            listenFD = try Sockets.listen(on: SocketAddress.resolve(config.listen))
            if let admin = config.admin {
                do throws(SocketError) { adminFD = try Sockets.listen(on: SocketAddress.resolve(admin)) } catch {
                    close(listenFD)
                    throw error
                }
            }
        } catch {
            throw StartupError(message: error.message)
        }
        let upstream: Result<SocketAddress, SocketError>
        do throws(SocketError) { upstream = .success(try SocketAddress.resolve(config.upstream.hostPort)) } catch { upstream = .failure(error) }
        let threads = max(1, config.threads)
        let wakeFDs = (0..<threads).map { _ in eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC)) }
        var legs: [DatabaseLeg] = []
        for leg in config.databaseLegs {
            do throws(StartupError) { legs.append(try DatabaseLeg(listen: leg.listen, upstream: leg.upstream)) } catch {
                for leg in legs { leg.close() }
                close(listenFD)
                if let adminFD { close(adminFD) }
                throw error
            }
        }
        var exporter: OTLPExporter?
        if let url = config.otlpExport {
            do throws(StartupError) { exporter = try OTLPExporter(url: url) } catch {
                for leg in legs { leg.close() }
                close(listenFD)
                if let adminFD { close(adminFD) }
                throw error
            }
        }
        port = Sockets.localAddress(listenFD).port
        shared = ProxyShared(config: config, upstreamAddress: upstream, listenFD: listenFD, adminFD: adminFD, wakeFDs: wakeFDs, databaseLegs: legs,
                             exporter: exporter, replayTarget: UpstreamURL("http://\(HostPort(host: config.listen.host, port: port).connectable)")!)
        adminPort = adminFD.map { Sockets.localAddress($0).port }
    }

    public var stats: ProxyStats { shared.stats }
    /// The folder this run records into, when capture is on.
    public var captureSessionPath: String? { shared.capture?.sessionPath }
    public var config: ProxyConfig { shared.config }
    /// The admin port's token: given by flag, or made at start when the port is not on loopback.
    public var adminToken: String? { shared.config.adminToken }

    /// Starts the loop threads and returns; later calls do nothing (a second set of loops would share the
    /// wake-up descriptors, and one of them would miss the shutdown).
    public func start() {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shared.exporter?.start()
        for index in 0..<shared.wakeFDs.count {
            stopped.enter()
            let thread = Thread { [shared, stopped] in
                let loop = ProxyLoop(index: index, shared: shared)
                loop.run()
                stopped.leave()
            }
            thread.name = "tracetap-loop-\(index)"
            thread.start()
        }
    }

    /// Graceful stop: loops stop accepting, finish in-flight exchanges within the grace period, then exit.
    public func requestShutdown() {
        shared.shutdownRequested.store(true, ordering: .releasing)
        var one: UInt64 = 1
        for fd in shared.wakeFDs { _ = write(fd, &one, 8) }
    }

    /// Waits for the loops to end, then writes the remaining captures and releases the sockets; safe to
    /// call again (later calls only wait).
    public func waitUntilStopped() {
        stopped.wait()
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shared.adminMailbox.close()
        for leg in shared.databaseLegs { leg.close() }
        shared.exporter?.stop()
        shared.capture?.finish()
        shared.spans.finish()
        close(shared.listenFD)
        if let adminFD = shared.adminFD { close(adminFD) }
        for fd in shared.wakeFDs { close(fd) }
    }

    public func stopAndWait() {
        requestShutdown()
        waitUntilStopped()
    }
}
