import Foundation
import Testing
@testable import TracetapCore

/// Fault rules on database statements, applied by the database leg: delays, injected errors with a chosen
/// SQLSTATE, and statements held past a timeout; with psycopg (extended protocol) and psql (simple queries).
@Suite struct DatabaseFaultTests {
    static let rules = """
    {"rules": [
      {"name": "slow-read", "match": {"sql": "select left_count*"}, "faults": [{"type": "delay", "ms": 300}]},
      {"name": "conflict", "match": {"sql": "UPDATE stock*"}, "faults": [{"type": "sql_error", "sqlstate": "40001", "message": "could not serialize access"}]},
      {"name": "hang", "match": {"sql": "SELECT count(*)*"}, "faults": [{"type": "timeout", "ms": 250}]}
    ]}
    """

    @Test func statementsAreDelayedFailedAndHeld() throws {
        let postgres = try TestPostgres()
        defer { postgres.stop() }
        let rules = NSTemporaryDirectory() + "tracetap-dbrules-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: rules, withIntermediateDirectories: true)
        try Self.rules.write(toFile: rules + "/db.json", atomically: true, encoding: .utf8)
        let store = temporaryStore()
        let leg = unusedPort()
        let proxy = try TestProxy(upstreamPort: 1) {
            $0.captureDirectory = store
            $0.rules = try? RuleBook(directory: rules, seed: 1)
            $0.databaseLegs = [(HostPort(host: "127.0.0.1", port: leg), HostPort(host: "127.0.0.1", port: postgres.port))]
        }
        defer { proxy.stop() }
        #expect(proxy.server.config.rules?.rules.count == 3)

        let (status, out, errors) = try ChildProcess.run(["python3", Repo.root.appendingPathComponent("Tests/Fixtures/pg/fault-client.py").path, String(leg)], seconds: 60)
        #expect(status == 0, "\(errors)")
        let results = try out.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(results.count == 4, "\(out)")
        guard results.count == 4 else { return }
        // Delayed: the right answer, 300 ms late.
        #expect((results[0]["rows"] as? [[Int]]) == [[5]], "\(results[0])")
        #expect((results[0]["ms"] as? Int ?? 0) >= 290, "\(results[0])")
        // Failed before reaching the database: the error the driver raises, and the stock unchanged.
        #expect(results[1]["sqlstate"] as? String == "40001" && (results[1]["message"] as? String)?.contains("could not serialize access") == true, "\(results[1])")
        // Held past a timeout: the statement-timeout error, after the hold.
        #expect(results[2]["sqlstate"] as? String == "57014" && (results[2]["ms"] as? Int ?? 0) >= 240, "\(results[2])")
        // The connection is still good afterwards, and the failed UPDATE never ran: still 5.
        #expect((results[3]["rows"] as? [[Int]]) == [[5]], "\(results[3])")

        // Simple query protocol (psql): the injected error as psql shows it, with its SQLSTATE.
        let psql = try ChildProcess.run(["psql", "-h", "127.0.0.1", "-p", String(leg), "-U", "tracetap", "-d", "postgres", "-v", "VERBOSITY=verbose",
                                         "-Atc", "UPDATE stock SET left_count = 0"], seconds: 30)
        #expect(psql.0 == 1 && psql.2.contains("ERROR:  40001: could not serialize access"), "\(psql)")
        let after = try ChildProcess.run(["psql", "-h", "127.0.0.1", "-p", String(leg), "-U", "tracetap", "-d", "postgres", "-Atc", "SELECT left_count FROM stock"], seconds: 30)
        #expect(after.1.trimmingCharacters(in: .whitespacesAndNewlines) == "5", "\(after)")

        // The statements are recorded with the faults applied to them.
        let session = try #require(proxy.server.captureSessionPath)
        #expect(waitUntil { SpanFile.read(sessionPath: session).filter { $0.attribute("tracetap.faults") != nil }.count >= 3 })
        let faulted = SpanFile.read(sessionPath: session).filter { $0.attribute("tracetap.faults") != nil }
        #expect(faulted.contains { $0.attribute("tracetap.faults") == .string("slow-read:delay") && $0.durationNanos >= 290_000_000 }, "\(faulted.map(\.name))")
        #expect(faulted.contains { $0.attribute("tracetap.faults") == .string("conflict:sql_error") && $0.attribute("db.sqlstate") == .string("40001") })
        #expect(faulted.contains { $0.attribute("tracetap.faults") == .string("hang:timeout") && $0.attribute("db.sqlstate") == .string("57014") })
    }

    @Test func copyAndCancelPassThrough() throws {
        let postgres = try TestPostgres()
        defer { postgres.stop() }
        let leg = unusedPort()
        let proxy = try TestProxy(upstreamPort: 1) {
            $0.databaseLegs = [(HostPort(host: "127.0.0.1", port: leg), HostPort(host: "127.0.0.1", port: postgres.port))]
        }
        defer { proxy.stop() }
        let (status, out, errors) = try ChildProcess.run(["python3", Repo.root.appendingPathComponent("Tests/Fixtures/pg/cancel-and-copy.py").path, String(leg)], seconds: 60)
        #expect(status == 0, "\(errors)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        // 1,000 rows in with COPY FROM STDIN and out again with COPY TO STDOUT, untouched.
        #expect(result["copied"] as? Int == 1000 && (result["last"] as? [String]) == ["999", "word999"], "\(result)")
        // The CancelRequest went through the leg to the server and stopped the 10 s sleep.
        #expect(result["cancel"] as? String == "57014" && (result["cancel_ms"] as? Int ?? 99999) < 5000, "\(result)")
        #expect(result["after"] as? Int == 1000)
    }

    @Test func databaseRulesAreCheckedLikeAnyRule() throws {
        func load(_ json: String) -> String? {
            let directory = NSTemporaryDirectory() + "tracetap-dbrules-\(UUID().uuidString)"
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try? json.write(toFile: directory + "/r.json", atomically: true, encoding: .utf8)
            do { _ = try RuleLoader.load(directory: directory); return nil } catch { return "\(error)" }
        }
        #expect(load(#"{"rules": [{"name": "a", "match": {"sql": "UPDATE*", "path": "/x"}, "faults": [{"type": "delay", "ms": 1}]}]}"#)?.contains("matches on \"sql\" only") == true)
        #expect(load(#"{"rules": [{"name": "a", "match": {"sql": "UPDATE*"}, "faults": [{"type": "abort"}]}]}"#)?.contains("does not apply to database statements") == true)
        #expect(load(#"{"rules": [{"name": "a", "match": {"path": "/x"}, "faults": [{"type": "sql_error"}]}]}"#)?.contains("sql_error needs a rule that matches database statements") == true)
        #expect(load("{\"rules\": [{\"name\": \"a\", \"match\": {\"sql\": \"x\"},\n \"faults\": [{\"type\": \"sql_error\", \"sqlstate\": \"4001\"}]}]}")?.contains(":2: sqlstate must be five") == true)
        #expect(load(#"{"rules": [{"name": "a", "match": {"sql": "UPDATE*"}, "faults": [{"type": "sql_error", "sqlstate": "40P01"}]}]}"#) == nil)
    }
}
