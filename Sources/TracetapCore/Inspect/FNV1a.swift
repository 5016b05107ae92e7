/// FNV-1a, 64 bits: a quick, stable fingerprint (not a security hash) for telling bodies apart and for
/// deriving span IDs that come out the same each time a trace is read.
enum FNV1a {
    static func hash<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }
}
