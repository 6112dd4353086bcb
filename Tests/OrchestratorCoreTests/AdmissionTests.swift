import Testing

@testable import OrchestratorCore

@Suite struct AdmissionTests {
    let policy = AdmissionPolicy(maxConcurrent: 4, maxCPU: 80, maxMemory: 85)

    @Test func estimatesMustFitBesideWhatRuns() {
        let sixty = LoadEstimate(cpu: 60, memory: 10)
        #expect(policy.decide(candidate: sixty, running: sixty, runningCount: 1, host: nil)
            == .wait(reason: "estimates: running 60% + next 60% CPU > max_cpu_percent 80", retryLater: false, limit: .cpuEstimates))
        #expect(policy.decide(candidate: LoadEstimate(cpu: 20), running: sixty, runningCount: 1, host: nil) == .admit)
        let heavy = LoadEstimate(memory: 50)
        #expect(policy.decide(candidate: heavy, running: heavy, runningCount: 1, host: nil)
            == .wait(reason: "estimates: running 50% + next 50% memory > max_memory_percent 85", retryLater: false, limit: .memoryEstimates))
    }

    @Test func aJobLargerThanTheLimitsRunsWhenNothingElseDoes() {
        let huge = LoadEstimate(cpu: 150, memory: 90)
        let busyHost = HostLoad(otherCPU: 99, memory: 99)
        #expect(policy.decide(candidate: huge, running: .none, runningCount: 0, host: busyHost) == .admit)
        #expect(policy.decide(candidate: .none, running: huge, runningCount: 1, host: nil) != .admit)
    }

    @Test func aBusyHostHoldsNewWorkBackAndSaysWhy() {
        let decision = policy.decide(candidate: .none, running: .none, runningCount: 1, host: HostLoad(otherCPU: 92.5, memory: 40))
        #expect(decision == .wait(reason: "host CPU used by other processes 92.5% >= max_cpu_percent 80", retryLater: true, limit: .hostCPU))
        #expect(policy.decide(candidate: .none, running: .none, runningCount: 1, host: HostLoad(otherCPU: 10, memory: 90))
            == .wait(reason: "host memory in use 90% >= max_memory_percent 85", retryLater: true, limit: .hostMemory))
        #expect(policy.decide(candidate: .none, running: .none, runningCount: 4, host: nil)
            == .wait(reason: "max_concurrent 4 reached", retryLater: false, limit: .maxConcurrent))
    }

    @Test func procFilesAreParsed() throws {
        let stat = "cpu  100 5 50 1000 20 3 2 0 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n"
        let machine = try #require(ProcStat.machineTicks(stat))
        #expect(machine.total == 1180)
        #expect(machine.busy == 160)
        let process = "1234 (a worker) with) spaces) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 999 0 0"
        #expect(ProcStat.processTicks(process) == 13)
        let meminfo = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n"
        #expect(ProcStat.memoryPercent(meminfo) == 75)
        let other = ProcStat.otherCPUPercent(
            machineBefore: (busy: 100, total: 1000), machineAfter: (busy: 180, total: 1200), oursBefore: 10, oursAfter: 50)
        #expect(other == 20)
    }
}
