import Foundation
import Glibc

/// A throwaway PostgreSQL server: `initdb` into a fresh temporary folder, `postgres` on a free loopback port,
/// trust authentication, fsync off; stopped (and its folder removed) by `stop()`. Run as the `postgres`
/// user when the tests run as root (initdb refuses root). Debian keeps the binaries out of PATH, in
/// /usr/lib/postgresql/VERSION/bin.
final class TestPostgres: Sendable {
    let port: Int
    let directory: String
    private let server: ChildProcess

    static let binaries: String? = {
        if let versions = try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql") {
            for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) where FileManager.default.fileExists(atPath: "/usr/lib/postgresql/\(version)/bin/initdb") {
                return "/usr/lib/postgresql/\(version)/bin"
            }
        }
        return FileManager.default.fileExists(atPath: "/usr/bin/initdb") ? "/usr/bin" : nil
    }()

    /// As root: drop to the postgres user for the server's programs.
    private static func command(_ program: String, _ arguments: [String]) -> [String] {
        getuid() == 0 ? ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", program] + arguments : [program] + arguments
    }

    init() throws {
        guard let bin = Self.binaries else { throw TestFailure("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)") }
        directory = NSTemporaryDirectory() + "tracetap-pg-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0, let user = getpwnam("postgres") { chown(directory, user.pointee.pw_uid, user.pointee.pw_gid) }
        let (initStatus, _, initErrors) = try ChildProcess.run(Self.command(bin + "/initdb", ["-D", directory + "/data", "-U", "tracetap", "--auth=trust", "-E", "UTF8", "--no-sync"]),
                                                               seconds: 120)
        guard initStatus == 0 else { throw TestFailure("initdb failed: \(initErrors)") }
        // A free port can be taken by a parallel test between finding it and postgres binding it: try another.
        for attempt in 1...3 {
            let port = unusedPort()
            let server = try ChildProcess(Self.command(bin + "/postgres", ["-D", directory + "/data", "-p", String(port), "-k", directory,
                                                                           "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=50"]))
            if server.waitForOutput("ready to accept connections", seconds: 60) {
                self.port = port
                self.server = server
                return
            }
            server.stop()
            guard attempt < 3, server.stderr.contains("could not bind") || server.stderr.contains("Address already in use") else {
                throw TestFailure("postgres did not start: \(server.stderr.suffix(1500))")
            }
        }
        throw TestFailure("postgres did not start")
    }

    func stop() {
        // SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for every client to leave).
        server.signal(SIGINT)
        if server.waitForExit(seconds: 15) == nil { server.signal(SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
