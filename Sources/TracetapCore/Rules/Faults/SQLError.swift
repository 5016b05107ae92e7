/// A database statement that fails without reaching the database, with a chosen SQLSTATE and message, as
/// PostgreSQL reports errors (`40001` serialization failure, `40P01` deadlock, `57014` statement timeout,
/// `53300` too many connections). Only for rules that match on `sql`.
struct SQLError: Fault {
    static let type = "sql_error"
    static let keys = ["sqlstate", "message"]
    let sqlstate: String
    let message: String

    init(_ fields: RuleFields) throws(RuleError) {
        sqlstate = try fields.string("sqlstate") ?? "40001"
        guard sqlstate.utf8.count == 5, sqlstate.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) }) else {
            throw fields.error("sqlstate must be five digits or capital letters, like 40001", at: "sqlstate")
        }
        message = try fields.string("message") ?? "injected by tracetap"
    }

    init?(headerValue: String) { nil }

    func shape(_ plan: inout FaultPlan, draw: (Int) -> Int) {
        plan.sqlError = (sqlstate, message)
    }

    var description: String { "sql_error \(sqlstate) \"\(message)\"" }
}
