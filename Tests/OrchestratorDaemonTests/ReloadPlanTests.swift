import OrchestratorConfig
import OrchestratorCore
import Testing

@testable import OrchestratorDaemon

@Suite struct ReloadPlanTests {
    let paths = Paths(inbox: "/i", done: "/d", failed: "/f", state: "/s", processing: "/i/.processing")

    func config(tasks: [TaskDefinition], inbox: InboxSettings = .defaults, paths: Paths? = nil) throws -> Config {
        Config(file: "/c/orchestrator.toml", baseDirectory: "/c", paths: paths ?? self.paths, inbox: inbox, tasks: tasks)
    }

    func task(_ name: String, _ trigger: Trigger) throws -> TaskDefinition {
        TaskDefinition(name: name, trigger: trigger, command: try CommandTemplate(parsing: ["/bin/true"]))
    }

    @Test func tasksAddedRemovedAndRescheduledAreToldApart() throws {
        let old = try config(tasks: [
            task("kept", .every(.seconds(60))), task("moved", .every(.seconds(60))), task("gone", .event("x")),
        ])
        let new = try config(tasks: [
            task("kept", .every(.seconds(60))), task("moved", .every(.seconds(120))), task("new", .event("y")),
        ])
        let plan = ReloadPlan(from: old, to: new)
        #expect(plan.addedTasks == ["new"])
        #expect(plan.removedTasks == ["gone"])
        #expect(plan.rescheduledTasks == ["moved"])
        #expect(!plan.inboxChanged)
        #expect(ReloadPlan.refusal(from: old, to: new) == nil)
    }

    @Test func inboxRuleChangesAskForARescanAndRecursionForNewWatches() throws {
        let old = try config(tasks: [])
        var settings = InboxSettings.defaults
        settings.settle = .seconds(5)
        #expect(ReloadPlan(from: old, to: try config(tasks: [], inbox: settings)).inboxChanged)
        #expect(!ReloadPlan(from: old, to: try config(tasks: [], inbox: settings)).recursiveChanged)
        settings.recursive.toggle()
        #expect(ReloadPlan(from: old, to: try config(tasks: [], inbox: settings)).recursiveChanged)
    }

    @Test func aPathsChangeIsRefusedNamingWhatMoved() throws {
        let old = try config(tasks: [])
        let moved = Paths(inbox: "/i", done: "/elsewhere", failed: "/f", state: "/s2", processing: "/i/.processing")
        let refusal = ReloadPlan.refusal(from: old, to: try config(tasks: [], paths: moved))
        #expect(refusal?.0 == "[paths] changed (done, state)")
        #expect(refusal?.key == "paths")
    }

    /// An empty or cut-short file would fail every waiting file ("no handler"): refused; a restart applies it if meant.
    @Test func aConfigLeftWithoutHandlersIsRefused() throws {
        var old = try config(tasks: [])
        old.handlers = [Handler(name: "h", match: [], command: try CommandTemplate(parsing: ["/bin/true"]))]
        let emptied = try config(tasks: [])
        #expect(ReloadPlan.refusal(from: old, to: emptied)?.key == "handler")
        #expect(ReloadPlan.refusal(from: emptied, to: emptied) == nil)
        #expect(ReloadPlan.refusal(from: old, to: old) == nil)
    }

    @Test func anHTTPChangeIsRefused() throws {
        let old = try config(tasks: [])
        var moved = old
        moved.http = HTTPSettings(listen: ListenAddress(host: "127.0.0.1", port: 9000))
        #expect(ReloadPlan.refusal(from: old, to: moved)?.key == "http")
        #expect(ReloadPlan.refusal(from: moved, to: moved) == nil)
    }
}
