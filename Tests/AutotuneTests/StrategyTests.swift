import Autotune
import Foundation
import Testing

private func space() throws -> SearchSpace {
    try SearchSpace([
        Parameter("level", .int(lower: 1, upper: 3)),
        Parameter("long", .bool),
        Parameter("mode", .categorical([.string("a"), .string("b")])),
    ])
}

private func context(_ space: SearchSpace, seed: UInt64 = 1, options: [String: JSONValue] = [:]) -> StrategyContext {
    StrategyContext(space: space, objective: .maximize("x"), seed: seed, options: options)
}

/// Plays a study without a loop: asks `batch` at a time, keeps them running, finishes the oldest.
private func drive(
    _ strategy: inout some Strategy,
    history: inout StudyHistory,
    batch: Int,
    limit: Int
) async throws -> [Configuration] {
    var proposed: [Configuration] = []
    var next = history.count
    while proposed.count < limit, !strategy.isExhausted {
        let room = batch - history.running.count
        let asked = try await strategy.ask(room, history: history)
        if asked.isEmpty && history.running.isEmpty { break }
        for configuration in asked {
            #expect(!history.contains(configuration), "proposed \(configuration) twice")
            var trial = Trial(number: next, configuration: configuration)
            trial.state = .running
            history.record(trial)
            proposed.append(configuration)
            next += 1
        }
        if let oldest = history.runningTrials.first {
            var done = oldest
            done.state = .completed
            done.score = 1
            history.record(done)
            try await strategy.tell(done)
        }
    }
    return proposed
}

@Suite struct GridSearchTests {
    @Test(arguments: ["shuffled", "declared"])
    func everyPointExactlyOnceThenExhausted(order: String) async throws {
        let space = try space()
        var grid = try GridSearch(context: context(space, options: ["order": .string(order)]))
        var history = StudyHistory()
        let proposed = try await drive(&grid, history: &history, batch: 4, limit: 100)
        #expect(proposed.count == 12)
        #expect(Set(proposed).count == 12)
        #expect(grid.isExhausted)
        #expect(try grid.ask(4, history: history).isEmpty)
        if order == "declared" {
            #expect(proposed.first == space.gridConfiguration(at: 0, resolution: 5))
        }
    }

    @Test func theShuffleDependsOnTheSeedOnly() async throws {
        let space = try space()
        func order(seed: UInt64) throws -> [Configuration] {
            var grid = try GridSearch(context: context(space, seed: seed))
            return try grid.ask(12, history: StudyHistory())
        }
        #expect(try order(seed: 5) == order(seed: 5))
        #expect(try order(seed: 5) != order(seed: 6))
    }

    @Test func runningConfigurationsAreSkipped() async throws {
        let space = try space()
        var grid = try GridSearch(context: context(space, options: ["order": .string("declared")]))
        var running = Trial(number: 0, configuration: space.gridConfiguration(at: 0, resolution: 5))
        running.state = .running
        let proposed = try grid.ask(3, history: StudyHistory(trials: [running]))
        #expect(proposed.count == 3)
        #expect(!proposed.contains(running.configuration))
    }

    @Test func aRestoredGridContinuesExactly() async throws {
        let space = try space()
        var original = try GridSearch(context: context(space))
        var history = StudyHistory()
        _ = try await drive(&original, history: &history, batch: 2, limit: 5)
        let saved = try original.encodedState()
        var restored = try GridSearch(context: context(space), state: GridSearch.decodeState(saved))
        #expect(restored.state == original.state)
        #expect(try restored.ask(3, history: history) == original.ask(3, history: history))
    }

    @Test func floatsGetResolutionPointsAndHugeGridsAreRefused() async throws {
        let floats = try SearchSpace([Parameter("x", .float(lower: 0, upper: 1)), Parameter("b", .bool)])
        let grid = try GridSearch(context: context(floats, options: ["resolution": .number(4)]))
        #expect(grid.pointCount == 8)
        let huge = try SearchSpace((0..<9).map { Parameter("p\($0)", .int(lower: 1, upper: 100)) })
        #expect(throws: StrategyError.self) { try GridSearch(context: context(huge)) }
        #expect(throws: StrategyError.self) {
            try GridSearch(context: context(floats, options: ["ordr": .string("x")]))
        }
    }
}

@Suite struct RandomSearchTests {
    @Test func theSameSeedGivesTheSameConfigurations() async throws {
        let space = try SearchSpace([
            Parameter("lr", .float(lower: 1e-4, upper: 1e-1, log: true)), Parameter("n", .int(lower: 1, upper: 64)),
        ])
        var a = try RandomSearch(context: context(space, seed: 9))
        var b = try RandomSearch(context: context(space, seed: 9))
        var c = try RandomSearch(context: context(space, seed: 10))
        let first = try a.ask(10, history: StudyHistory())
        #expect(first == (try b.ask(10, history: StudyHistory())))
        #expect(first != (try c.ask(10, history: StudyHistory())))
        #expect(first.allSatisfy { space.contains($0) })
    }

    @Test func aFiniteSpaceIsCoveredWithoutRepeatsThenExhausted() async throws {
        let space = try space()
        var random = try RandomSearch(context: context(space))
        var history = StudyHistory()
        let proposed = try await drive(&random, history: &history, batch: 3, limit: 100)
        #expect(proposed.count == 12)
        #expect(Set(proposed).count == 12)
        #expect(try random.ask(1, history: history).isEmpty)
        #expect(random.isExhausted)
    }

    @Test func aRestoredRandomSearchDrawsTheSameSequence() async throws {
        let space = try SearchSpace([
            Parameter("x", .float(lower: 0, upper: 1)), Parameter("y", .int(lower: 0, upper: 9)),
        ])
        var original = try RandomSearch(context: context(space, seed: 4))
        _ = try original.ask(7, history: StudyHistory())
        let restored = try RandomSearch.decodeState(try original.encodedState())
        var copy = try RandomSearch(context: context(space, seed: 4), state: restored)
        #expect(try copy.ask(5, history: StudyHistory()) == original.ask(5, history: StudyHistory()))
    }
}

@Suite struct SupportTests {
    @Test(arguments: [1, 2, 3, 15, 16, 17, 1000, 4097])
    func thePermutationIsABijection(count: Int) {
        let permutation = IndexPermutation(count: count, seed: 42)
        let image = (0..<count).map(permutation.index(at:))
        #expect(Set(image) == Set(0..<count))
    }

    @Test func theGeneratorIsReproducibleAndUnbiased() async {
        var a = SeededGenerator(seed: 1)
        var b = SeededGenerator(seed: 1)
        #expect((0..<5).map { _ in a.next() } == (0..<5).map { _ in b.next() })
        var counts = [0, 0, 0]
        for _ in 0..<30_000 { counts[a.nextInt(below: 3)] += 1 }
        #expect(counts.allSatisfy { abs($0 - 10_000) < 400 })
        #expect((0..<1000).allSatisfy { _ in (0..<1).contains(a.nextUnit()) })
    }

    @Test func theRegistryNamesWhatItKnows() async throws {
        let registry = StrategyRegistry.builtIn
        #expect(registry.names == ["bayesian", "grid", "random"])
        await #expect(throws: StrategyError("unknown strategy 'tpe' (available: bayesian, grid, random)")) {
            try await registry.make("tpe", context: context(try space()))
        }
    }
}
