import Testing

@testable import OrchestratorCore

@Suite struct AttemptEndHandOffTests {
    @Test func aJobsEndTakesItsAttemptsEndOnceAndTheAttemptsWriteThenWritesNothing() {
        var handOff = AttemptEndHandOff<[Int], String>()
        let end = handOff.record([7, 1], "exit 0")
        #expect(!handOff.wasTaken(end))
        #expect(handOff.take([7, 1]) == "exit 0")
        #expect(handOff.wasTaken(end))
        #expect(handOff.take([7, 1]) == nil)
    }

    /// Another claim of the job, or no end recorded: nothing to take, and the attempt's own write stands.
    @Test func onlyTheSameClaimsEndIsTaken() {
        var handOff = AttemptEndHandOff<[Int], String>()
        let end = handOff.record([7, 1], "exit 0")
        #expect(handOff.take([7, 2]) == nil && handOff.take([8, 1]) == nil)
        #expect(!handOff.wasTaken(end))
    }

    /// After a commit every end recorded is in the store: a job end that comes later takes nothing. A write still
    /// pending then (recorded after the commit's snapshot) writes itself.
    @Test func aCommitDropsEverything() {
        var handOff = AttemptEndHandOff<[Int], String>()
        let taken = handOff.record([1, 1], "a")
        _ = handOff.take([1, 1])
        let late = handOff.record([2, 1], "b")
        handOff.committed()
        #expect(handOff.isEmpty)
        #expect(handOff.take([2, 1]) == nil)
        #expect(!handOff.wasTaken(taken) && !handOff.wasTaken(late))
    }
}
