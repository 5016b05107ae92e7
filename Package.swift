// swift-tools-version:6.0
import PackageDescription

// Data path: accept -> parse -> tag -> forward -> record -> respond.
// HTTPCodec and TraceContext are pure (bytes in, values out) so they can be tested and fuzzed without sockets.
let package = Package(
    name: "Tracetap",
    products: [.executable(name: "tracetap", targets: ["tracetap"])],
    targets: [
        .target(name: "CTracetapSys"),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "HTTPCodec"),
        .target(name: "TraceContext"),
        .target(name: "TracetapCore", dependencies: ["CTracetapSys", "CCurl", "HTTPCodec", "TraceContext"]),
        .executableTarget(name: "tracetap", dependencies: ["TracetapCore"]),
        .testTarget(name: "HTTPCodecTests", dependencies: ["HTTPCodec", "TraceContext"]),
        // TracetapTests runs the built binary too, so it depends on the executable.
        .testTarget(name: "TracetapTests", dependencies: ["TracetapCore", "HTTPCodec", "TraceContext", "tracetap"]),
    ]
)
