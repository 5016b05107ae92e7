import Foundation
import TracetapCore

// Two builds of one target. With -DFUZZING (Tests/Fuzz/run.sh, which also links libFuzzer and
// AddressSanitizer) libFuzzer calls LLVMFuzzerTestOneInput with generated inputs for the decoder named by
// TRACETAP_FUZZ_TARGET. Without it (every normal build) this is a replay tool: it feeds each file of the
// committed corpora (seeds, and every crash ever found) to its decoder, so they stay regression tests.

#if FUZZING
private let target: @Sendable ([UInt8]) -> Void = {
    let name = ProcessInfo.processInfo.environment["TRACETAP_FUZZ_TARGET"] ?? ""
    guard let found = Fuzzing.targets.first(where: { $0.name == name }) else {
        fatalError("set TRACETAP_FUZZ_TARGET to one of: \(Fuzzing.targets.map(\.name).joined(separator: ", "))")
    }
    return found.run
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// libFuzzer's driver, what its own `main` would call.
@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                             _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM links an executable's `main` to `<module>_main`; here that is libFuzzer's driver.
@_cdecl("tracetap_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in fuzzOneInput(data, size) }
}
#else
@main
struct ReplayCorpora {
    /// `tracetap-fuzz CORPUS_DIR`: CORPUS_DIR/<target>/<file> for every target.
    static func main() {
        let root = CommandLine.arguments.dropFirst().first ?? "Tests/Fuzz/Corpus"
        var total = 0
        for (name, run) in Fuzzing.targets {
            let folder = root + "/" + name
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
            for file in files {
                guard let data = FileManager.default.contents(atPath: folder + "/" + file) else { continue }
                run([UInt8](data))
            }
            print("\(name): \(files.count) inputs")
            total += files.count
        }
        print("replayed \(total) inputs without a crash")
    }
}
#endif
