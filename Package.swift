// swift-tools-version:6.0
import PackageDescription

// Data path: accept -> parse -> tag -> forward -> record -> respond.
// HTTPCodec and TraceContext are pure (bytes in, values out) so they can be tested and fuzzed without sockets.
// Release builds: whole-program generic specialisation across our own modules (without it the codec's
// generic helpers run unspecialised on the hot path, with runtime metadata lookups on every header written),
// and no run-time exclusivity checks (measured at ~4% of the event loop's time; debug builds, which run the
// tests, keep them).
let optimize: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization", "-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "Tracetap",
    products: [.executable(name: "tracetap", targets: ["tracetap"])],
    targets: [
        .target(name: "CTracetapSys"),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "HTTPCodec", swiftSettings: optimize),
        .target(name: "TraceContext", swiftSettings: optimize),
        .target(name: "TracetapCore", dependencies: ["CTracetapSys", "CCurl", "HTTPCodec", "TraceContext"], swiftSettings: optimize),
        .executableTarget(name: "tracetap", dependencies: ["TracetapCore"], swiftSettings: optimize),
        // Replays the fuzz corpora; built with -DFUZZING by Tests/Fuzz/run.sh it is the libFuzzer target.
        .executableTarget(name: "tracetap-fuzz", dependencies: ["TracetapCore"], swiftSettings: optimize),
        .testTarget(name: "HTTPCodecTests", dependencies: ["HTTPCodec", "TraceContext"]),
        // TracetapTests runs the built binary too, so it depends on the executable.
        .testTarget(name: "TracetapTests", dependencies: ["TracetapCore", "HTTPCodec", "TraceContext", "tracetap", "tracetap-fuzz"]),
    ]
)
