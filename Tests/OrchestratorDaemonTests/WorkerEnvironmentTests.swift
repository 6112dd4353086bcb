import OrchestratorCore
import OrchestratorPlatform
import Testing

@testable import OrchestratorDaemon

@Suite struct WorkerEnvironmentTests {
    let base = [Array("PATH=/usr/bin".utf8), Array("ORCH_STATE_DIR=/srv/o/state".utf8)]
    let processing = PathBytes("/srv/o/Inbox/.processing")
    let done = PathBytes("/srv/o/Done")

    func variables(_ environment: [[UInt8]]) -> [String] { environment.map { String(decoding: $0, as: UTF8.self) } }

    @Test func aFileJobGetsItsPathInTheProcessingAreaAndItsName() {
        let (values, environment) = WorkerEnvironment.forAttempt(
            base, owner: .handler("pdf"), name: RelativePath("sub/a b.pdf"), jobID: 7, attempt: 2, processing: processing,
            done: done, eventBody: nil)
        #expect(values.file == Array("/srv/o/Inbox/.processing/sub/a b.pdf".utf8) && values.name == RelativePath("sub/a b.pdf"))
        #expect(values.job == 7 && values.attempt == 2)
        #expect(
            variables(environment) == [
                "PATH=/usr/bin", "ORCH_STATE_DIR=/srv/o/state", "ORCH_FILE=/srv/o/Inbox/.processing/sub/a b.pdf",
                "ORCH_NAME=sub/a b.pdf", "ORCH_HANDLER=pdf", "ORCH_JOB_ID=7", "ORCH_ATTEMPT=2",
            ])
    }

    @Test func anUploadGetsItsFilesPathInDone() {
        let (values, environment) = WorkerEnvironment.forAttempt(
            base, owner: .upload("pdf"), name: RelativePath("a.pdf"), jobID: 9, attempt: 1, processing: processing, done: done,
            eventBody: nil)
        #expect(values.file == Array("/srv/o/Done/a.pdf".utf8))
        #expect(variables(environment).contains("ORCH_FILE=/srv/o/Done/a.pdf") && variables(environment).contains("ORCH_HANDLER=pdf"))
    }

    @Test func aTaskHasNoFileAndItsEventBodyOnlyWhenThereIsOne() {
        let (values, environment) = WorkerEnvironment.forAttempt(
            base, owner: .task("nightly"), name: RelativePath([]), jobID: 3, attempt: 1, processing: processing, done: done,
            eventBody: nil)
        #expect(values.file.isEmpty)
        #expect(variables(environment) == ["PATH=/usr/bin", "ORCH_STATE_DIR=/srv/o/state", "ORCH_TASK=nightly", "ORCH_JOB_ID=3", "ORCH_ATTEMPT=1"])
        let (_, withEvent) = WorkerEnvironment.forAttempt(
            base, owner: .task("on-upload"), name: RelativePath([]), jobID: 4, attempt: 1, processing: processing, done: done,
            eventBody: PathBytes("/srv/o/state/events/12.json"))
        #expect(variables(withEvent).contains("ORCH_EVENT_FILE=/srv/o/state/events/12.json"))
        #expect(!variables(withEvent).contains { $0.hasPrefix("ORCH_FILE=") })
    }
}
