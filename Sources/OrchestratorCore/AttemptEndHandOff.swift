/// On a shared store, an attempt's end recorded for the next commit, which its job's end, recorded right after it for
/// the same commit, may take and write in its own guarded statement (one statement for the two).
///
/// The attempt end's write asks `wasTaken` when it runs: taken, it writes nothing. Once a commit succeeded every end
/// recorded so far is in the store and is dropped here; a job end that then finds nothing to take leaves the attempt
/// end's own write to it (which is always safe).
public struct AttemptEndHandOff<Key: Hashable, End> {
    private var untaken: [Key: (serial: UInt64, end: End)] = [:]
    private var taken: Set<UInt64> = []
    private var nextSerial: UInt64 = 0

    public init() {}

    public var isEmpty: Bool { untaken.isEmpty && taken.isEmpty }

    /// The running attempt under `key` (a job and its claim) ended; its write asks `wasTaken(serial)`.
    public mutating func record(_ key: Key, _ end: End) -> UInt64 {
        nextSerial += 1
        untaken[key] = (nextSerial, end)
        return nextSerial
    }

    /// The job's end under `key` takes its attempt's end, once, if that is not committed yet.
    public mutating func take(_ key: Key) -> End? {
        guard let (serial, end) = untaken.removeValue(forKey: key) else { return nil }
        taken.insert(serial)
        return end
    }

    public func wasTaken(_ serial: UInt64) -> Bool { taken.contains(serial) }

    public mutating func committed() {
        guard !isEmpty else { return }
        untaken.removeAll(keepingCapacity: true)
        taken.removeAll(keepingCapacity: true)
    }
}
