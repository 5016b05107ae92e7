import Foundation
import TracetapCore

/// `tracetap race`: one request N times at the same instant, to expose read-modify-write races.
enum Race {
    static let help = """
    Usage: tracetap race [-X METHOD] URL [-H 'Name: value']... [-d DATA] [flags]
           tracetap race --from ID URL [flags]          (a captured exchange, sent to URL's host)

    Sends N copies of one request so that they reach the backend together: each on its own connection,
    all but the last byte first, then every last byte at once. A round in which more than K copies succeed
    (2xx) is a race: the resource existed K times.

      -n N                copies per round (default 20)
      --rounds R          repeat R times and report the detection rate (default 1)
      --max-success K     how many copies may succeed (default 1)
      --before 'POST /p'  a request sent before each round to reset the backend (e.g. restock)
      --check 'GET /p'    a request sent after each round to read the state it left (printed)
      --expect TEXT       the check's body must contain TEXT ('"stock":0'), else the round is a finding too
      --responses         print every copy's status, body digest and the start of its body
      --sequential        the baseline: the same copies one after another
      --from ID           the request of a captured exchange (SESSION:SEQ, SEQ, trace ID); --capture DIR
      -X, -H, -d          as in curl: method, header, body (-d @FILE reads a file)

    Exit status: 1 when a round found a race (or a failed --expect), 0 when none did, 2 on usage errors.
    """

    static func run(_ args: inout Arguments) throws(UsageError) -> Int32 {
        var method: String?
        var url: String?
        var headers: [(name: String, value: String)] = []
        var body: [UInt8]?
        var copies = 20
        var rounds = 1
        var maxSuccesses = 1
        var before: (method: String, path: String)?
        var check: (method: String, path: String)?
        var expect: String?
        var showResponses = false
        var sequential = false
        var from: String?
        var store = "Captures"
        while let arg = args.next() {
            switch arg {
            case "-X", "--request": method = try args.value(for: arg, inline: nil).uppercased()
            case "-H", "--header":
                let text = try args.value(for: arg, inline: nil)
                guard let colon = text.firstIndex(of: ":") else { throw UsageError(message: "-H: '\(text)' is not 'Name: value'") }
                headers.append((String(text[..<colon]), text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            case "-d", "--data", "--data-binary":
                let text = try args.value(for: arg, inline: nil)
                if text.hasPrefix("@") {
                    guard let data = FileManager.default.contents(atPath: String(text.dropFirst())) else { throw UsageError(message: "\(arg): cannot read \(text.dropFirst())") }
                    body = [UInt8](data)
                } else {
                    body = Array(text.utf8)
                }
            case "-n": copies = try parseCount(args.value(for: arg, inline: nil), flag: arg, range: 2...1000)
            case "--rounds": rounds = try parseCount(args.value(for: arg, inline: nil), flag: arg, range: 1...10_000)
            case "--max-success": maxSuccesses = try parseCount(args.value(for: arg, inline: nil), flag: arg, range: 0...1000)
            case "--before": before = try methodAndPath(args.value(for: arg, inline: nil), arg)
            case "--check": check = try methodAndPath(args.value(for: arg, inline: nil), arg)
            case "--expect": expect = try args.value(for: arg, inline: nil)
            case "--responses": showResponses = true
            case "--sequential": sequential = true
            case "--from": from = try args.value(for: arg, inline: nil)
            case "--capture": store = try args.value(for: arg, inline: nil)
            default:
                if arg.hasPrefix("-") { throw UsageError(message: "unknown flag \(arg) (see tracetap race --help)") }
                url = arg
            }
        }
        guard let url, let target = UpstreamURL(url) else { throw UsageError(message: "race needs an http:// URL (see tracetap race --help)") }
        var probe = RaceProbe(target: target)
        let afterScheme = url.range(of: "://").map { url[$0.upperBound...] } ?? Substring(url)
        probe.path = afterScheme.firstIndex(of: "/").map { String(afterScheme[$0...]) } ?? "/"
        if let from {
            guard let e = CaptureReader(directory: store).find(from) else { throw UsageError(message: "no exchange '\(from)' in \(store)") }
            probe.send(e)
        }
        if let method { probe.method = method } else if from == nil { probe.method = body == nil ? "GET" : "POST" }
        probe.headers += headers
        if let body { probe.body = body }
        probe.copies = copies
        probe.maxSuccesses = maxSuccesses
        probe.before = before
        probe.check = check
        if expect != nil && check == nil { throw UsageError(message: "--expect needs --check 'GET /path'") }

        print("race: \(copies) x \(probe.method) \(target)\(probe.path), \(rounds) round\(rounds == 1 ? "" : "s")"
              + (sequential ? ", one after another (baseline)" : ", last bytes released together") + "; at most \(maxSuccesses) may succeed")
        var caught = 0
        var spreads: [Double] = []
        for round in 1...rounds {
            let result: RaceProbe.Round
            do { result = sequential ? try probe.sequentialRound() : try probe.synchronisedRound() } catch { throw UsageError(message: error.message) }
            let counts = Dictionary(grouping: result.statuses, by: { $0 }).sorted { $0.key < $1.key }.map { "\($0.value.count) x \($0.key)" }
            let checkText = result.checkBody.map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
            let stateWrong = expect.map { expected in !(checkText ?? "").contains(expected) } ?? false
            let race = result.successes > maxSuccesses || stateWrong
            if race { caught += 1 }
            spreads.append(result.releaseSpreadMicros)
            print("  round \(round): " + (sequential ? "" : "released within \(Int(result.releaseSpreadMicros.rounded())) µs: ")
                  + counts.joined(separator: ", ") + ", \(result.distinctBodies) distinct bodies"
                  + (result.errors.isEmpty ? "" : ", \(result.errors.count) failed (\(result.errors[0]))")
                  + (result.successes > maxSuccesses ? "  RACE: \(result.successes) succeeded" : ""))
            if let check, let checkText {
                print("    then \(check.method) \(check.path): \(checkText.prefix(100))" + (stateWrong ? "  RACE: expected \(expect!)" : ""))
            }
            if showResponses {
                print("    trace \(result.traceID): every copy of this round")
                for response in result.responses {
                    print("    copy \(response.copy)/\(copies): \(response.status)  \(ResponseDiff.digest(response.body))  "
                          + String(decoding: response.body.prefix(60), as: UTF8.self).replacingOccurrences(of: "\n", with: " "))
                }
            }
        }
        let sorted = spreads.sorted()
        print("\nrace found in \(caught) of \(rounds) rounds"
              + (sequential ? "" : "; release spread median \(Int(sorted[sorted.count / 2].rounded())) µs, max \(Int((sorted.last ?? 0).rounded())) µs"))
        return caught > 0 ? 1 : 0
    }

    private static func methodAndPath(_ text: String, _ flag: String) throws(UsageError) -> (method: String, path: String) {
        let parts = text.split(separator: " ", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[1].hasPrefix("/") else { throw UsageError(message: "\(flag): expected 'METHOD /path'") }
        return (parts[0].uppercased(), parts[1])
    }
}
