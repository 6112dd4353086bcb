#if canImport(Glibc)
import Glibc
#endif
import OrchestratorConfig
import OrchestratorCore
import OrchestratorPlatform
import OrchestratorStore

/// Watching, settling, scanning and claiming files.
extension Dispatcher {
    /// How far claims run ahead of the workers, and when they start again (see `ClaimPacing`). The rest of a backlog
    /// or a burst stays in Inbox, visible and removable, and memory stays flat.
    var pacing: ClaimPacing { ClaimPacing(maxConcurrent: config.limits.maxConcurrent) }

    /// How many files may be claimed in this cycle.
    var claimRoom: Int { pacing.room(queued: readyCount, uncommitted: newClaims.count) }

    func handleWatchEvents(_ events: [WatchEvent]) {
        let rules = InboxIntake.Rules(
            isInput: { [config] in config.isInput($0) }, recursive: config.inbox.recursive,
            skipsFolder: { [config] in config.skipsFolder($0) },
            // Asked of the book as it is at each event: a creation earlier in the same read may have just started one.
            isSettling: { [unowned self] in settling.isSettling($0) })
        for event in events {
            switch InboxIntake.step(for: event, rules) {
            case nil: continue
            case .claim(let name): claimInTurn(name)
            case .activity(let name, let writer): noteActivity(name, writer: writer)
            case .arrived(let name): arrived(name)
            case .watchFolder(let name):
                if let watcher { watchTree(at: name, with: watcher) }
                startScan(reason: "new folder")
            case .rescan:
                metrics?.inotifyOverflowed()
                logger.warning("inotify queue overflowed; rescanning Inbox (raise fs.inotify.max_queued_events)")
                for (name, due) in settling.forgetWriters(at: now) { settling.armed(name, wheel.schedule(at: due, .settle(name))) }
                startScan(reason: "overflow")
            case .recreateInbox:
                logger.critical("Inbox \(layout.inbox) was removed or moved away; recreating it and rescanning")
                recreateInboxWatch()
            }
        }
    }

    func wants(_ name: RelativePath) -> Bool { config.isInput(name) }

    /// A new entry: a hard link (`link()` brings no other event) or anything that is not a regular file is
    /// complete as it stands and claimed at once; a file being written waits for `settle`.
    func arrived(_ name: RelativePath) {
        guard !phase.isStopping, let status = FileSystem.status(layout.inbox.appending(name)), status.isInboxEntry else { return }
        if SettleBook<TimerHandle>.completeOnArrival(status, wallNanoseconds: Self.wallNanoseconds(), settle: settling.settle) {
            claimInTurn(name)
        } else {
            noteActivity(name)
        }
    }

    static func wallNanoseconds() -> Int64 { Int64(wallClock() * 1e9) }

    // MARK: Settling

    /// A file written in place counts as arrived once `settle` has passed with its size and mtime unchanged.
    func noteActivity(_ name: RelativePath, writer: SettleBook<TimerHandle>.Writer = .unknown) {
        guard !phase.isStopping else { return }
        guard let status = FileSystem.status(layout.inbox.appending(name)), status.isInboxEntry else { return }
        let time = now
        if let due = settling.activity(name, status, at: time, writer: writer) {
            settling.armed(name, wheel.schedule(at: due, .settle(name)))
        }
    }

    func settleTimerFired(_ name: RelativePath) {
        let time = now
        switch settling.timerFired(name, FileSystem.status(layout.inbox.appending(name)), at: time) {
        case .complete: claimInTurn(name)
        case .lookAgain(let due): settling.armed(name, wheel.schedule(at: due, .settle(name)))
        case .waitingForClose, .forgotten: break
        }
    }

    // MARK: Scanning

    /// Starts a walk of Inbox; the directory listing is the truth that events only hint at.
    func startScan(reason: String) {
        guard !phase.isStopping else { return }
        // Inbox is not the one watched (a walk finds what events missed): on a shared store, it must still be the store's.
        if claimsJobs, !FileSystem.status(layout.inbox).isSame(as: watchedInbox), !foldersAreTheStores() { return }
        if scan != nil {
            // A walk in progress may already be past the new files: walk again once it ends.
            rescanRequested = true
            return
        }
        logger.debug("scanning Inbox", metadata: ["reason": "\(reason)"])
        metrics?.inboxScanStarted(reason: reason)
        unreachableInInbox.walkStarted()
        scan = DirectoryCursor(root: layout.inbox, recursive: config.inbox.recursive) { [config] directory in
            config.skipsFolder(directory)
        }
    }

    /// Pulls the next slice of an Inbox walk while the queue has room for it.
    func continueScan() {
        guard let cursor = scan, phase.admitsNewWork else { return }
        guard claimRoom > 0 else { return }
        let wallNanos = Self.wallNanoseconds()
        let silence = UInt64(max(0, config.sweeps.ingest.wholeMilliseconds))
        for file in cursor.next(limit: 256) where wants(file.path) {
            if settling.isSettling(file.path) {
                if settling.writerWentSilent(file.path, file.status, at: now, after: silence) {
                    logger.warning("no close came for a file created in Inbox, unchanged for an ingest interval; taking it as complete", metadata: ["file": "\(file.path)"])
                    claim(file.path)
                }
                continue
            }
            if names.isTaken(file.path) {
                // Looked at again when the job holding the name ends.
                names.wait(file.path)
                continue
            }
            if SettleBook<TimerHandle>.completeOnArrival(file.status, wallNanoseconds: wallNanos, settle: settling.settle) {
                claim(file.path)
                scanClaimed += 1
            } else {
                noteActivity(file.path)
            }
        }
        if cursor.isFinished {
            scan = nil
            unreachableInInbox.walkFound(count: cursor.tooLongCount, examples: cursor.tooLong)
            noteSweep("ingest", "\(scanClaimed) files found that no event announced", items: scanClaimed)
            scanClaimed = 0
            if rescanRequested {
                rescanRequested = false
                startScan(reason: "requested during a scan")
            }
        }
        // More to read and room for it: come back after the events that queued up meanwhile.
        if scan != nil, claimRoom > 0 { scheduleCycle() }
    }

    /// The watchdog sweep under `watch`: disk space, runs past their timeout (ended here), the inotify watch
    /// (re-established if Inbox was replaced). Writes the health snapshot and fires `error.critical` when
    /// the daemon becomes unhealthy.
    func watchdogSweep() {
        guard !phase.isStopping else { return }
        let facts = watchdogFacts()
        let review = WatchdogReview(facts)
        for action in review.actions {
            switch action {
            case .retryStuckMoves:
                retryStuckMoves()
            case .endOverdue(let jobID):
                timeoutReached(jobID)
            case .restartWatch:
                startWatching()
                startScan(reason: "watch restarted")
            case .rewatchReplacedInbox:
                logger.warning("Inbox \(layout.inbox) was removed or replaced; watching the one there now (made again if none)")
                recreateInboxWatch()
            }
        }
        adoptOrphanedFiles()
        checkWakeWatch()
        var problems = review.problems
        if review.actions.contains(.rewatchReplacedInbox) {
            // The lock file in the old Inbox went with it, and could not be put back while there was no Inbox: it is
            // now, rather than at the next sweep, so that no second daemon starts on these folders meanwhile.
            problems = problems.filter { !facts.lockProblems.contains($0) } + keepLocksInPlace()
        }
        postStoreTrouble(review.storeTrouble)
        let snapshot = HealthSnapshot(at: Self.wallClock(), by: "daemon", problems: problems, notes: [])
        noteSweep(
            "watchdog", snapshot.healthy ? "healthy" : "unhealthy: " + problems.joined(separator: "; "),
            result: snapshot.healthy ? "healthy" : "unhealthy")
        let (text, node) = (snapshot.json, config.node.name)
        recordForStatus { try $0.setNodeNote(node: node, HealthSnapshot.noteKey, text, at: snapshot.at) }
        if !snapshot.healthy {
            logger.error("unhealthy", metadata: ["problems": "\(problems.joined(separator: "; "))"])
            if lastHealthy { emit("error.critical") }
        } else if !lastHealthy {
            logger.info("healthy again")
        }
        lastHealthy = snapshot.healthy
        armSweep(.watchdogSweep)
    }

    /// A problem the store itself cannot tell `status` (its file is no longer the one the daemon writes) goes on the
    /// status board, which `status` reads beside the store; the board is made again if it went with the state folder.
    private func postStoreTrouble(_ trouble: String?) {
        var repost = trouble != boardStoreTrouble
        if statusBoard?.isInPlace == false, let fresh = StatusBoard(path: Self.statusBoardPath(layout.state)) {
            statusBoard = fresh
            repost = true
        }
        boardStoreTrouble = trouble
        if repost { postBoard() }
    }

    /// Posts the board: the pause or the stop (`headline`, kept for the next post when nil), then the store's trouble,
    /// one per line, so that neither hides the other.
    func postBoard(headline: String? = nil) {
        if let headline { boardHeadline = headline }
        let lines = [boardHeadline, boardStoreTrouble.map { Self.unhealthyBoardPrefix + $0 } ?? ""].filter { !$0.isEmpty }
        statusBoard?.post(lines.joined(separator: "\n"))
    }

    static let unhealthyBoardPrefix = "unhealthy: "

    /// Makes the state folder again if it was removed (nothing else: `lstat` says ENOENT); a problem to report if it
    /// cannot be made, or if its path is a symlink to nothing.
    private func stateFolderMissing() -> String? {
        var info = stat()
        guard layout.state.withCString({ lstat($0, &info) }) != 0, errno == ENOENT else {
            if (info.st_mode & S_IFMT) == S_IFLNK, !FileSystem.exists(layout.state.appending(RelativePath("."))) {
                return "the state folder \(layout.state) is a symlink to nothing; its lock and the status board cannot be kept"
            }
            return nil
        }
        logger.warning("the state folder \(layout.state) was removed; making it again")
        guard layout.state.withCString({ mkdir($0, 0o755) }) == 0 else {
            return "the state folder \(layout.state) was removed and cannot be made again: \(String(cString: strerror(errno)))"
        }
        return nil
    }

    /// What the watchdog sweep looks at: the disk, the pause, stuck moves, running attempts, Inbox's watch, the lock
    /// files (put back here when removed) and the state database.
    private func watchdogFacts() -> WatchdogReview.Facts {
        var facts = WatchdogReview.Facts(diskProblems: HealthChecks.disk(config), now: now, ingestEvery: config.sweeps.ingest.configText)
        if phase.isPausedForDisk { facts.pausedFor = pauseReason.text }
        if let example = stuckMoves.values.first {
            facts.stuck = WatchdogReview.Stuck(count: stuckMoves.count, example: example.job.name, reason: example.reason)
        }
        facts.running = running.compactMap { jobID, attempt in
            jobs[jobID].map {
                WatchdogReview.RunningAttempt(
                    jobID: jobID, name: $0.name, startedAt: attempt.startedAt,
                    timeoutMilliseconds: attempt.spec.timeout.wholeMilliseconds, timedOut: attempt.timedOut)
            }
        }.sorted { $0.jobID < $1.jobID }
        let inbox = FileSystem.status(layout.inbox)
        if !runs(.lister) {
            facts.inbox = .notListing
        } else if claimsJobs, foldersAstray != nil || !inbox.isSame(as: watchedInbox), !foldersAreTheStores() {
            facts.inbox = .astray(foldersAstray ?? "the folders are not the store's")
        } else if watcher == nil {
            facts.inbox = .notWatching
        } else if !inbox.isSame(as: watchedInbox) {
            facts.inbox = .replaced
        }
        facts.unreachable = unreachableInInbox.problem
        (facts.startShortages, facts.startShortage) = (spawnThrottle.shortagesInARow, spawnThrottle.reason)
        var limit = rlimit()
        if spawnThrottle.outOfDescriptors, getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            facts.openFileLimit = UInt64(limit.rlim_cur)
        }
        // The state folder removed whole: made again, so that its lock is put back and `status` can be told (the board).
        // Only the folder itself: a parent gone too is a mount that went away, not something to make on the disk below.
        if let missing = stateFolderMissing() { facts.lockProblems.append(missing) }
        facts.lockProblems += keepLocksInPlace()
        let files = [(openedDatabase, Self.databasePath(layout.state)), (openedLog, Self.databaseLogPath(layout.state))]
        for case let (opened?, path) in files where !FileSystem.status(path).isSame(as: opened) {
            facts.databaseGone = path.description
            break
        }
        return facts
    }

    /// A lock file removed while the daemon runs (by hand, by a cleaner of old temporary files) would let a second daemon
    /// start on the same folders and run again what this one is running. Put back at each watchdog sweep; one another
    /// process took meanwhile makes the daemon unhealthy, naming it.
    func keepLocksInPlace() -> [String] {
        heldLocks.compactMap { lock in
            switch lock.keepInPlace() {
            case .inPlace:
                return nil
            case .putBack:
                logger.warning("the lock file \(lock.path) was removed or replaced; put back, so that no second daemon starts on these folders")
                return nil
            case .takenBy(let pid):
                return "the lock file \(lock.path) was replaced while the daemon runs, and another process (pid \(pid.map(String.init) ?? "?")) holds the new one: a second daemon may be working on the same folders; stop it"
            case .lost(let reason):
                return "the lock file \(lock.path) was removed and cannot be put back (\(reason)): a second daemon could start on the same folders"
            }
        }
    }

    /// On a shared store every daemon's folders are the store's (`NodeLiveness.checkFolders`, at the start). A symlink
    /// on the way re-pointed while this daemon runs takes its Inbox elsewhere: files claimed there would wait in a
    /// processing area no other daemon of the store looks in. Until the folders are the store's again, Inbox is neither
    /// watched nor walked; the watchdog sweep looks again each time. A store that cannot be read leaves things as they are.
    func foldersAreTheStores() -> Bool {
        let mine = NodeLiveness.folders(config)
        let noted: String?
        do {
            noted = try store.read { try $0.daemonNote(NodeLiveness.foldersNote) }
        } catch {
            logger.warning("cannot read the store's folders to compare them with this daemon's", metadata: ["error": "\(error)"])
            return foldersAstray == nil
        }
        guard let noted, noted != mine else {
            if foldersAstray != nil {
                foldersAstray = nil
                logger.warning("the folders are the store's again; watching Inbox")
            }
            return true
        }
        if foldersAstray == nil {
            foldersAstray = "the folders now resolve to \(mine), not the store's \(noted): Inbox is not watched or walked until they are back"
            logger.critical("\(foldersAstray!)")
            watcher?.cancel()
            watcher = nil
            scan = nil
        }
        return false
    }

    func ingestSweepDue() {
        startScan(reason: "periodic")
        // Without a watch on the wake folder, requests and triggered events are taken here.
        if wakeWatcher == nil, batch == nil { takeRecordedEvents() }
        armSweep(.ingestSweep)
    }

    private func recreateInboxWatch() {
        watcher?.cancel()
        watcher = nil
        do {
            try FileSystem.createDirectories(layout.inbox)
            try FileSystem.createDirectories(layout.processing)
            startWatching()
        } catch {
            logger.critical("cannot recreate Inbox: \(error)")
        }
        startScan(reason: "Inbox recreated")
    }

    func startWatching() {
        do {
            let watcher = try InotifyWatcher(root: layout.inbox, queue: queue, loop: eventLoop) { [unowned self] events in
                post(.watch(events))
            }
            self.watcher = watcher
            watchedInbox = FileSystem.status(layout.inbox)
            if config.inbox.recursive { watchTree(at: RelativePath([]), with: watcher, includingRoot: false) }
        } catch {
            logger.warning(
                "\(error.description); falling back to the ingest sweep's periodic scan every \(config.sweeps.ingest)")
        }
    }

    /// Watches a folder and every folder below it.
    private func watchTree(at top: RelativePath, with watcher: InotifyWatcher, includingRoot: Bool = true) {
        var pending: [RelativePath] = []
        if includingRoot {
            do {
                try watcher.addWatch(top)
            } catch {
                logger.warning("\(error.description); the periodic scan covers this folder")
                return
            }
        }
        pending.append(top)
        while let directory = pending.popLast() {
            for child in DirectoryListing.subdirectories(of: layout.inbox.appending(directory)) {
                let relative = directory.appending(child)
                if config.skipsFolder(relative) { continue }
                do {
                    try watcher.addWatch(relative)
                    pending.append(relative)
                } catch {
                    logger.warning("\(error.description); the periodic scan covers this folder")
                }
            }
        }
    }

    /// Finished files that could not move go to the mover again.
    func retryStuckMoves() {
        // A stuck file whose claim was lost meanwhile is another daemon's now.
        for (jobID, _) in stuckMoves where claimLedger.isLost(jobID) { stuckMoves[jobID] = nil }
        for (jobID, stuck) in stuckMoves where !stuck.retrying {
            stuckMoves[jobID]?.retrying = true
            finishedJobs.append(stuck.job)
        }
    }

    // MARK: Claiming

    /// A file that has arrived whole: claimed in its turn, as the queue has room (see `ArrivalQueue`).
    func claimInTurn(_ name: RelativePath) {
        guard phase.admitsNewWork else { return }
        if let timer = settling.remove(name) { wheel.cancel(timer) }
        arrivals.add(name, priority: config.handler(for: name)?.priority ?? 0)
    }

    /// Claims arrived files while the queue has room, or past it for an urgent one; files the queue had no room for
    /// wait in Inbox (and `arrivals`) for a later cycle, which `runCycle` schedules while some may be claimed.
    func claimArrivals() {
        guard phase.admitsNewWork else { return }
        let names = pacing.take(from: &arrivals, queued: readyCount, uncommitted: newClaims.count) { ready.count(atLeast: $0) }
        // A reload may have made one no input since it arrived.
        for name in names where wants(name) { claim(name) }
    }

    /// Arrivals wait and some may be claimed now (a daemon that only registers claims for other daemons keeps its
    /// ready queue empty, so it claims a queue's worth per cycle until they are all registered).
    var arrivalsCanProceed: Bool {
        phase.admitsNewWork
            && pacing.canTake(from: arrivals, queued: readyCount, uncommitted: newClaims.count) { ready.count(atLeast: $0) }
    }

    /// Takes a file out of Inbox by renaming it into the processing area. The rename is the claim:
    /// only one rename of a name can succeed, so a file is never run twice concurrently.
    func claim(_ name: RelativePath) {
        guard phase.admitsNewWork else { return }
        if let timer = settling.remove(name) { wheel.cancel(timer) }
        if names.isTaken(name) {
            names.wait(name)
            return
        }
        let target = layout.processing.appending(name)
        do {
            if !name.parent.isEmpty {
                do {
                    try FileSystem.createDirectories(target.parent)
                } catch where error.code == EEXIST || error.code == ENOTDIR {
                    // A file of a folder's name is still being processed (`a`, then `a/b`).
                    logger.info("a file of this folder's name is in the processing area; waiting for it", metadata: ["file": "\(name)"])
                    names.wait(name)
                    return
                }
            }
            switch try FileSystem.renameNoReplace(layout.inbox.appending(name), target) {
            case .moved:
                // Looked at after the rename, in the processing area that only the daemon writes: what was
                // looked at is what a worker would get.
                newClaims.append(Claim(name: name, status: FileSystem.status(target)))
                names.claimed(name)
            case .sourceMissing:
                break  // removed or already claimed by a one-shot sweep
            case .destinationExists:
                logger.warning("a file named \(name) is already in the processing area; leaving the new one in Inbox")
                names.wait(name)
            }
        } catch where error.code == ENOENT && !FileSystem.exists(layout.processing) && !recreatingProcessing {
            // Removed by hand (or a cleaner): nothing could be claimed until the next start. Made again, as Inbox is.
            logger.warning("the processing area \(layout.processing) was removed; making it again")
            do {
                try FileSystem.createDirectories(layout.processing)
            } catch {
                logger.critical("cannot make the processing area again: \(error)")
                return
            }
            recreatingProcessing = true
            defer { recreatingProcessing = false }
            claim(name)
        } catch {
            if error.code == ENAMETOOLONG { unreachableInInbox.claimRefused(name) }
            logger.error("cannot claim \(name): \(error)")
        }
    }

    /// Creates the job rows for this cycle's claims so their ids exist before workers start. The cycle's
    /// other pending writes ride in the same transaction: one commit (one fsync) instead of two.
    func commitClaims() {
        guard !newClaims.isEmpty, !phase.isPausedForDisk else { return }
        recordClaims()
    }

    /// Records this cycle's claims as jobs; false if the disk is full (they stay pending).
    @discardableResult
    func recordClaims() -> Bool {
        let claims = newClaims
        let wallNow = Self.wallClock()
        // On a shared store the registering daemon holds a queued file in its queue until a daemon claims it (the
        // store names no owner meanwhile): its name goes with the registration, for a cancel to say whose it is.
        let registered = claimsJobs ? Self.registeredBy + config.node.name : "claimed"
        let recorded = commit("record claimed files") { transaction -> [(RelativePath, Int64, Handler?, String?)] in
            var created: [(RelativePath, Int64, Handler?, String?)] = []
            for claim in claims {
                switch claim.verdict(handler: config.handler(for: claim.name)) {
                case .queue(let handler):
                    let id = try transaction.insertJob(
                        kind: .file, name: claim.name, handler: handler.name, state: .queued, priority: handler.priority,
                        maxAttempts: handler.maxAttempts, detail: registered, claim: claim.identity, at: wallNow)
                    created.append((claim.name, id, handler, nil))
                case .fail(let reason, let detail):
                    let id = try transaction.insertJob(
                        kind: .file, name: claim.name, handler: nil, state: .failed, priority: 0, maxAttempts: 0,
                        reason: reason, detail: detail, claim: claim.identity, at: wallNow)
                    created.append((claim.name, id, nil, reason))
                }
            }
            return created
        }
        // Not recorded (the disk is full): the claims stay pending and are recorded when space returns.
        guard let created = recorded else { return false }
        newClaims.removeFirst(claims.count)
        for (name, id, handler, failure) in created {
            if handler != nil, !runs(.worker) {
                // Registered for the workers of the store (told by the commit's announcement); nothing to keep here.
                // Its file in the processing area keeps the name until a worker has moved it out.
                names.assign(name, to: id)
                for waiting in names.release(name, job: id) { noteActivity(waiting) }
                logger.debug("registered", metadata: ["file": "\(name)", "job": "\(id)"])
                continue
            }
            if let handler {
                let job = LiveJob(
                    id: id, name: name, owner: .handler(handler.name), state: .queued, priority: handler.priority,
                    attempts: 0, maxAttempts: handler.maxAttempts)
                jobs[id] = job
                names.assign(name, to: id)
                enqueue(job)
                logger.debug("claimed", metadata: ["file": "\(name)", "job": "\(id)", "handler": "\(handler.name)"])
                emit("file.received")
            } else {
                names.assign(name, to: id)  // Until its file has moved to Failed/.
                if batch != nil { batchReport.filesFailed += 1 }
                logger.warning("failing", metadata: ["file": "\(name)", "job": "\(id)", "reason": "\(failure ?? "no handler")"])
                metrics?.jobFinished(.file, succeeded: false)
                finishedJobs.append(FinishedJob(jobID: id, name: name, succeeded: false))
            }
        }
        return true
    }

    /// The reason given to an entry that is not a regular file (guarantee 10).
    /// A shared store's registration detail, before the registering daemon's name.
    static let registeredBy = "claimed by lister "

    static func notRegular(_ kind: FileStatus.Kind) -> String { "not a regular file (\(kind.rawValue))" }

    func enqueue(_ job: LiveJob) {
        ready.push(job.id, priority: job.priority, at: now)
    }

    /// The job to start next: highest priority after aging, oldest first.
    func dequeue() -> Int64? {
        ready.pop(at: now) { [jobs] id in jobs[id]?.state != .queued }?.id
    }

    // MARK: Moving out

    /// Moves the files of jobs that ended this cycle; their end state is committed first, so a crash
    /// between the two only leaves a move for the next start to finish. The moves run on the mover
    /// queue; until they are back, each name stays taken so that no new file of that name is claimed
    /// onto the one still leaving.
    func moveFinishedFiles() {
        // One batch at a time: what finishes while a batch commits and moves goes with the next one, so that
        // under load one commit and one directory fsync serve many files (group commit), and idle, one file.
        guard !finishedJobs.isEmpty, movesInFlight == 0, !phase.isPausedForDisk, moveBatchTimer == nil else { return }
        // Batches at most every `moveBatchInterval` under load: each costs a commit and two fsyncs whatever its
        // size, so a burst's files go in fewer, larger batches; a file after a quiet moment goes at once.
        if let last = lastMoveBatch, case let wait = millisecondsUntil(last + Self.moveBatchInterval), wait > 0,
            !phase.isStopping, finishedJobs.count < Self.moveBatchLimit
        {
            moveBatchTimer = schedule(.moveBatchDue, after: wait)
            return
        }
        // The end states first: a file never leaves before its job's end is durable.
        guard flushWrites(), phase != .stopped else { return }
        lastMoveBatch = now
        let finished = endsThatHeld(finishedJobs)
        finishedJobs.removeAll(keepingCapacity: true)
        guard !finished.isEmpty else { return }
        sendToMover(finished)
    }

    static let moveBatchInterval: UInt64 = 10
    static let moveBatchLimit = 256

    /// The moves run on the mover queue; their results come back as `.filesMoved`.
    func sendToMover(_ finished: [FinishedJob]) {
        movesInFlight += 1
        let layout = layout
        let loop = eventLoop
        moverQueue.async { [self] in
            // The end states committed before this batch was sent must be on disk before a file leaves: a file in
            // Done/ is never found with an older state after a power cut. One sync serves the whole batch, and
            // runs here, not on the dispatcher's thread, which goes on reaping and starting workers meanwhile.
            do throws(StoreSyncError) {
                try store.syncToDisk()
            } catch {
                let unmoved: [MovedFile] = finished.map { job in
                    MovedFile(job: job, finalName: nil, error: error.description, errorCode: error.code)
                }
                loop?.post { [self] in post(.filesMoved(unmoved)) }
                return
            }
            var touched: Set<PathBytes> = []
            let moved = finished.map { job in
                let root = job.succeeded ? layout.done : layout.failed
                let result = Self.move(job.name, jobID: job.jobID, from: layout.processing, into: root)
                if let finalName = result.finalName { touched.insert(root.appending(RelativePath(finalName.parent))) }
                return MovedFile(job: job, finalName: result.finalName, error: result.error, errorCode: result.code)
            }
            for directory in touched { FileSystem.syncDirectory(directory) }
            loop?.post { [self] in post(.filesMoved(moved)) }
        }
    }

    func filesMoved(_ moved: [MovedFile]) {
        movesInFlight -= 1
        let wallNow = Self.wallClock()
        for file in moved {
            let job = file.job
            let outcome = MoveOutcome(finalName: file.finalName, error: file.error, errorCode: file.errorCode)
            noteMove(outcome, of: job.name, jobID: job.jobID)
            if case .stuck(let reason, let outOfSpace) = outcome {
                keepStuck(job, reason: reason, outOfSpace: outOfSpace)
                continue
            }
            if stuckMoves.removeValue(forKey: job.jobID) != nil {
                logger.info("moved out of the processing area at last", metadata: ["file": "\(job.name)", "job": "\(job.jobID)"])
            }
            writes.free(afterCommit: (job.name, job.jobID))
            let finalName = file.finalName
            let state: JobState = job.succeeded ? .done : .failed
            let jobID = job.jobID
            let removed = outcome == .inputGone
            record { transaction in
                try transaction.setFinalPath(jobID: jobID, finalName ?? RelativePath([]))
                if removed {
                    try transaction.addNote(jobID: jobID, state: state, detail: "the worker removed its input; nothing to move", at: wallNow)
                }
            }
            emit(job.succeeded ? "file.done" : "file.failed")
        }
        // After the final paths are recorded: they commit together with the uploads.
        queueUploads(moved)
        movesCameBackWhilePaused()
    }

    /// Files that reached Done under a handler with an `upload` command get an upload job on the queue.
    func queueUploads(_ moved: [MovedFile]) {
        var wanted: [(name: RelativePath, handler: Handler)] = []
        for file in moved where file.job.succeeded {
            guard let finalName = file.finalName, let name = file.job.handler, let handler = handler(named: name),
                handler.upload != nil
            else { continue }
            wanted.append((finalName, handler))
        }
        guard !wanted.isEmpty else { return }
        let wallNow = Self.wallClock()
        let recorded = commit("record uploads") { transaction in
            try wanted.map { item in
                try transaction.insertUpload(
                    path: item.name, handler: item.handler.name, maxAttempts: item.handler.maxAttempts, at: wallNow)
            }
        }
        guard let created = recorded else {
            // The disk is full: recorded when space returns.
            uploadsToRecord += moved
            return
        }
        for (item, id) in zip(wanted, created) {
            guard let id else { continue }
            let job = LiveJob(
                id: id, name: item.name, owner: .upload(item.handler.name), state: .queued, priority: 5, attempts: 0,
                maxAttempts: item.handler.maxAttempts)
            jobs[id] = job
            enqueue(job)
        }
    }

    /// Moves one file from the processing area into Done/ or Failed/, never overwriting. `finalName` is
    /// nil when the file is no longer there (its worker moved or deleted it) or could not be moved.
    static func move(
        _ name: RelativePath, jobID: Int64, from processing: PathBytes, into root: PathBytes
    ) -> (finalName: RelativePath?, error: String?, code: Int32?) {
        do {
            let finalName = try FileMover.move(processing.appending(name), into: root, as: name, tag: "\(jobID)")
            return (finalName, nil, nil)
        } catch {
            return (nil, "\(error)", error.code)
        }
    }

    /// The same move, on the dispatcher's queue (recovery at start).
    func moveOut(_ name: RelativePath, jobID: Int64, into root: PathBytes) -> MoveOutcome {
        let result = Self.move(name, jobID: jobID, from: layout.processing, into: root)
        let outcome = MoveOutcome(finalName: result.finalName, error: result.error, errorCode: result.code)
        noteMove(outcome, of: name, jobID: jobID)
        if let finalName = result.finalName { FileSystem.syncDirectory(root.appending(RelativePath(finalName.parent))) }
        return outcome
    }

    /// Logs a move that did not go as planned, and takes away the processing area's folders it left empty.
    private func noteMove(_ outcome: MoveOutcome, of name: RelativePath, jobID: Int64) {
        switch outcome {
        case .stuck(let reason, _):
            logger.error("cannot move \(name) out of the processing area: \(reason)")
        case .inputGone:
            logger.warning("the worker removed its input; nothing to move", metadata: ["file": "\(name)", "job": "\(jobID)"])
        case .moved:
            break
        }
        if !name.parent.isEmpty { removeEmptyParents(of: name) }
    }

    /// A finished job's file that could not leave the processing area (`MoveOutcome.stuck`).
    func keepStuck(_ job: FinishedJob, reason: String, outOfSpace: Bool) {
        if stuckMoves[job.jobID] == nil {
            logger.error("the file stays in the processing area; the watchdog sweep tries again", metadata: ["file": "\(job.name)", "job": "\(job.jobID)"])
        }
        stuckMoves[job.jobID] = StuckMove(job: job, reason: reason, outOfSpace: outOfSpace)
        if outOfSpace { pauseForDisk(path: job.succeeded ? layout.done : layout.failed, reason: reason, movesFailed: true) }
    }

    /// Subfolders created in the processing area for nested names are removed once empty.
    private func removeEmptyParents(of name: RelativePath) {
        var parent = RelativePath(name.parent)
        while !parent.bytes.isEmpty {
            FileSystem.removeEmptyDirectory(layout.processing.appending(parent))
            parent = RelativePath(parent.parent)
        }
    }
}
