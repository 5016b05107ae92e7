/// A growable byte queue: bytes are appended at the back and consumed from the front without shifting
/// on every read. Used for connection input and output.
public struct ByteBuffer: Sendable {
    public private(set) var storage: [UInt8] = []
    public private(set) var readerIndex = 0

    public init() {}
    public init(_ bytes: [UInt8]) { storage = bytes }

    public var readableCount: Int { storage.count - readerIndex }
    public var isEmpty: Bool { readerIndex == storage.count }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compactIfWorthIt()
        storage.append(contentsOf: bytes)
    }

    public mutating func append<C: Collection>(contentsOf bytes: C) where C.Element == UInt8 {
        compactIfWorthIt()
        storage.append(contentsOf: bytes)
    }

    public mutating func consume(_ count: Int) {
        precondition(count <= readableCount)
        readerIndex += count
        if readerIndex == storage.count {
            storage.removeAll(keepingCapacity: true)
            readerIndex = 0
        }
    }

    public func withReadableBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        // Array.withUnsafeBytes is untyped `rethrows`; a Result carries the typed error through it.
        let result: Result<R, E> = storage.withUnsafeBytes { all in
            do throws(E) { return .success(try body(UnsafeRawBufferPointer(rebasing: all[readerIndex...]))) } catch { return .failure(error) }
        }
        return try result.get()
    }

    public var readableBytes: ArraySlice<UInt8> { storage[readerIndex...] }

    /// Gives memory back once a connection is idle, so thousands of idle keep-alive connections stay small.
    public mutating func releaseCapacityIfEmpty(above limit: Int = 16 * 1024) {
        if isEmpty && storage.capacity > limit { storage = [] ; readerIndex = 0 }
    }

    private mutating func compactIfWorthIt() {
        if readerIndex > 0 && readerIndex >= storage.count / 2 {
            storage.removeSubrange(0..<readerIndex)
            readerIndex = 0
        }
    }
}
