/// Write the response in pieces of `size` bytes, `delay_ms` apart: clients that assume one read holds
/// a whole message break.
struct Slice: Fault {
    static let type = "slice"
    static let keys = ["size", "delay_ms"]
    let size: Int
    let delayMs: Int

    init(_ fields: RuleFields) throws(RuleError) {
        size = try fields.required("size", range: 1...(1 << 30), for: "slice")
        delayMs = try fields.int("delay_ms", range: 0...60_000) ?? 10
    }

    init?(headerValue: String) {
        guard let size = Int(headerValue), size > 0 else { return nil }
        self.size = size
        delayMs = 10
    }

    func shape(_ plan: inout FaultPlan, draw: (Int) -> Int) {
        plan.slice = (size, delayMs)
    }

    var description: String { "slice into \(size)-byte pieces \(delayMs)ms apart" }
}
