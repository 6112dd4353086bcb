import Testing
@testable import OrchestratorConfig

private func load(_ text: String) throws -> Config { try Config.parse(text: text, file: configFile) }

private func problems(_ text: String) -> [String] {
    do {
        _ = try Config.parse(text: text, file: configFile)
        return []
    } catch {
        return error.problems.map { "\($0.line): \($0.message)" }
    }
}

private let handler = """
    [[handler]]
    name = "convert"
    command = ["convert", "{file}"]

    """

@Suite struct NodeConfigTests {
    @Test func aDaemonIsItsHostWithEveryRoleUnlessTold() throws {
        let config = try load(handler)
        #expect(config.node.name == NodeSettings.hostName() && !config.node.name.isEmpty)
        #expect(config.node.roles == [.lister, .worker, .scheduler])
        let named = try load(handler + """
            [node]
            name = "vm-2.home"
            roles = ["worker"]
            """)
        #expect(named.node.name == "vm-2.home" && named.node.roles == [.worker] && named.node.roleList == ["worker"])
    }

    @Test func badNamesAndRolesAreRefusedAtTheirLines() {
        #expect(problems(handler + """
            [node]
            name = "web 1"
            roles = ["lister", "runner",
                     "lister"]
            colour = "red"
            """) == [
                #"5: [node] name: "web 1" may hold only letters, digits, '.', '_' and '-'"#,
                #"6: [node] roles: unknown role "runner"; the roles are "lister", "worker", "scheduler""#,
                #"7: [node] roles: "lister" is listed twice"#,
                #"8: unknown key "colour" in [node]"#,
            ])
        #expect(problems(handler + "[node]\nname = \"\"\nroles = []\n") == [
            "5: [node] name: a node name cannot be empty", "6: [node] roles: a daemon needs at least one role",
        ])
        #expect(problems(handler + "[node]\nname = \"\(String(repeating: "n", count: 65))\"\n").count == 1)
    }

    @Test func theSharedHashIgnoresWhatIsEachDaemonsOwn() throws {
        let base = try load(handler + "[limits]\nmax_concurrent = 2\nshutdown_grace = \"5s\"\n")
        // Another node's paths, name, store, listen address and admission: the same shared config.
        let other = try load("""
            [paths]
            state = "/var/lib/elsewhere"
            [node]
            name = "other"
            [store]
            url = "postgres://o@db:5432/q"
            [http]
            listen = "127.0.0.1:9999"
            [limits]
            shutdown_grace = "5s"
            max_concurrent = 8
            max_cpu_percent = 50

            """ + handler)
        #expect(base.sharedHash.count == 16 && base.sharedHash == other.sharedHash)
        // Key order and spelling do not matter either.
        let reordered = try load("""
            [[handler]]
            command = [ "convert", "{file}" ]
            name = 'convert'
            [limits]
            shutdown_grace = "5s"
            """)
        #expect(reordered.sharedHash == base.sharedHash)
        // What every daemon must agree on does.
        let slower = try load(handler + "[limits]\nshutdown_grace = \"6s\"\n")
        let otherCommand = try load(handler.replacingOccurrences(of: "convert\", \"{file}", with: "convert\", \"-q\", \"{file}") + "[limits]\nshutdown_grace = \"5s\"\n")
        #expect(slower.sharedHash != base.sharedHash && otherCommand.sharedHash != base.sharedHash)
    }

    @Test func aSchedulerMustAlsoBeAWorker() {
        #expect(problems(handler + "[node]\nroles = [\"lister\", \"scheduler\"]\n") == [
            #"5: [node] roles: "scheduler" needs "worker" too: a daemon runs the task runs it queues"#
        ])
        #expect(problems(handler + "[node]\nroles = [\"lister\"]\n").isEmpty)
        #expect(problems(handler + "[node]\nroles = [\"worker\"]\n").isEmpty)
    }
}
