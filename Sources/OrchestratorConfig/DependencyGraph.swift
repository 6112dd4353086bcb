/// Cycle search over `after` edges.
enum DependencyGraph {
    /// Each cycle once, as names from its first task (in `order`) back to it: `["a", "b", "a"]`.
    ///
    /// Depth-first from each task in file order, so the cycle is named from the task the user
    /// wrote first, and the report does not depend on hash order.
    static func cycles(order: [String], edges: [String: [String]]) -> [[String]] {
        var search = Search(edges: edges)
        for name in order where search.state[name] == nil {
            search.visit(name)
        }
        return search.found
    }

    private struct Search {
        enum Mark { case onStack, finished }

        let edges: [String: [String]]
        var state: [String: Mark] = [:]
        var stack: [String] = []
        var found: [[String]] = []

        init(edges: [String: [String]]) { self.edges = edges }

        mutating func visit(_ name: String) {
            state[name] = .onStack
            stack.append(name)
            for next in edges[name] ?? [] {
                switch state[next] {
                case .onStack?:
                    if let start = stack.lastIndex(of: next) { found.append(Array(stack[start...]) + [next]) }
                case .finished?:
                    continue
                case nil:
                    visit(next)
                }
            }
            stack.removeLast()
            state[name] = .finished
        }
    }
}
