import DequeModule
import OrchestratorConfig
import OrchestratorCore
import OrchestratorStore

/// Circuit breakers per handler and task: jobs whose breaker is open wait in `breaker_wait` without
/// spending attempts; after the cooldown one of them runs as the probe.
extension Dispatcher {
    static func makeBreakers(_ config: Config) -> [JobOwner: CircuitBreaker] {
        var breakers: [JobOwner: CircuitBreaker] = [:]
        for handler in config.handlers {
            if let breaker = handler.breaker { breakers[.handler(handler.name)] = Self.breaker(breaker) }
        }
        for task in config.tasks {
            if let breaker = task.breaker { breakers[.task(task.name)] = Self.breaker(breaker) }
        }
        return breakers
    }

    private static func breaker(_ settings: Breaker) -> CircuitBreaker {
        CircuitBreaker(threshold: settings.failures, cooldown: UInt64(max(0, settings.cooldown.wholeMilliseconds)))
    }

    func ownerName(_ owner: JobOwner) -> String {
        switch owner {
        case .handler(let name): "handler \(name)"
        case .task(let name): "task \(name)"
        case .upload(let name): "uploads of handler \(name)"
        }
    }

    /// Whether the job's breaker lets it start now; if not, the job is parked in `breaker_wait`.
    func breakerAdmits(_ job: LiveJob) -> Bool {
        guard var breaker = breakers[job.owner] else { return true }
        let admitted = breaker.admit(at: now)
        let wasProbe = breakers[job.owner]?.state != breaker.state
        breakers[job.owner] = breaker
        if admitted {
            if wasProbe {
                logger.info("circuit half-open; one trial run", metadata: ["owner": "\(ownerName(job.owner))", "job": "\(job.id)"])
                persistBreaker(job.owner)
            }
            return true
        }
        park(job)
        return false
    }

    private func park(_ job: LiveJob) {
        let jobID = job.id
        jobs[jobID]?.state = .breakerWait
        breakerParked[job.owner, default: []].append(jobID)
        let wallNow = Self.wallClock()
        let detail = "circuit open for \(ownerName(job.owner))"
        recordTransition(jobID: jobID, from: .queued, to: .breakerWait, detail: detail, at: wallNow)
        armBreakerTimer(job.owner)
    }

    private func armBreakerTimer(_ owner: JobOwner) {
        guard breakerTimers[owner] == nil, let reopensAt = breakers[owner]?.reopensAt else { return }
        breakerTimers[owner] = schedule(.breakerCooldown(owner), after: millisecondsUntil(reopensAt))
    }

    /// The cooldown is over: the oldest parked job goes back to the queue as the probe.
    func breakerCooldownOver(_ owner: JobOwner) {
        breakerTimers[owner] = nil
        release(owner, count: 1)
    }

    func release(_ owner: JobOwner, count: Int) {
        var released = 0
        let wallNow = Self.wallClock()
        while released < count, let jobID = breakerParked[owner]?.popFirst() {
            guard var job = jobs[jobID], job.state == .breakerWait else { continue }
            job.state = .queued
            jobs[jobID] = job
            enqueue(job)
            recordTransition(jobID: jobID, from: .breakerWait, to: .queued, detail: "circuit let it through", at: wallNow)
            released += 1
        }
    }

    func breakerSucceeded(_ owner: JobOwner) {
        guard var breaker = breakers[owner] else { return }
        let wasOpen = breaker.isOpen
        let hadFailures = breaker.consecutiveFailures > 0
        breaker.recordSuccess()
        breakers[owner] = breaker
        if wasOpen {
            logger.info("circuit closed", metadata: ["owner": "\(ownerName(owner))"])
            persistBreaker(owner)
            release(owner, count: Int.max)
        } else if hadFailures {
            // The stored count of failures in a row goes back to 0; a success after a success writes nothing.
            persistBreaker(owner)
        }
    }

    func breakerFailed(_ owner: JobOwner) {
        guard var breaker = breakers[owner] else { return }
        let opened = breaker.recordFailure(at: now)
        breakers[owner] = breaker
        if opened {
            metrics?.breakerOpened(owner.metered)
            logger.warning(
                "circuit open", metadata: [
                    "owner": "\(ownerName(owner))", "failures": "\(breaker.consecutiveFailures)",
                    "cooldown": "\(breaker.cooldown)ms",
                ])
            armBreakerTimer(owner)
        }
        persistBreaker(owner)
    }

    func breakerNoVerdict(_ owner: JobOwner) {
        guard var breaker = breakers[owner] else { return }
        breaker.recordNoVerdict()
        breakers[owner] = breaker
    }

    /// `status` shows breakers from the store.
    private func persistBreaker(_ owner: JobOwner) {
        guard let breaker = breakers[owner] else { return }
        let name = ownerName(owner)
        let state: String
        var openUntil: Double?
        switch breaker.state {
        case .closed: state = "closed"
        case .open(let until):
            state = "open"
            openUntil = Self.wallClock() + Double(millisecondsUntil(until)) / 1000
        case .halfOpen: state = "half_open"
        }
        let failures = breaker.consecutiveFailures
        let (wallNow, node) = (Self.wallClock(), config.node.name)
        record {
            try $0.setBreaker(node: node, owner: name, state: state, consecutiveFailures: failures, openUntil: openUntil, at: wallNow)
        }
    }
}
