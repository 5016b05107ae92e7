/// Follows one PostgreSQL connection's conversation (both directions, in the order each side's bytes were
/// seen) and reports each statement as it completes: its SQL, when the server started and finished it,
/// rows, errors, and the transaction it ran in. Pure: time comes in with every message.
///
/// Replies are matched to requests through a FIFO of what each frontend message expects back, as the
/// protocol prescribes for pipelining; after an error the server skips to the next Sync, and so does the
/// FIFO. A pipelined statement's server time starts when the previous one completed, if that was later
/// than when it was sent.
struct StatementTracker {
    struct Statement: Equatable {
        var sql: String
        var startNanos: UInt64
        var endNanos: UInt64
        /// The command tag's word (`SELECT`, `UPDATE`) and its row count, when it has one.
        var command = ""
        var rows: Int?
        var sqlstate: String?
        var error: String?
        /// Numbered per connection from 1; nil for a statement that ran on its own (autocommit).
        var transaction: Int?
        /// Fault rules applied to it (`rule:delay`).
        var faults: [String] = []
    }

    private enum Expected {
        case query(statements: [String], next: Int, sentAt: UInt64, faults: [String])
        case parse(sql: String, sentAt: UInt64)
        case bind(sql: String, sentAt: UInt64)
        case describe
        case execute(sql: String, sentAt: UInt64, faults: [String])
        case close
        case sync
    }

    private var pending: [Expected] = []
    private var preparedSQL: [String: String] = [:]
    private var portalSQL: [String: String] = [:]
    private var lastCompletion: UInt64 = 0
    /// Faults decided at a Parse or Bind, for the Execute that follows.
    private var groupFaults: [String] = []
    private var rows = 0
    /// Completed since the last ReadyForQuery: their transaction is known only when it arrives.
    private var unsettled: [Statement] = []
    private var status: UInt8 = UInt8(ascii: "I")
    private var transactions = 0

    /// Nothing sent is still waiting for its reply.
    var isIdle: Bool { pending.isEmpty }
    /// The transaction status of the last ReadyForQuery: `I`, `T` or `E`.
    var transactionStatus: UInt8 { status }

    /// The SQL a message will run, for matching fault rules: a query's text, a Parse's statement, or what a
    /// Bind binds (a statement parsed earlier, perhaps long ago).
    func sql(of message: PostgresFramer.Message) -> String? {
        var payload = PostgresPayload(message.prefix)
        switch message.type {
        case UInt8(ascii: "Q"): return payload.string()
        case UInt8(ascii: "P"):
            _ = payload.string()
            return payload.string()
        case UInt8(ascii: "B"):
            _ = payload.string()
            return payload.string().flatMap { preparedSQL[$0] }
        default: return nil
        }
    }

    mutating func frontend(_ message: PostgresFramer.Message, at now: UInt64, faults: [String] = []) {
        var payload = PostgresPayload(message.prefix)
        if !faults.isEmpty { groupFaults = faults }
        switch message.type {
        case UInt8(ascii: "Q"):
            let sql = payload.string() ?? String(decoding: message.prefix, as: UTF8.self)
            pending.append(.query(statements: SQLText.statements(sql), next: 0, sentAt: now, faults: groupFaults))
            groupFaults = []
        case UInt8(ascii: "P"):
            let name = payload.string() ?? ""
            let sql = payload.string() ?? ""
            preparedSQL[name] = sql
            pending.append(.parse(sql: sql, sentAt: now))
        case UInt8(ascii: "B"):
            let portal = payload.string() ?? ""
            let sql = preparedSQL[payload.string() ?? ""] ?? ""
            portalSQL[portal] = sql
            pending.append(.bind(sql: sql, sentAt: now))
        case UInt8(ascii: "D"): pending.append(.describe)
        case UInt8(ascii: "E"):
            pending.append(.execute(sql: portalSQL[payload.string() ?? ""] ?? "", sentAt: now, faults: groupFaults))
            groupFaults = []
        case UInt8(ascii: "C"): pending.append(.close)
        case UInt8(ascii: "S"): pending.append(.sync)
        default: break  // Flush, Terminate, CopyData/Done/Fail, auth: nothing comes back to match
        }
    }

    /// Statements that completed with this message (only a ReadyForQuery settles them).
    mutating func backend(_ message: PostgresFramer.Message, at now: UInt64) -> [Statement] {
        var payload = PostgresPayload(message.prefix)
        switch message.type {
        case UInt8(ascii: "D"): rows += 1
        case UInt8(ascii: "1"), UInt8(ascii: "2"), UInt8(ascii: "3"): popFirst()
        case UInt8(ascii: "T"), UInt8(ascii: "n"):
            if case .describe? = pending.first { popFirst() }
        case UInt8(ascii: "C"), UInt8(ascii: "I"), UInt8(ascii: "s"):
            let tag = message.type == UInt8(ascii: "C") ? payload.string() ?? "" : ""
            let rowsSeen = rows
            complete(at: now) { statement in
                let words = tag.split(separator: " ")
                statement.command = words.first.map(String.init) ?? (message.type == UInt8(ascii: "I") ? "EMPTY" : "SUSPENDED")
                if words.count >= 2, let count = Int(words[words.count - 1]) { statement.rows = count } else if message.type == UInt8(ascii: "s") { statement.rows = rowsSeen }
            }
        case UInt8(ascii: "E"):
            var fields: [UInt8: String] = [:]
            while let code = payload.byte(), code != 0, let value = payload.string() { fields[code] = value }
            complete(at: now) { statement in
                statement.sqlstate = fields[UInt8(ascii: "C")]
                statement.error = fields[UInt8(ascii: "M")]
            }
            if case .query? = pending.first {
                markQueryAborted()  // the rest of a simple query's statements do not run
            } else {
                // Extended protocol: the server skips every message up to the next Sync.
                while let head = pending.first {
                    if case .sync = head { break }
                    pending.removeFirst()
                }
            }
        case UInt8(ascii: "Z"):
            if case .query? = pending.first { pending.removeFirst() } else if case .sync? = pending.first { pending.removeFirst() }
            return settle(status: message.prefix.first ?? UInt8(ascii: "I"))
        default: break  // ParameterStatus, notices, notifications, auth, copy: not replies to match
        }
        return []
    }

    private mutating func popFirst() { if !pending.isEmpty { pending.removeFirst() } }

    /// Completes the statement at the head of the FIFO; false when there is none to complete.
    @discardableResult
    private mutating func complete(at now: UInt64, _ fill: (inout Statement) -> Void) -> Bool {
        guard let head = pending.first else { return false }
        var statement: Statement
        switch head {
        case .query(let statements, let next, let sentAt, let faults):
            guard next < statements.count else { return false }
            statement = Statement(sql: statements[next], startNanos: max(sentAt, lastCompletion), endNanos: now, faults: faults)
            pending[0] = .query(statements: statements, next: next + 1, sentAt: sentAt, faults: faults)
        case .execute(let sql, let sentAt, let faults):
            statement = Statement(sql: sql, startNanos: max(sentAt, lastCompletion), endNanos: now, faults: faults)
            pending.removeFirst()
        case .parse(let sql, let sentAt), .bind(let sql, let sentAt):
            // Only an error makes a statement of a Parse or Bind (planning failed: it never ran).
            statement = Statement(sql: sql, startNanos: max(sentAt, lastCompletion), endNanos: now)
            pending.removeFirst()
        default:
            return false
        }
        fill(&statement)
        switch head {
        case .parse, .bind: if statement.sqlstate == nil { return true }
        default: break
        }
        if statement.rows == nil && statement.command == "SELECT" { statement.rows = rows }
        rows = 0
        lastCompletion = now
        unsettled.append(statement)
        return true
    }

    private mutating func markQueryAborted() {
        guard case .query(let statements, _, let sentAt, let faults)? = pending.first else { return }
        pending[0] = .query(statements: statements, next: statements.count, sentAt: sentAt, faults: faults)
    }

    /// ReadyForQuery: the transaction status tells which transaction the unsettled statements belong to.
    private mutating func settle(status newStatus: UInt8) -> [Statement] {
        let inTransaction = { (s: UInt8) in s == UInt8(ascii: "T") || s == UInt8(ascii: "E") }
        if !inTransaction(status) && inTransaction(newStatus) { transactions += 1 }
        let transaction: Int? = inTransaction(status) || inTransaction(newStatus) ? transactions : nil
        status = newStatus
        defer { unsettled.removeAll() }
        return unsettled.map { statement in
            var statement = statement
            statement.transaction = transaction
            return statement
        }
    }
}
