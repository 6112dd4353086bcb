#if canImport(Glibc)
import Glibc
#endif
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import TestSupport

/// The HTTP API (SPEC section 9) on the real binary. Every response a test receives is recorded and, at the
/// end of the test, checked against the OpenAPI document the daemon serves (route, method, status, content
/// type, body schema) by Support/openapi_validate.py.
@Suite(.timeLimit(.minutes(3))) struct HTTPTests {
    static let token = "t0ken-\(UUID().uuidString)"

    /// One worker at a time, so that what waits is visible: `block*` waits for a `release` file, `bad*` fails
    /// until a `fixed` file exists, every other file appends its name to `ran.log`.
    static func config(token: Bool = false, listen: String = "127.0.0.1:0", grace: String = "5s") -> String {
        """
        [inbox]
        settle = "100ms"

        [limits]
        max_concurrent = 1
        shutdown_grace = "\(grace)"

        [http]
        listen = "\(listen)"
        \(token ? "token_file = \"../token\"" : "")

        [[handler]]
        name = "blocker"
        match = ["block*"]
        command = ["/bin/sh", "-c", 'while [ ! -e ../release ]; do sleep 0.02; done']

        [[handler]]
        name = "flaky"
        match = ["bad*"]
        command = ["/bin/sh", "-c", 'test -e ../fixed']
        max_attempts = 1

        [[handler]]
        name = "test"
        command = ["/bin/sh", "-c", 'echo "$ORCH_NAME" >> ../ran.log']

        [[task]]
        name = "hook"
        on = "hook"
        command = ["/bin/sh", "-c", 'if [ -n "$ORCH_EVENT_FILE" ]; then cp "$ORCH_EVENT_FILE" ../got-$ORCH_JOB_ID; else echo none > ../got-$ORCH_JOB_ID; fi']

        [[task]]
        name = "nightly"
        cron = "0 3 * * *"
        command = ["/bin/true"]
        """
    }

    /// An instance whose daemon serves the API; the port is the one it logged.
    func started(token: Bool = false, grace: String = "5s") throws -> (TestInstance, APIClient) {
        let instance = try TestInstance(config: Self.config(token: token, grace: grace))
        if token { try "  \(Self.token)\n".write(toFile: instance.path("token"), atomically: true, encoding: .utf8) }
        try instance.startDaemon()
        let base = try instance.apiBase()
        return (instance, APIClient(base: base, token: token ? Self.token : nil))
    }

    // MARK: auth

    /// A token rotated (the file rewritten, then a reload) applies at once: before, every reload was refused with
    /// "[http] changed" and the old token stayed valid until a restart.
    @Test func aReloadAfterTheTokenFileIsRewrittenAcceptsOnlyTheNewToken() throws {
        let (instance, api) = try started(token: true)
        #expect(try api.get("/api/v1/status").status == 200)
        let rotated = "r0tated-\(UUID().uuidString)"
        try "\(rotated)\n".write(toFile: instance.path("token"), atomically: true, encoding: .utf8)
        #expect(try api.get("/api/v1/status").status == 200, "the old token holds until the reload")
        let reloaded = try api.post("/api/v1/reload", json: nil)
        #expect(reloaded.status == 200, "\(reloaded.object ?? [:])")
        #expect(try api.get("/api/v1/status").status == 401, "the old token is refused after the reload")
        #expect(try api.get("/api/v1/status", token: .some(rotated)).status == 200)
        // By SIGHUP as well, back to the first token.
        try "\(Self.token)\n".write(toFile: instance.path("token"), atomically: true, encoding: .utf8)
        let daemon = try #require(instance.daemon)
        kill(daemon.processIdentifier, SIGHUP)
        try instance.waitUntil("the SIGHUP reload applied the token", timeout: 10) { try api.get("/api/v1/status").status == 200 }
        #expect(try api.get("/api/v1/status", token: .some(rotated)).status == 401)
        #expect(instance.stopDaemon() == 0)
    }

    @Test func withATokenEveryRouteNeedsItAndAWrongOneIs401() throws {
        let (instance, api) = try started(token: true)
        for path in ["/api/v1/status", "/api/v1/jobs", "/api/v1/tasks", "/api/v1/openapi.json", "/api/v1/jobs/1", "/metrics"] {
            #expect(try api.get(path, token: .some(nil)).status == 401, "\(path) without a token")
            #expect(try api.get(path, token: .some("wrong")).status == 401, "\(path) with a wrong token")
            #expect(try api.get(path, token: .some(Self.token + "x")).status == 401, "\(path) with a longer token")
        }
        #expect(try api.post("/api/v1/events/hook", json: nil, token: .some(nil)).status == 401)
        #expect(try api.post("/api/v1/reload", json: nil, token: .some("wrong")).status == 401)
        #expect(!FileManager.default.fileExists(atPath: instance.path(".orchestrator/events/1")), "a refused call changed nothing")

        let status = try api.get("/api/v1/status")
        #expect(status.status == 200)
        let daemon = try #require(status.object?["daemon"] as? [String: Any])
        #expect(daemon["running"] as? Bool == true)
        #expect(daemon["pid"] as? Int == Int(instance.daemon?.processIdentifier ?? -1))
        try api.validate()
        #expect(instance.stopDaemon() == 0)
    }

    @Test func withoutATokenOnLoopbackNoAuthIsNeeded() throws {
        let (instance, api) = try started()
        #expect(try api.get("/api/v1/status", token: .some(nil)).status == 200)
        #expect(try api.get("/api/v1/openapi.json", token: .some(nil)).object?["openapi"] as? String == "3.1.0")
        let metrics = try api.get("/metrics")
        #expect(metrics.status == 200)
        #expect(String(decoding: metrics.body, as: UTF8.self).contains("# TYPE orchestrator_"))
        #expect(try api.get("/api/v1/nope").status == 404)
        // A documented path asked with another method: 405 with what it takes, not "no route".
        for (method, path, allowed) in [
            ("DELETE", "/api/v1/jobs/9", "GET"), ("PUT", "/api/v1/status", "GET"), ("GET", "/api/v1/reload", "POST"),
            ("GET", "/api/v1/tasks/nightly/run", "POST"),
        ] {
            let refused = try api.send(method, path)
            #expect(refused.status == 405, "\(method) \(path)")
            #expect(refused.object?["error"] as? String == "\(method) is not allowed on \(path) (allowed: \(allowed))", "\(method) \(path)")
        }
        // An id is an id: a file named like one is not found through it.
        try instance.drop("777")
        try instance.waitUntil("777 is in Done/", timeout: 10) { instance.count(in: "Done") == 1 }
        #expect(try api.get("/api/v1/jobs/777").status == 404)
        #expect(try api.post("/api/v1/jobs/777/cancel", json: nil).status == 404)
        try api.validate()
        #expect(instance.stopDaemon() == 0)
    }

    // MARK: jobs

    @Test func jobsArePagedNewestFirstAndFiltered() throws {
        let (instance, api) = try started()
        for index in 1...5 { try instance.drop("file\(index).txt") }
        try instance.drop("bad1.txt")
        #expect(try api.post("/api/v1/tasks/hook/run", json: nil).status == 200)
        // Finished, and each file moved: a job's location is recorded once its file has left the processing area,
        // a moment after its end state.
        try instance.waitUntil("all seven jobs finished and their files moved", timeout: 20) {
            let jobs = try api.get("/api/v1/jobs?limit=500").object?["jobs"] as? [[String: Any]] ?? []
            return jobs.count == 7 && jobs.allSatisfy { ["done", "failed"].contains($0["state"] as? String) }
                && jobs.filter { $0["kind"] as? String == "file" }.allSatisfy { ($0["location"] as? String)?.isEmpty == false }
        }
        let all = try #require(try api.get("/api/v1/jobs?limit=500").object?["jobs"] as? [[String: Any]]).compactMap { $0["job"] as? Int }
        #expect(all == all.sorted(by: >), "newest first")

        var paged: [Int] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try api.get("/api/v1/jobs?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""))
            #expect(page.status == 200)
            let jobs = try #require(page.object?["jobs"] as? [[String: Any]])
            #expect(jobs.count <= 2)
            paged += jobs.compactMap { $0["job"] as? Int }
            cursor = page.object?["next"] as? String
            pages += 1
        } while cursor != nil && pages < 10
        #expect(paged == all, "the pages, in order, are the whole list once")
        #expect(pages == 4)

        let failed = try #require(try api.get("/api/v1/jobs?state=failed").object?["jobs"] as? [[String: Any]])
        #expect(failed.map { $0["name"] as? String } == ["bad1.txt"])
        let flaky = try #require(try api.get("/api/v1/jobs?handler=flaky").object?["jobs"] as? [[String: Any]])
        #expect(flaky.count == 1 && flaky.first?["handler"] as? String == "flaky")
        let test = try #require(try api.get("/api/v1/jobs?handler=test&state=done").object?["jobs"] as? [[String: Any]])
        #expect(Set(test.compactMap { $0["name"] as? String }) == Set((1...5).map { "file\($0).txt" }))
        let hook = try #require(try api.get("/api/v1/jobs?task=hook").object?["jobs"] as? [[String: Any]])
        #expect(hook.count == 1 && hook.first?["task"] as? String == "hook" && hook.first?["kind"] as? String == "task")
        let future = try api.get("/api/v1/jobs?since=2999-01-01T00:00:00Z")
        #expect((future.object?["jobs"] as? [Any])?.isEmpty == true && future.object?["next"] is NSNull)
        let recent = try api.get("/api/v1/jobs?since=\(Int(Date().timeIntervalSince1970) - 3600)")
        #expect((recent.object?["jobs"] as? [Any])?.count == 7)

        // The list's own fields: where a finished file is now and how long its last attempt ran.
        let done = try #require(test.first)
        #expect((done["location"] as? String)?.hasPrefix(instance.path("Done") + "/") == true)
        #expect((done["duration_seconds"] as? Double).map { $0 >= 0 } == true)
        #expect(failed.first?["location"] as? String == instance.path("Failed/bad1.txt"))

        // The dashboard's chart: every minute of the window, the seven jobs counted in the minutes they ended.
        let activity = try api.get("/api/v1/activity?window=600")
        #expect(activity.status == 200)
        let minutes = try #require(activity.object?["minutes"] as? [[String: Any]])
        #expect(minutes.count == 10 && activity.object?["window_seconds"] as? Int == 600)
        #expect(minutes.compactMap { $0["done"] as? Int }.reduce(0, +) == 6)
        #expect(minutes.compactMap { $0["failed"] as? Int }.reduce(0, +) == 1)
        for bad in ["window=59", "window=86401", "window=soon"] {
            #expect(try api.get("/api/v1/activity?\(bad)").status == 400, "\(bad)")
        }

        for bad in ["state=bogus", "limit=0", "limit=501", "cursor=nope", "since=yesterday", "colour=red"] {
            let answer = try api.get("/api/v1/jobs?\(bad)")
            #expect(answer.status == 400, "\(bad)")
            #expect(answer.object?["error"] is String, "\(bad)")
        }
        let one = try api.get("/api/v1/jobs/\(all.last ?? 0)")
        #expect(one.status == 200)
        #expect((one.object?["attempts"] as? [Any])?.count == 1)
        #expect(try api.get("/api/v1/jobs/99999").status == 404)
        #expect(try api.get("/api/v1/jobs/abc").status == 400)
        try api.validate()
        #expect(instance.stopDaemon() == 0)
    }

    // MARK: replay and cancel

    @Test func replayAndCancelGoThroughTheAPI() throws {
        let (instance, api) = try started()
        try instance.drop("bad1.txt")
        try instance.drop("bad2.txt")
        try instance.waitUntil("bad1.txt and bad2.txt are in Failed/", timeout: 10) { instance.count(in: "Failed") == 2 }

        #expect(try api.post("/api/v1/replay", json: ["paths": ["../config/orchestrator.toml"]]).status == 400)
        #expect(try api.post("/api/v1/replay", json: ["paths": ["Failed/nothing-here"]]).status == 400)
        #expect(try api.post("/api/v1/replay", json: [:]).status == 400)
        #expect(try api.post("/api/v1/replay", json: ["paths": "Failed/bad1.txt"]).status == 400)
        #expect(try api.post("/api/v1/replay", json: ["all": false]).status == 400)
        #expect(try api.post("/api/v1/replay", json: ["all": true, "paths": ["Failed/bad1.txt"]]).status == 400)
        _ = FileManager.default.createFile(atPath: instance.path("fixed"), contents: nil)
        let replay = try api.post("/api/v1/replay", json: ["paths": ["Failed/bad1.txt"]])
        #expect(replay.status == 200)
        #expect((replay.object?["replayed"] as? [String])?.count == 1)
        try instance.waitUntil("the replayed file reaches Done/", timeout: 10) { instance.count(in: "Done") == 1 }
        #expect(FileManager.default.fileExists(atPath: instance.path("Failed/bad2.txt")), "only the path given")
        let all = try api.post("/api/v1/replay", json: ["all": true])
        #expect(all.status == 200)
        #expect(all.object?["replayed"] as? [String] == ["replayed bad2.txt -> Inbox/bad2.txt"])
        try instance.waitUntil("bad2.txt reaches Done/", timeout: 10) { instance.count(in: "Done") == 2 }

        // The blocker holds the only slot, so that the victim waits in the queue.
        try instance.drop("block")
        try instance.waitUntil("the blocker runs", timeout: 10) {
            (try api.get("/api/v1/status").object?["running"] as? [Any])?.count == 1
        }
        try instance.drop("victim.txt")
        var victim = 0
        try instance.waitUntil("victim.txt is queued", timeout: 10) {
            let queued = try api.get("/api/v1/jobs?state=queued").object?["jobs"] as? [[String: Any]] ?? []
            victim = queued.first?["job"] as? Int ?? 0
            return victim != 0
        }
        let cancel = try api.post("/api/v1/jobs/\(victim)/cancel", json: ["reason": "not needed"])
        #expect(cancel.status == 200)
        #expect(cancel.object?["job"] as? Int == victim)
        try instance.waitUntil("victim.txt is in Failed/", timeout: 10) {
            FileManager.default.fileExists(atPath: instance.path("Failed/victim.txt"))
        }
        let shown = try api.get("/api/v1/jobs/\(victim)")
        #expect(shown.object?["state"] as? String == "failed")
        #expect(shown.object?["reason"] as? String == "cancelled: not needed")
        #expect(try api.post("/api/v1/jobs/\(victim)/cancel", json: nil).status == 409, "a finished job")
        #expect(try api.post("/api/v1/jobs/99999/cancel", json: nil).status == 404)
        #expect(try api.post("/api/v1/jobs/\(victim)/cancel", json: ["reason": 5]).status == 400)

        _ = FileManager.default.createFile(atPath: instance.path("release"), contents: nil)
        try instance.waitUntil("the blocker is done", timeout: 10) { instance.count(in: "Done") == 3 }
        #expect(!instance.lines(of: "ran.log").contains("victim.txt"), "the cancelled job never ran")
        try api.validate()
        #expect(instance.stopDaemon() == 0)
    }

    // MARK: events

    @Test func anEventWithABodyRunsItsTaskOnceAndTheTaskReadsTheBody() throws {
        let (instance, api) = try started()
        let body = Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let fired = try api.send("POST", "/api/v1/events/hook", body: body, contentType: "application/octet-stream")
        #expect(fired.status == 202)
        let event = try #require(fired.object?["event"] as? Int)
        var runs: [String] = []
        try instance.waitUntil("the hook task ran", timeout: 10) {
            runs = (try? FileManager.default.contentsOfDirectory(atPath: instance.root.path))?.filter { $0.hasPrefix("got-") } ?? []
            return !runs.isEmpty
        }
        try instance.waitUntil("its copy is complete", timeout: 5) {
            FileManager.default.contents(atPath: instance.path(runs[0])) == body
        }
        #expect(FileManager.default.contents(atPath: instance.path(".orchestrator/events/\(event)")) == body, "kept with the event")
        expectQuiet(for: 1, "a second run of the hook") {
            ((try? FileManager.default.contentsOfDirectory(atPath: instance.root.path))?.filter { $0.hasPrefix("got-") }.count ?? 0) > 1
        }
        let tasks = try #require(try api.get("/api/v1/tasks").object?["tasks"] as? [[String: Any]])
        #expect(tasks.first { $0["name"] as? String == "hook" }?["executions"] as? Int == 1)

        // Without a body the task runs without ORCH_EVENT_FILE.
        #expect(try api.post("/api/v1/events/hook", json: nil).status == 202)
        try instance.waitUntil("the second hook ran", timeout: 10) {
            ((try? FileManager.default.contentsOfDirectory(atPath: instance.root.path))?.filter { $0.hasPrefix("got-") }.count ?? 0) == 2
        }
        let second = try #require(try FileManager.default.contentsOfDirectory(atPath: instance.root.path).filter { $0.hasPrefix("got-") && $0 != runs[0] }.first)
        #expect(try String(contentsOfFile: instance.path(second), encoding: .utf8) == "none\n")

        let tooLarge = try api.send("POST", "/api/v1/events/hook", body: Data(count: (1 << 20) + 1), contentType: "application/octet-stream")
        #expect(tooLarge.status == 413)
        #expect(try api.post("/api/v1/events/bad%20name", json: nil).status == 400)
        // `urllib.parse.quote("web:hook")` and the like encode the colon.
        #expect(try api.post("/api/v1/events/web%3Ahook", json: nil).status == 202)
        #expect(try api.post("/api/v1/events/web%3", json: nil).status == 400)
        #expect(try api.post("/api/v1/events/nobody.listens", json: nil).status == 202, "recorded whether or not a task listens")
        try api.validate()
        #expect(instance.stopDaemon() == 0)
    }

    @Test func aQueuedEventRunKeepsItsBodyAcrossARestart() throws {
        // The restart's stop finds the blocker running (it is cut short and runs again after the start): a short grace
        // ends it at once rather than after 5 s.
        let (instance, api) = try started(grace: "500ms")
        try instance.drop("block")
        try instance.waitUntil("the blocker runs", timeout: 10) {
            (try api.get("/api/v1/status").object?["running"] as? [Any])?.count == 1
        }
        #expect(try api.send("POST", "/api/v1/events/hook", body: Data("kept\n".utf8), contentType: "text/plain").status == 202)
        try instance.waitUntil("the hook run is queued", timeout: 10) {
            (try api.get("/api/v1/jobs?task=hook&state=queued").object?["jobs"] as? [Any])?.count == 1
        }
        #expect(instance.stopDaemon() == 0)

        _ = FileManager.default.createFile(atPath: instance.path("release"), contents: nil)
        try instance.startDaemon()
        var runs: [String] = []
        try instance.waitUntil("the recovered hook run ran", timeout: 15) {
            runs = (try? FileManager.default.contentsOfDirectory(atPath: instance.root.path))?.filter { $0.hasPrefix("got-") } ?? []
            return runs.count == 1 && FileManager.default.contents(atPath: instance.path(runs[0]))?.isEmpty == false
        }
        #expect(try String(contentsOfFile: instance.path(runs[0]), encoding: .utf8) == "kept\n")
        #expect(instance.stopDaemon() == 0)
        try api.validate(skipDocument: true)
    }

    // MARK: priority, handlers, tasks

    @Test func badJSONAndPriorityAnswer400Or409() throws {
        let (instance, api) = try started()
        try instance.drop("block")
        var blocker = 0
        try instance.waitUntil("the blocker runs", timeout: 10) {
            let running = try api.get("/api/v1/jobs?state=running").object?["jobs"] as? [[String: Any]] ?? []
            blocker = running.first?["job"] as? Int ?? 0
            return blocker != 0
        }
        try instance.drop("waiting.txt")
        var waiting = 0
        try instance.waitUntil("waiting.txt is queued", timeout: 10) {
            let queued = try api.get("/api/v1/jobs?state=queued").object?["jobs"] as? [[String: Any]] ?? []
            waiting = queued.first?["job"] as? Int ?? 0
            return waiting != 0
        }
        #expect(try api.send("POST", "/api/v1/jobs/\(waiting)/priority", body: Data("{\"priority\": 3".utf8)).status == 400, "bad JSON")
        #expect(try api.send("POST", "/api/v1/jobs/\(waiting)/priority", body: Data("[3]".utf8)).status == 400, "not an object")
        #expect(try api.post("/api/v1/jobs/\(waiting)/priority", json: [:]).status == 400, "no priority")
        #expect(try api.post("/api/v1/jobs/\(waiting)/priority", json: ["priority": 11]).status == 400)
        #expect(try api.post("/api/v1/jobs/\(waiting)/priority", json: ["priority": 0]).status == 400)
        #expect(try api.post("/api/v1/jobs/\(waiting)/priority", json: ["priority": "9"]).status == 400)
        #expect(try api.post("/api/v1/jobs/\(waiting)/priority", json: ["priority": 9, "extra": 1]).status == 400)
        #expect(try api.post("/api/v1/jobs/\(blocker)/priority", json: ["priority": 9]).status == 409, "a running job")
        #expect(try api.post("/api/v1/jobs/99999/priority", json: ["priority": 9]).status == 404)
        let set = try api.post("/api/v1/jobs/\(waiting)/priority", json: ["priority": 9])
        #expect(set.status == 200)
        #expect(try api.get("/api/v1/jobs/\(waiting)").object?["priority"] as? Int == 9)

        #expect(try api.post("/api/v1/handlers/nope/pause", json: nil).status == 404)
        #expect(try api.post("/api/v1/handlers/test/pause", json: nil).object?["paused"] as? Bool == true)
        #expect(try api.get("/api/v1/status").object?["paused_handlers"] as? [String] == ["test"])
        #expect(try api.post("/api/v1/handlers/test/resume", json: nil).status == 200)
        #expect(try api.get("/api/v1/status").object?["paused_handlers"] as? [String] == [])
        #expect(try api.post("/api/v1/tasks/nope/run", json: nil).status == 404)
        #expect(try api.post("/api/v1/tasks/nope/disable", json: nil).status == 404)
        #expect(try api.post("/api/v1/tasks/nightly/disable", json: nil).status == 200)
        let nightly = { try #require(try api.get("/api/v1/tasks").object?["tasks"] as? [[String: Any]]).first { $0["name"] as? String == "nightly" } }
        #expect(try nightly()?["enabled"] as? Bool == false)
        #expect(try api.post("/api/v1/tasks/nightly/enable", json: nil).status == 200)
        #expect(try nightly()?["enabled"] as? Bool == true)
        // Names come percent-encoded from most clients (a task named "my task" as my%20task): decoded, not "no task".
        #expect(try api.post("/api/v1/tasks/night%6Cy/disable", json: nil).status == 200)
        #expect(try nightly()?["enabled"] as? Bool == false)
        #expect(try api.post("/api/v1/tasks/night%6cy/enable", json: nil).status == 200)
        #expect(try api.post("/api/v1/handlers/t%65st/pause", json: nil).object?["paused"] as? Bool == true)
        #expect(try api.post("/api/v1/handlers/test/resume", json: nil).status == 200)

        _ = FileManager.default.createFile(atPath: instance.path("release"), contents: nil)
        try instance.waitUntil("both are done", timeout: 10) { instance.count(in: "Done") == 2 }
        try api.validate()
        #expect(instance.stopDaemon() == 0)
    }

    // MARK: reload

    @Test func reloadAnswersWithTheLoadTimeOrEveryProblem() throws {
        let (instance, api) = try started()
        let before = try api.get("/api/v1/status").object?["config_loaded_at"] as? String
        let good = try String(contentsOf: instance.configURL, encoding: .utf8)
        try (good + "\n[[task]]\nname = \"added\"\nevery = \"1h\"\ncommand = [\"/bin/true\"]\n")
            .write(to: instance.configURL, atomically: true, encoding: .utf8)
        let reloaded = try api.post("/api/v1/reload", json: nil)
        #expect(reloaded.status == 200)
        let loadedAt = try #require(reloaded.object?["config_loaded_at"] as? String)
        #expect(loadedAt != before)
        try instance.waitUntil("status shows the new load time", timeout: 5) {
            try api.get("/api/v1/status").object?["config_loaded_at"] as? String == loadedAt
        }
        #expect(try api.post("/api/v1/tasks/added/run", json: nil).status == 200, "the API works with the config in force")

        try (good + "\n[limits2]\nx = 1\n[[task]]\nname = \"broken\"\nevery = \"soon\"\ncommand = [\"/bin/true\"]\n")
            .write(to: instance.configURL, atomically: true, encoding: .utf8)
        let refused = try api.post("/api/v1/reload", json: nil)
        #expect(refused.status == 400)
        let problems = try #require(refused.object?["problems"] as? [String])
        #expect(problems.count == 2, "\(problems)")
        #expect(problems.allSatisfy { $0.hasPrefix(instance.configURL.path + ":") && $0.contains(": error: ") }, "\(problems)")
        #expect(try api.get("/api/v1/status").object?["config_loaded_at"] as? String == loadedAt, "the old config stays")

        try good.replacingOccurrences(of: "127.0.0.1:0", with: "127.0.0.1:1").write(to: instance.configURL, atomically: true, encoding: .utf8)
        let moved = try api.post("/api/v1/reload", json: nil)
        #expect(moved.status == 400)
        #expect((moved.object?["problems"] as? [String])?.first?.contains("[http] listen changed") == true)
        try api.validate()
        #expect(instance.stopDaemon() == 0)
    }

    // MARK: start

    /// Hundreds of connections held open with half a request (a client gone quiet, or slowloris) take at most an eighth
    /// of the daemon's descriptors: files still run and reach Done. Before, the daemon accepted until its limit, and no
    /// worker could start (no descriptors for its pipes), with its CPU spinning.
    @Test func aFloodOfIdleConnectionsLeavesTheWorkersTheirDescriptors() throws {
        let instance = try TestInstance(config: Self.config())
        try instance.startDaemon(openFileLimit: 128)
        let port = try #require(URL(string: try instance.apiBase())?.port)
        let flood = try PythonHolder(script: """
            import socket, sys
            held = []
            for _ in range(400):
                s = socket.socket()
                s.settimeout(1)
                try:
                    s.connect(("127.0.0.1", int(sys.argv[1])))
                    s.send(b"GET /api/v1/status HTTP/1.1\\r\\nHost: x\\r\\n")
                except OSError:
                    break
                held.append(s)
            print(len(held), flush=True)
            sys.stdin.read()
            """, arguments: ["\(port)"])
        let held = Int(flood.report()) ?? 0
        #expect(held > 100, "the flood held \(held) connections")
        for index in 1...5 { try instance.drop("f\(index).txt") }
        try instance.waitUntil("every file is done while the connections are held", timeout: 30) { instance.count(in: "Done") == 5 }
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(try #require(instance.daemon).processIdentifier)/fd").count
        #expect(descriptors < 128 - 32, "the daemon holds \(descriptors) descriptors")
        // The flood's connections wait for a request they never finish: the longest waiting makes room for a client
        // that asks (they held every place until their idle timeout, 60 s, and could simply be opened again).
        let api = APIClient(base: try instance.apiBase(), token: nil)
        #expect(try api.get("/api/v1/status").status == 200)
        flood.release()
        #expect(try api.get("/api/v1/status").status == 200)
        #expect(instance.stopDaemon() == 0)
    }

    /// An HTTP/1.0 client without keep-alive (and one that says `Connection: Close`) reads the answer to its end:
    /// the daemon closes the connection once it has answered. Before, it stayed open until the idle timeout (60 s),
    /// so such a client waited that long for the end of an answer without a length, holding one of the places.
    @Test func aConnectionThatIsNotKeptAliveIsClosedOnceAnswered() throws {
        let instance = try TestInstance(config: Self.config())
        try instance.startDaemon()
        let port = try #require(URL(string: try instance.apiBase())?.port)
        let client = try PythonHolder(script: """
            import socket, sys, time
            results = []
            for request in (b"GET /api/v1/status HTTP/1.0\\r\\n\\r\\n",
                            b"GET /api/v1/status HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: Close\\r\\n\\r\\n"):
                s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
                s.settimeout(20)
                s.sendall(request)
                started, answer = time.monotonic(), b""
                try:
                    while chunk := s.recv(65536):
                        answer += chunk
                    results.append("eof %.1f %s" % (time.monotonic() - started, answer.split(b"\\r\\n")[0].decode()))
                except socket.timeout:
                    results.append("open after 20 s")
            print(" | ".join(results), flush=True)
            sys.stdin.read()
            """, arguments: ["\(port)"])
        let report = client.report()
        client.release()
        let results = report.split(separator: " | ").map(String.init)
        #expect(results.count == 2 && results.allSatisfy { $0.hasPrefix("eof ") && $0.hasSuffix(" 200 OK") }, "\(report)")
        #expect(results.allSatisfy { (Double($0.split(separator: " ")[1]) ?? 99) < 10 }, "\(report)")
        #expect(instance.stopDaemon() == 0)
    }

    @Test func aTakenPortStopsWatchWith69AndOneLine() throws {
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, length) } }
        _ = listen(holder, 1)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(holder, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))

        let instance = try TestInstance(config: Self.config(listen: "127.0.0.1:\(port)") + """

            [[task]]
            name = "boot"
            cron = "@reboot"
            command = ["/bin/sh", "-c", "echo boot >> ../ran.log"]
            """)
        try instance.drop("waiting.txt")
        let watch = try instance.run(["watch"], timeout: 30)
        #expect(watch.status == 69)
        let errors = watch.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
        #expect(errors == ["error: http: cannot listen on 127.0.0.1:\(port): Address already in use"], "\(watch.stderr)")
        // Refused before it claimed or ran anything (it used to claim and run files, then stop for the port).
        #expect(!watch.stderr.contains("started") && !watch.stderr.contains("signal=SIGTERM"), "\(watch.stderr)")
        #expect(instance.count(in: "Inbox") == 1 && instance.count(in: "Done") == 0 && instance.count(in: "Inbox/.processing") == 0)
        #expect(instance.lines(of: "ran.log").isEmpty, "the @reboot task ran")
    }
}

/// A small HTTP client for the tests: synchronous, with a timeout, recording every answer for `validate`.
final class APIClient: @unchecked Sendable {
    struct Answer {
        let status: Int
        let body: Data
        let contentType: String
        var object: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    }

    let base: String
    let token: String?
    private let lock = NSLock()
    private var recorded: [[String: Any]] = []

    init(base: String, token: String?) {
        self.base = base
        self.token = token
    }

    /// `token`: nil sends the client's own; `.some(nil)` sends none.
    func get(_ path: String, token: String?? = nil) throws -> Answer { try send("GET", path, token: token) }

    func post(_ path: String, json: Any?, token: String?? = nil) throws -> Answer {
        let body = try json.map { try JSONSerialization.data(withJSONObject: $0) }
        return try send("POST", path, body: body, contentType: "application/json", token: token)
    }

    func send(_ method: String, _ path: String, body: Data? = nil, contentType: String? = nil, token: String?? = nil) throws -> Answer {
        var request = URLRequest(url: try #require(URL(string: base + path)), timeoutInterval: 15)
        request.httpMethod = method
        request.httpBody = body
        if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        if let bearer = token ?? self.token { request.setValue("Bearer \(bearer)", forHTTPHeaderField: "Authorization") }
        let done = DispatchSemaphore(value: 0)
        let result = LockedResult()
        URLSession.shared.dataTask(with: request) { data, response, error in
            result.set(data, response as? HTTPURLResponse, error)
            done.signal()
        }.resume()
        guard done.wait(timeout: .now() + 20) == .success else { throw TimedOut(description: "\(method) \(path) got no answer in 20 s") }
        let (data, response, error) = result.get()
        if let error { throw error }
        let http = try #require(response)
        let answer = Answer(
            status: http.statusCode, body: data ?? Data(), contentType: http.value(forHTTPHeaderField: "Content-Type") ?? "")
        lock.withLock {
            recorded.append([
                "method": method, "path": path, "status": answer.status, "content_type": answer.contentType,
                "body": String(decoding: answer.body, as: UTF8.self),
            ])
        }
        return answer
    }

    /// Every answer so far against the OpenAPI document the daemon serves.
    /// `skipDocument`: the daemon is gone; the repository's copy of the document is used.
    func validate(skipDocument: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let documentPath = NSTemporaryDirectory() + "openapi-\(UUID().uuidString).json"
        if skipDocument {
            let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            try Data(contentsOf: repository.appendingPathComponent("Sources/OrchestratorHTTP/openapi.json")).write(to: URL(fileURLWithPath: documentPath))
        } else {
            try get("/api/v1/openapi.json").body.write(to: URL(fileURLWithPath: documentPath))
        }
        defer { unlink(documentPath) }
        let lines = try lock.withLock { try recorded.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) } }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Support/openapi_validate.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, documentPath]
        let input = Pipe()
        let outputPath = documentPath + ".out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { unlink(outputPath) }
        process.standardInput = input
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardError = process.standardOutput
        try process.run()
        input.fileHandleForWriting.write(Data(lines.joined(separator: "\n").utf8))
        try input.fileHandleForWriting.close()
        guard waitForExit(process, within: 60, "the OpenAPI validator") else { return }
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "responses that do not match the OpenAPI document:\n\(output)", sourceLocation: sourceLocation)
    }
}

private final class LockedResult: @unchecked Sendable {
    private let lock = NSLock()
    private var value: (Data?, HTTPURLResponse?, (any Error)?) = (nil, nil, nil)
    func set(_ data: Data?, _ response: HTTPURLResponse?, _ error: (any Error)?) { lock.withLock { value = (data, response, error) } }
    func get() -> (Data?, HTTPURLResponse?, (any Error)?) { lock.withLock { value } }
}
