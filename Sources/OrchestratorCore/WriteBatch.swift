/// What the next commit of the store carries: the writes recorded since the last one, and the names that
/// commit frees.
///
/// The daemon records its writes as it goes and commits them together, one transaction (one fsync) for many
/// transitions. A name of a finished file is freed only by the commit that records where the file went, so a
/// newcomer of that name is never claimed while a crash could still leave the old job's move unrecorded
/// (guarantee 17). Writes and names recorded while a commit runs are not part of it. A commit that fails
/// changes nothing: everything stays pending, in order, for the next try.
public struct WriteBatch<Write, Name> {
    public private(set) var writes: [Write] = []
    public private(set) var namesToFree: [Name] = []

    public init() {}

    public var isEmpty: Bool { writes.isEmpty }

    public mutating func record(_ write: Write) {
        writes.append(write)
    }

    /// `name` is freed by the next commit that succeeds after this call.
    public mutating func free(afterCommit name: Name) {
        namesToFree.append(name)
    }

    /// What a commit starting now carries.
    public struct Snapshot {
        public let writes: [Write]
        let freeing: Int
    }

    public func snapshot() -> Snapshot { Snapshot(writes: writes, freeing: namesToFree.count) }

    /// The commit of `snapshot` succeeded: its writes are done. Returns the names it frees.
    public mutating func committed(_ snapshot: Snapshot) -> [Name] {
        writes.removeFirst(snapshot.writes.count)
        let freed = Array(namesToFree.prefix(snapshot.freeing))
        namesToFree.removeFirst(snapshot.freeing)
        return freed
    }
}
