/// Which names in the processing area are taken and by what, and which Inbox names wait for one to be
/// free. A name is taken from its claiming rename until its file has left the processing area, so a
/// newcomer of the same name is never renamed onto a file that is still there; a file `a` and a folder
/// `a/` block each other the same way.
public struct NameLedger: Sendable, Equatable {
    public enum Holder: Sendable, Equatable {
        /// Renamed into the processing area this cycle; its job row is not committed yet.
        case claiming
        case job(Int64)
    }

    private var holders: [RelativePath: Holder] = [:]
    private var waiting: Set<RelativePath> = []

    public init() {}

    public func holder(of name: RelativePath) -> Holder? { holders[name] }

    public func isTaken(_ name: RelativePath) -> Bool { holders[name] != nil }

    public var waitingCount: Int { waiting.count }

    public mutating func claimed(_ name: RelativePath) { holders[name] = .claiming }

    /// The job row of a claim (or of a job recovered at start) holds the name.
    public mutating func assign(_ name: RelativePath, to job: Int64) { holders[name] = .job(job) }

    /// A name that could not be claimed because it, or a folder on its path, is taken.
    public mutating func wait(_ name: RelativePath) { waiting.insert(name) }

    /// The job's file has left the processing area: its name is free (if this job held it), and the waiting
    /// names it blocked are returned to look at again: the same name, its folders, and what lies below it.
    public mutating func release(_ name: RelativePath, job: Int64) -> [RelativePath] {
        if holders[name] == .job(job) { holders[name] = nil }
        guard !waiting.isEmpty else { return [] }
        let slash = UInt8(ascii: "/")
        let freed = waiting.filter { other in
            other == name || name.bytes.starts(with: other.bytes + [slash]) || other.bytes.starts(with: name.bytes + [slash])
        }
        waiting.subtract(freed)
        return freed.sorted()
    }
}
