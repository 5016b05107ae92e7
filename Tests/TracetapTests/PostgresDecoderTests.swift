import Foundation
import Testing
@testable import TracetapCore

/// The database leg's decoder and statement tracker over a real conversation (psycopg and PostgreSQL 15,
/// recorded by Tests/Fixtures/pg/record-stream.py): simple queries with several statements, a transaction,
/// a pipeline of extended-protocol statements with a failure in the middle, an error in a simple query.
@Suite struct PostgresDecoderTests {
    /// The recorded chunks, in the order they arrived: (frontend?, bytes).
    static func conversation() throws -> [(frontend: Bool, bytes: [UInt8])] {
        let data = [UInt8](try Data(contentsOf: Repo.root.appendingPathComponent("Tests/Fixtures/pg/conversation.bin")))
        var chunks: [(Bool, [UInt8])] = []
        var at = 0
        while at + 5 <= data.count {
            let length = data[at + 1..<at + 5].reduce(0) { $0 << 8 | Int($1) }
            chunks.append((data[at] == UInt8(ascii: "F"), Array(data[at + 5..<at + 5 + length])))
            at += 5 + length
        }
        return chunks
    }

    /// Feeds the conversation, `split` bytes at a time (to show message boundaries never matter), each
    /// chunk 1 ms after the previous; returns the completed statements.
    static func statements(split: Int) throws -> [StatementTracker.Statement] {
        var frontend = PostgresFramer(side: .frontend)
        var backend = PostgresFramer(side: .backend)
        var tracker = StatementTracker()
        var completed: [StatementTracker.Statement] = []
        for (index, chunk) in try conversation().enumerated() {
            let now = UInt64(index + 1) * 1_000_000
            for start in stride(from: 0, to: chunk.bytes.count, by: split) {
                let piece = Array(chunk.bytes[start..<min(start + split, chunk.bytes.count)])
                try piece.withUnsafeBytes { (bytes) throws in
                    if chunk.frontend {
                        try frontend.feed(bytes) { tracker.frontend($0, at: now) }
                    } else {
                        try backend.feed(bytes) { completed += tracker.backend($0, at: now) }
                    }
                }
            }
        }
        return completed
    }

    @Test(arguments: [1, 7, 65536])
    func everyStatementWithItsRowsErrorsAndTransaction(split: Int) throws {
        let statements = try Self.statements(split: split)
        let summary = statements.map { s in
            "\(s.sql) | \(s.command) \(s.rows.map(String.init) ?? "-") | \(s.sqlstate ?? "ok") | \(s.transaction.map { "t\($0)" } ?? "auto")"
        }
        #expect(summary == [
            "DROP TABLE IF EXISTS items | DROP - | ok | auto",
            "CREATE TABLE items (id int PRIMARY KEY, n int) | CREATE - | ok | auto",
            "INSERT INTO items VALUES (1, 10), (2, 20), (3, 30) | INSERT 3 | ok | auto",
            "BEGIN | BEGIN - | ok | t1",
            "UPDATE items SET n = n + 1 WHERE id = $1 | UPDATE 1 | ok | t1",
            "COMMIT | COMMIT - | ok | t1",
            // The pipeline: three selects, the failing one; the statement after it never ran.
            "SELECT n FROM items WHERE id = $1 | SELECT 1 | ok | auto",
            "SELECT n FROM items WHERE id = $1 | SELECT 1 | ok | auto",
            "SELECT n FROM items WHERE id = $1 | SELECT 1 | ok | auto",
            "SELECT 1/0 |  - | 22012 | auto",
            // A simple query stops at its failing statement.
            "SELECT 1 | SELECT 1 | ok | auto",
            "SELECT no_such_column FROM items |  - | 42703 | auto",
        ], "\(summary)")
        #expect(statements[9].error == "division by zero")
        // Times: each statement from when it was sent (or its predecessor finished) to its completion.
        #expect(statements.allSatisfy { $0.endNanos >= $0.startNanos })
    }

    @Test func framingErrorsAreCaught() {
        var framer = PostgresFramer(side: .backend)
        #expect(throws: PostgresFramer.Malformed.self) {
            try [UInt8(ascii: "Z"), 0, 0, 0, 2].withUnsafeBytes { (bytes) throws in try framer.feed(bytes) { _ in } }
        }
        var startup = PostgresFramer(side: .frontend)
        #expect(throws: PostgresFramer.Malformed.self) {
            try [0, 1, 0, 0].withUnsafeBytes { (bytes) throws in try startup.feed(bytes) { _ in } }  // a 65,536-byte startup packet
        }
    }

    @Test func sqlText() {
        let (pairs, sql) = SQLText.comment("SELECT * FROM t WHERE a = 'x' /*controller='index',traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01',tracestate='congo%3Dt61rcWkgMzE%2Crojo%3D00f067aa0ba902b7'*/;")
        #expect(pairs["traceparent"] == "00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01")
        #expect(pairs["tracestate"] == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
        #expect(sql == "SELECT * FROM t WHERE a = 'x';")
        #expect(SQLText.comment("/*traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01'*/ SELECT 1").sql == "SELECT 1")
        #expect(SQLText.comment("SELECT 1 /* just a note */").pairs.isEmpty)
        // Found by the fuzzer: delimiters that overlap are no comment (and no crash).
        #expect(SQLText.comment("SELECT 1 /*/").pairs.isEmpty && SQLText.comment("/*/ SELECT 1").pairs.isEmpty)
        #expect(SQLText.masked("SELECT * FROM t2 WHERE a = 'it''s' AND b = 42 AND c = $1 AND d = E'x\\'y' AND e = $$z$$ AND \"col1\" = 3.5")
                == "SELECT * FROM t2 WHERE a = ? AND b = ? AND c = $1 AND d = ? AND e = ? AND \"col1\" = ?")
        #expect(SQLText.statements("SELECT 'a;b'; SELECT 2 -- c;\n; $$x;y$$") == ["SELECT 'a;b'", "SELECT 2 -- c;", "$$x;y$$"])
    }
}
