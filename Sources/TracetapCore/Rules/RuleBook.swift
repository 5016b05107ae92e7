import Foundation
import Glibc
import HTTPCodec
import Synchronization
import TraceContext

/// The rules in force, shared by all loops, reloaded when the files change. Loops keep their own copy and
/// refresh it when the generation moves (one atomic load per request). A file that fails to load is
/// reported with file, line and reason, and the last good rules stay in force.
public final class RuleBook: Sendable {
    /// nil for a book without a folder: only the rules added through the admin API (the demo's).
    public let directory: String?
    private let state: Mutex<(rules: [Rule], temporary: [Rule], signature: String)>
    let generation = Atomic<Int>(0)
    /// One generator for every probabilistic decision, so `--seed` replays the same decisions in order.
    private let random: Mutex<FastRandom>
    public let seed: UInt64
    private let stopped = Atomic<Bool>(false)

    /// Loads the folder now; a mistake here is the caller's to report (the proxy refuses to start).
    public init(directory: String, seed: UInt64) throws(RuleError) {
        self.directory = directory
        self.seed = seed
        random = Mutex(FastRandom(seed: seed))
        let signature = RuleLoader.signature(directory: directory)
        state = Mutex((try RuleLoader.load(directory: directory), [], signature))
    }

    /// No folder: the rules are the ones added through the admin API.
    public init(seed: UInt64) {
        directory = nil
        self.seed = seed
        random = Mutex(FastRandom(seed: seed))
        state = Mutex(([], [], ""))
    }

    /// The rules in force: the files' in order, then the temporary ones added through the admin API.
    public var rules: [Rule] { state.withLock { $0.rules + $0.temporary } }

    /// Adds a rule that lives until the proxy stops or it is removed; replaces a temporary rule of the same name.
    public func addTemporary(_ rule: Rule) throws(RuleError) {
        try state.withLock { (state) throws(RuleError) in
            if let clash = state.rules.first(where: { $0.name == rule.name }) {
                throw RuleError(file: rule.file, line: 0, reason: "rule name '\(rule.name)' is already used in \(clash.file)")
            }
            state.temporary.removeAll { $0.name == rule.name }
            state.temporary.append(rule)
        }
        generation.add(1, ordering: .releasing)
    }

    /// Removes a temporary rule; false if there is none of that name.
    public func removeTemporary(named name: String) -> Bool {
        let removed = state.withLock { state -> Bool in
            let before = state.temporary.count
            state.temporary.removeAll { $0.name == name }
            return state.temporary.count < before
        }
        if removed { generation.add(1, ordering: .releasing) }
        return removed
    }

    /// Checks the folder every `interval` seconds on a thread of its own until `stop()`.
    public func watch(interval: Double = 0.5) {
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                usleep(UInt32(interval * 1_000_000))
                reloadIfChanged()
            }
        }
        thread.name = "tracetap-rules"
        thread.start()
    }

    public func stop() { stopped.store(true, ordering: .relaxed) }

    /// Reloads when the files changed; returns the error if the new files are bad (old rules kept).
    @discardableResult
    public func reloadIfChanged() -> RuleError? {
        guard let directory else { return nil }
        let signature = RuleLoader.signature(directory: directory)
        guard signature != state.withLock({ $0.signature }) else { return nil }
        do throws(RuleError) {
            let rules = try RuleLoader.load(directory: directory)
            state.withLock { $0.rules = rules; $0.signature = signature }
            generation.add(1, ordering: .releasing)
            writeStderr("tracetap: rules: loaded \(rules.count) rules from \(directory)\n")
            return nil
        } catch {
            let kept = state.withLock { state -> Int in
                state.signature = signature  // report a bad file once, not every half second
                return state.rules.count
            }
            writeStderr("tracetap: rules: \(error); keeping the last good rules (\(kept))\n")
            return error
        }
    }

    func nextRandom() -> Double {
        random.withLock { Double($0.next() >> 11) / Double(1 << 53) }
    }
}

/// A fault chosen for one exchange, with the rule that chose it.
struct AppliedFault {
    let rule: String
    let fault: any Fault
    var label: String { "\(rule):\(fault.kind)" }
}

/// A loop's view of the rule book.
struct LoopRules {
    private let book: RuleBook?
    private let allowHeaderFaults: Bool
    private var rules: [Rule] = []
    private var generation = -1
    /// Whether some rule matches on the body, so that a request's body is read before deciding.
    private(set) var needBody = false
    private var hasSQLRules = false

    init(book: RuleBook?, allowHeaderFaults: Bool) {
        self.book = book
        self.allowHeaderFaults = allowHeaderFaults
    }

    /// Picks up a reload or an admin change: one atomic load per request.
    mutating func refresh() {
        guard let book else { return }
        let current = book.generation.load(ordering: .acquiring)
        guard current != generation else { return }
        rules = book.rules
        needBody = rules.contains { $0.match.needsBody }
        hasSQLRules = rules.contains { $0.match.sql != nil }
        generation = current
    }

    /// The faults for this request, in rule order; those an `X-Tracetap-Fault` header asks for come first.
    mutating func faults(for request: RequestHead, body: [UInt8]?) -> [AppliedFault] {
        var applied: [AppliedFault] = []
        if allowHeaderFaults, let header = request.headers.first(FieldName.xTracetapFault) {
            applied += HeaderFaults.parse(String(decoding: header, as: UTF8.self)).map { AppliedFault(rule: "header", fault: $0) }
        }
        guard let book else { return applied }
        refresh()
        for rule in rules where rule.matches(request, body: body) {
            let roll = rule.probability < 1 ? book.nextRandom() : 0
            if rule.admits(random: roll) { applied += rule.faults.map { AppliedFault(rule: rule.name, fault: $0) } }
        }
        return applied
    }

    /// The faults for a database statement, in rule order.
    mutating func faults(forSQL sql: String) -> [AppliedFault] {
        guard let book else { return [] }
        refresh()
        var applied: [AppliedFault] = []
        for rule in rules where rule.matches(sql: sql) {
            let roll = rule.probability < 1 ? book.nextRandom() : 0
            if rule.admits(random: roll) { applied += rule.faults.map { AppliedFault(rule: rule.name, fault: $0) } }
        }
        return applied
    }

    /// Whether any rule is about database statements (the database legs then look at each statement).
    mutating func hasDatabaseRules() -> Bool {
        refresh()
        return hasSQLRules
    }

    /// What the chosen faults ask of the exchange; jitter comes from the seeded generator.
    func plan(_ faults: [AppliedFault]) -> FaultPlan {
        var plan = FaultPlan()
        for applied in faults {
            applied.fault.shape(&plan) { limit in
                guard let book, limit > 0 else { return 0 }
                return Int(book.nextRandom() * Double(limit + 1))
            }
        }
        return plan
    }
}
