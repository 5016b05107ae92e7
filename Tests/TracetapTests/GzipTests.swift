import Foundation
import Testing
import TracetapCore

/// The gzip decoder against Python's zlib: stored, fixed and dynamic blocks, several members, corruption.
@Suite struct GzipTests {
    /// Compresses with Python at `level` and returns (original, compressed).
    static func python(_ script: String) throws -> [[UInt8]] {
        let (status, out, errors) = try ChildProcess.run(["python3", "-c", "import gzip, zlib, base64, random\n" + script])
        guard status == 0 else { throw TestFailure(errors) }
        return out.split(separator: "\n").map { [UInt8](Data(base64Encoded: String($0))!) }
    }

    @Test(arguments: [0, 1, 6, 9])
    func decodesWhatZlibWrites(level: Int) throws {
        let pair = try Self.python("""
            random.seed(7)
            words = [b"trace", b"span", b"proxy", b"request", b"\\x00\\xff", b"{\\"id\\": 42}"]
            data = b" ".join(random.choice(words) for _ in range(40000)) + bytes(range(256)) * 50
            print(base64.b64encode(data).decode()); print(base64.b64encode(gzip.compress(data, \(level))).decode())
            """)
        #expect(Gzip.decompress(pair[1]) == pair[0])
    }

    @Test func decodesConcatenatedMembersAndHeaderFields() throws {
        let pair = try Self.python("""
            import io
            a, b = b"first member " * 100, b"second"
            out = io.BytesIO()
            with gzip.GzipFile(filename="name.txt", mode="wb", fileobj=out, mtime=1) as f: f.write(a)
            print(base64.b64encode(a + b).decode()); print(base64.b64encode(out.getvalue() + gzip.compress(b)).decode())
            """)
        #expect(Gzip.decompress(pair[1]) == pair[0])
    }

    @Test func refusesCorruptionTruncationAndBombs() throws {
        let pair = try Self.python("""
            data = b"a" * 100000
            print(base64.b64encode(data).decode()); print(base64.b64encode(gzip.compress(data)).decode())
            """)
        var corrupt = pair[1]
        corrupt[corrupt.count - 6] ^= 0xff  // inside the CRC
        #expect(Gzip.decompress(corrupt) == nil)
        #expect(Gzip.decompress(Array(pair[1].dropLast(10))) == nil)
        #expect(Gzip.decompress(Array("not gzip".utf8)) == nil)
        #expect(Gzip.decompress(pair[1], limit: 1000) == nil)
        #expect(Gzip.decompress(pair[1]) == pair[0])
    }
}
