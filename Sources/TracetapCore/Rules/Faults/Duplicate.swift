/// Send the request `count` times in all, one after another or at once; the client gets the first
/// response, every copy is recorded beside it, and the group is flagged when the responses differ
/// (status, or body outside the JSON fields listed in `ignore`).
struct Duplicate: Fault {
    static let type = "duplicate"
    static let keys = ["count", "mode", "ignore"]
    let count: Int
    let concurrent: Bool
    let ignore: [String]

    init(_ fields: RuleFields) throws(RuleError) {
        count = try fields.int("count", range: 2...100) ?? 2
        concurrent = try fields.choice("mode", ["sequential", "concurrent"]) == "concurrent"
        ignore = try fields.stringList("ignore")
    }

    /// `duplicate=3` or `duplicate=3 concurrent`.
    init?(headerValue: String) {
        let words = headerValue.split(separator: " ")
        guard let count = words.first.flatMap({ Int($0) }), (2...100).contains(count) else { return nil }
        self.count = count
        concurrent = words.dropFirst().first == "concurrent"
        ignore = []
    }

    func shape(_ plan: inout FaultPlan, draw: (Int) -> Int) {
        plan.duplicate = self
    }

    var description: String { "duplicate \(count)x \(concurrent ? "concurrently" : "sequentially")" }
}
