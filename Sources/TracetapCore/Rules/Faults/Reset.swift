/// Close the client connection with a TCP RST after `after_bytes` bytes of the response (head included;
/// 0: before any). The request is still forwarded: the backend acts, the client never learns the outcome.
struct Reset: Fault {
    static let type = "reset"
    static let keys = ["after_bytes"]
    let afterBytes: Int

    init(_ fields: RuleFields) throws(RuleError) {
        afterBytes = try fields.int("after_bytes", range: 0...(1 << 40)) ?? 0
    }

    init?(headerValue: String) {
        guard let bytes = Int(headerValue), bytes >= 0 else { return nil }
        afterBytes = bytes
    }

    func shape(_ plan: inout FaultPlan, draw: (Int) -> Int) {
        plan.resetAfterBytes = min(plan.resetAfterBytes ?? .max, afterBytes)
    }

    var description: String { "reset after \(afterBytes) response bytes" }
}
