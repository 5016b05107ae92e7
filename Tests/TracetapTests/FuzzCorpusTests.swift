import Foundation
import Testing

/// Every committed fuzz input (seeds, and any crash a fuzzing run ever found: Tests/Fuzz/run.sh saves them
/// as crash-*) replayed through its decoder by the normal build of `tracetap-fuzz`.
@Suite struct FuzzCorpusTests {
    @Test func everyCorpusInputDecodesOrFailsCleanly() throws {
        let binary = Repo.root.appendingPathComponent(".build/debug/tracetap-fuzz").path
        let (status, out, errors) = try ChildProcess.run([binary, Repo.root.appendingPathComponent("Tests/Fuzz/Corpus").path], seconds: 120)
        #expect(status == 0, "\(out)\(errors)")
        for target in ["http-request", "http-response", "chunked", "rules", "otlp-protobuf", "otlp-json", "postgres", "sql-text"] {
            #expect(out.range(of: #"\#(target): [1-9][0-9]* inputs"#, options: .regularExpression) != nil, "\(target): \(out)")
        }
        #expect(out.contains("without a crash"))
    }
}
