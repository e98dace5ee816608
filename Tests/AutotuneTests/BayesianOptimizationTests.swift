import Foundation
import Testing

@testable import Autotune

private func space() throws -> SearchSpace {
    try SearchSpace([
        Parameter("x", .float(lower: -5, upper: 10)), Parameter("y", .float(lower: 0, upper: 15)),
        Parameter("n", .int(lower: 1, upper: 64, log: true)),
        Parameter("mode", .categorical([.string("a"), .string("b")])),
    ])
}

private func objective(_ c: Configuration) -> Double {
    let x = c["x"]!.numericValue!
    let y = c["y"]!.numericValue!
    let n = c["n"]!.numericValue!
    return (x - 2) * (x - 2) + (y - 7) * (y - 7) / 4 + abs(log2(n) - 3) + (c["mode"] == .string("b") ? 0 : 1)
}

private func context(_ space: SearchSpace, seed: UInt64 = 3) -> StrategyContext {
    StrategyContext(space: space, objective: .minimize("f"), seed: seed, options: ["candidates": .number(256)])
}

/// Runs `count` sequential evaluations, returning the strategy, the history and what it proposed.
private func run(
    _ strategy: inout BayesianOptimization,
    history: inout StudyHistory,
    evaluations: Int,
    fail: (Configuration) -> Bool = { _ in false }
) throws -> [Configuration] {
    var proposed: [Configuration] = []
    for _ in 0..<evaluations {
        let configuration = try #require(try strategy.ask(1, history: history).first)
        var trial = Trial(number: history.count, configuration: configuration)
        if fail(configuration) {
            trial.state = .failed
            trial.error = TrialError(stage: .run, message: "exit status 1")
        } else {
            trial.state = .completed
            trial.score = objective(configuration)
        }
        history.record(trial)
        try strategy.tell(trial)
        proposed.append(configuration)
    }
    return proposed
}

@Suite struct BayesianOptimizationTests {
    @Test func itFindsTheMinimumOfASmoothMixedFunction() throws {
        let space = try space()
        var strategy = try BayesianOptimization(context: context(space))
        var history = StudyHistory()
        let proposed = try run(&strategy, history: &history, evaluations: 40)
        let best = proposed.map(objective).min()!
        var random = try RandomSearch(context: StrategyContext(space: space, objective: .minimize("f"), seed: 3))
        let randomBest = try random.ask(40, history: StudyHistory()).map(objective).min()!
        #expect(best < 0.8, "best \(best)")
        #expect(best < randomBest / 2, "best \(best), random \(randomBest)")
        #expect(proposed.allSatisfy { space.contains($0) })
    }

    @Test func eightAsksWithEightRunningAreDistinctAndAwayFromTheRunningOnes() throws {
        let space = try space()
        var strategy = try BayesianOptimization(context: context(space))
        var history = StudyHistory()
        _ = try run(&strategy, history: &history, evaluations: 12)
        let running = try strategy.ask(8, history: history)
        for (offset, configuration) in running.enumerated() {
            var trial = Trial(number: history.count + offset, configuration: configuration)
            trial.state = .running
            history.record(trial)
        }
        let batch = try strategy.ask(8, history: history)
        #expect(batch.count == 8)
        #expect(Set(batch).count == 8)
        let others = try (running + batch).map { try space.unitPoint(of: $0) }
        for (index, point) in others.enumerated() {
            for (otherIndex, other) in others.enumerated() where otherIndex != index {
                #expect(
                    zip(point, other).contains { abs($0 - $1) > 1e-3 }, "proposals \(index) and \(otherIndex) coincide")
            }
        }
    }

    /// A batch asked at once spreads out: each member is believed at its prediction before the next is chosen,
    /// so the next is not the same maximum again a hair away. For every pending treatment.
    @Test(arguments: ["believer", "liar", "fantasies", "penalize", "thompson"])
    func theMembersOfABatchAreSpreadApart(pending: String) throws {
        let space = try space()
        var options = context(space).options
        options["pending"] = .string(pending)
        var strategy = try BayesianOptimization(
            context: StrategyContext(space: space, objective: .minimize("f"), seed: 3, options: options))
        var history = StudyHistory()
        _ = try run(&strategy, history: &history, evaluations: 12)
        let batch = try strategy.ask(4, history: history).map { try space.unitPoint(of: $0) }
        #expect(batch.count == 4)
        for (index, point) in batch.enumerated() {
            for other in batch[(index + 1)...] {
                let distance = zip(point, other).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
                #expect(distance > 0.02, "\(pending): members \(point) and \(other) are \(distance) apart")
            }
        }
    }

    /// Asynchronous: a freed slot is filled while others run, and the running trials move the proposal away from
    /// where the same strategy, in the same state, would propose with nothing running.
    @Test func anAskWhileTrialsRunAccountsForThem() throws {
        let space = try space()
        var strategy = try BayesianOptimization(context: context(space))
        var history = StudyHistory()
        _ = try run(&strategy, history: &history, evaluations: 12)
        var alone = strategy
        let first = try #require(try alone.ask(1, history: history).first)
        var busy = history
        var running = Trial(number: history.count, configuration: first)
        running.state = .running
        busy.record(running)
        var beside = strategy
        let second = try #require(try beside.ask(1, history: busy).first)
        let distance = zip(try space.unitPoint(of: first), try space.unitPoint(of: second))
            .map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        #expect(distance > 0.02, "the proposal beside a running trial is \(distance) from it")
        // With nothing running, the same state proposes the same point again: the difference is the running trial.
        var again = strategy
        #expect(try again.ask(1, history: history).first == first)
    }

    /// The output warp keeps the ranking, takes a log-like power for losses spread over orders of magnitude and
    /// leaves near-Gaussian ones nearly affine.
    @Test func theOutputWarpKeepsTheOrderAndEvensHeavyTails() throws {
        var generator = SeededGenerator(seed: 5)
        let gaussian = (0..<200).map { _ in generator.nextNormal() }
        let heavy = gaussian.map { exp(3 * $0) }
        let warpedHeavy = OutputWarp(heavy)
        #expect(warpedHeavy.power < 0.5, "power \(warpedHeavy.power)")
        #expect(OutputWarp(gaussian).power > 0.5)
        let transformed = warpedHeavy.apply(heavy)
        for (a, b) in zip(heavy.indices, heavy.indices.dropFirst()) {
            #expect((heavy[a] < heavy[b]) == (transformed[a] < transformed[b]))
        }
        #expect(transformed.allSatisfy { $0.isFinite })
    }

    @Test func theSameSeedGivesTheSameProposalsAndARestoredStateContinuesExactly() throws {
        let space = try space()
        var a = try BayesianOptimization(context: context(space))
        var b = try BayesianOptimization(context: context(space))
        var historyA = StudyHistory()
        var historyB = StudyHistory()
        #expect(try run(&a, history: &historyA, evaluations: 14) == run(&b, history: &historyB, evaluations: 14))
        let saved = try a.encodedState()
        var restored = try BayesianOptimization(context: context(space), state: BayesianOptimization.decodeState(saved))
        #expect(restored.state == a.state)
        var historyC = historyA
        #expect(try run(&restored, history: &historyC, evaluations: 4) == run(&a, history: &historyA, evaluations: 4))
        var other = try BayesianOptimization(context: context(space, seed: 4))
        var historyD = StudyHistory()
        #expect(
            try run(&other, history: &historyD, evaluations: 3)
                != Array(historyB.finished.prefix(3).map(\.configuration)))
    }

    /// Everything with x > 6 crashes (a server that does not start there): the search learns the region and
    /// leaves it, and still finds the minimum elsewhere. Over five seeds, so one lucky or unlucky start does not
    /// decide.
    @Test func aCrashRegionIsLearntAndLeft() throws {
        let space = try space()
        var bests: [Double] = []
        var late = 0
        for seed in UInt64(1)...5 {
            var strategy = try BayesianOptimization(context: context(space, seed: seed))
            var history = StudyHistory()
            let proposed = try run(&strategy, history: &history, evaluations: 25) { $0["x"]!.numericValue! > 6 }
            #expect(strategy.state.hyperparameters.map { $0.vector.allSatisfy(\.isFinite) } == true)
            #expect(strategy.state.crashHyperparameters.map { $0.vector.allSatisfy(\.isFinite) } == true)
            bests.append(proposed.filter { $0["x"]!.numericValue! <= 6 }.map(objective).min()!)
            late += proposed.suffix(10).filter { $0["x"]!.numericValue! > 6 }.count
        }
        #expect(bests.sorted()[2] < 1, "median best \(bests)")
        #expect(late <= 6, "kept proposing the crash region: \(late) of the last 50")
    }

    @Test func aFiniteSpaceIsExhaustedWithoutRepeats() throws {
        let small = try SearchSpace([Parameter("a", .int(lower: 1, upper: 3)), Parameter("b", .bool)])
        var strategy = try BayesianOptimization(
            context: StrategyContext(space: small, objective: .maximize("f"), seed: 1))
        var history = StudyHistory()
        var seen: [Configuration] = []
        while let next = try strategy.ask(1, history: history).first {
            var trial = Trial(number: history.count, configuration: next)
            trial.state = .completed
            trial.score = next["a"]!.numericValue!
            history.record(trial)
            try strategy.tell(trial)
            seen.append(next)
            if seen.count > 10 { break }
        }
        #expect(seen.count == 6)
        #expect(Set(seen).count == 6)
        #expect(strategy.isExhausted)
    }

    @Test func unknownOptionsAndHugeSpacesAreRefused() throws {
        #expect(throws: StrategyError.self) {
            try BayesianOptimization(
                context: StrategyContext(
                    space: try space(), objective: .minimize("f"), seed: 1, options: ["kernel": .string("rbf")]))
        }
        let fixedOnly = try SearchSpace([Parameter("m", .fixed(.string("x")))])
        #expect(throws: StrategyError.self) {
            try BayesianOptimization(context: StrategyContext(space: fixedOnly, objective: .minimize("f"), seed: 1))
        }
    }

    /// Past the cap, a model is fitted to `FitSubset.maximum` observations: the best, the latest, and the rest
    /// spread over the study; each call chooses the same ones.
    @Test func aCappedFitKeepsTheBestTheLatestAndASpreadOfTheRest() {
        let losses = (0..<2000).map { Double(($0 * 7919) % 2000) }
        let preferred = FitSubset.bestAndLatest(losses: losses)
        let kept = FitSubset.indices(count: 2000, preferring: preferred)
        #expect(kept.count == FitSubset.maximum)
        #expect(kept == kept.sorted() && Set(kept).count == kept.count)
        let best = losses.indices.sorted { losses[$0] < losses[$1] }.prefix(FitSubset.maximum / 4)
        #expect(Set(best).isSubset(of: kept))
        #expect(Set(1875..<2000).isSubset(of: kept))
        // The spread reaches the whole study: no gap between kept indices of more than a few spacings.
        let gaps = zip(kept, kept.dropFirst()).map { $1 - $0 }
        #expect(gaps.max()! <= 2 * 2000 / (FitSubset.maximum / 2), "\(gaps.max()!)")
        #expect(FitSubset.indices(count: 2000, preferring: preferred) == kept)
        #expect(FitSubset.indices(count: 300, preferring: [5, 6]) == Array(0..<300))
        // Of two objectives, every non-dominated point is kept.
        let goals = (0..<800).map { (index: Int) -> [Double] in
            let k = Double(index % 40)
            return [k, 40 - k + Double(index / 40)]
        }
        let front = FitSubset.front(goals)
        #expect(Set(front) == Set(0..<40))
    }

    /// A study of many trials fits its models to the capped subset, still improves on its best, and resumes to
    /// the same proposals.
    @Test func aLongStudyFitsACappedModelAndResumesExactly() throws {
        let space = try space()
        var strategy = try BayesianOptimization(context: context(space))
        var history = StudyHistory()
        var random = try RandomSearch(context: StrategyContext(space: space, objective: .minimize("f"), seed: 9))
        for configuration in try random.ask(FitSubset.maximum + 100, history: StudyHistory()) {
            var trial = Trial(number: history.count, configuration: configuration)
            trial.state = .completed
            trial.score = objective(configuration)
            history.record(trial)
            try strategy.tell(trial)
        }
        let models = strategy.fitModels()
        #expect(models.objective?.count == FitSubset.maximum)
        let saved = try strategy.encodedState()
        let studyBest = history.finished.compactMap(\.score).min()!
        let proposed = try run(&strategy, history: &history, evaluations: 3)
        var restored = try BayesianOptimization(context: context(space), state: BayesianOptimization.decodeState(saved))
        var again = StudyHistory()
        for trial in history.finished.prefix(FitSubset.maximum + 100) { again.record(trial) }
        #expect(try run(&restored, history: &again, evaluations: 3) == proposed)
        #expect(proposed.map(objective).min()! < studyBest + 0.5, "\(proposed.map(objective)) against \(studyBest)")
    }
}

/// A categorical of the largest size a task file allows stays usable: its choices are embedded in a few features
/// instead of one-hot in thousands, and every proposal is in the space.
@Suite struct LargeCategoricalTests {
    @Test func aTenThousandValueCategoricalIsEmbeddedCompactly() throws {
        let models = (0..<10_000).map { ParameterValue.string("model-\($0)") }
        let space = try SearchSpace([
            Parameter("model", .categorical(models)), Parameter("x", .float(lower: 0, upper: 1)),
        ])
        #expect(FeatureEncoder(space: space).dimension == FeatureEncoder.embeddingDimension + 1)
        let small = try SearchSpace([
            Parameter("mode", .categorical((0..<8).map { .int($0) })), Parameter("x", .float(lower: 0, upper: 1)),
        ])
        #expect(FeatureEncoder(space: small).dimension == 9, "small categoricals stay one-hot")

        var strategy = try BayesianOptimization(
            context: StrategyContext(
                space: space, objective: .maximize("y"), seed: 3,
                options: ["candidates": .number(256), "initial_points": .number(6)]))
        var history = StudyHistory()
        func score(_ configuration: Configuration) -> Double {
            guard case .string(let name)? = configuration["model"], let index = Int(name.dropFirst(6)) else { return 0 }
            return (index < 100 ? 1 : 0) + (configuration["x"]?.numericValue ?? 0)
        }
        for number in 0..<30 {
            let configuration = try #require(try strategy.ask(1, history: history).first)
            #expect(space.contains(configuration))
            var trial = Trial(number: number, configuration: configuration)
            trial.state = .completed
            trial.score = score(configuration)
            trial.metrics = ["y": trial.score!]
            history.record(trial)
            try strategy.tell(trial)
        }
        let encoded = FeatureEncoder(space: space).encode(history.finished.map(\.configuration))
        #expect(encoded.count == 30 * 9)
    }
}

/// A search stuck on a local optimum (``BayesianOptimization/StallMode``).
@Suite struct StalledSearchTests {
    /// Twenty trials clustered in a corner, the first the best: the search has stalled for 19. With
    /// `stalled: explore` one of the next three proposals goes far from every tried point (the corner opposite);
    /// `stalledFor` counts the trials since the best, and an improvement resets it.
    @Test func aStalledSearchStepsIntoTheLargestUnexploredRegion() throws {
        let space = try SearchSpace([
            Parameter("x", .float(lower: 0, upper: 1)), Parameter("y", .float(lower: 0, upper: 1)),
        ])
        func strategy(_ mode: String) throws -> (BayesianOptimization, StudyHistory) {
            var strategy = try BayesianOptimization(
                context: StrategyContext(
                    space: space, objective: .minimize("f"), seed: 5,
                    options: ["candidates": .number(256), "stalled": .string(mode), "initial_points": .number(2)]))
            var history = StudyHistory()
            var generator = SeededGenerator(seed: 9)
            for number in 0..<20 {
                let x = Double(generator.nextInt(below: 300)) / 1000
                let y = Double(generator.nextInt(below: 300)) / 1000
                var trial = Trial(number: number, configuration: Configuration(["x": .double(x), "y": .double(y)]))
                trial.state = .completed
                // The first is the best: every later one is worse.
                trial.score = number == 0 ? -1 : x * x + y * y
                history.record(trial)
                try strategy.tell(trial)
            }
            return (strategy, history)
        }
        var (explorer, history) = try strategy("explore")
        #expect(explorer.stalledFor == 19)
        var farthest = 0.0
        for _ in 0..<3 {
            let proposal = try #require(try explorer.ask(1, history: history).first)
            let (x, y) = (proposal["x"]!.numericValue!, proposal["y"]!.numericValue!)
            farthest = max(farthest, min(x, y))
            var trial = Trial(number: history.count, configuration: proposal)
            trial.state = .running
            history.record(trial)
        }
        #expect(farthest > 0.6, "no proposal left the corner: \(farthest)")
        var improved = try strategy("explore").0
        var better = Trial(number: 20, configuration: Configuration(["x": .double(0.1), "y": .double(0.1)]))
        better.state = .completed
        better.score = -2
        try improved.tell(better)
        #expect(improved.stalledFor == 0)
        #expect(
            BayesianOptimization.stallLength(parallel: 8) == 16 && BayesianOptimization.stallLength(parallel: 1) == 10)
        #expect(throws: StrategyError.self) {
            try BayesianOptimization(
                context: StrategyContext(
                    space: space, objective: .minimize("f"), seed: 5, options: ["stalled": .string("sometimes")]))
        }
    }
}

/// Proposals made while trials run (``BayesianOptimization/CrowdingMode``).
@Suite struct CrowdingTests {
    /// A bowl whose bottom the model knows well, and a batch of eight: the believer alone puts several of them
    /// next to the bottom; with `crowding: spread` no proposal is the third in one neighbourhood of half-width
    /// ``BayesianOptimization/crowdingRadius``, so the batch spreads out.
    @Test func aSpreadBatchPutsAtMostTwoTrialsInOneNeighbourhood() throws {
        let space = try SearchSpace([
            Parameter("x", .float(lower: 0, upper: 1)), Parameter("y", .float(lower: 0, upper: 1)),
        ])
        func batch(_ mode: String) throws -> [[Double]] {
            var strategy = try BayesianOptimization(
                context: StrategyContext(
                    space: space, objective: .minimize("f"), seed: 3,
                    options: [
                        "candidates": .number(512), "crowding": .string(mode), "initial_points": .number(2),
                        "incumbent": .string("measured"),
                    ]))
            var history = StudyHistory()
            var generator = SeededGenerator(seed: 4)
            for number in 0..<16 {
                let (x, y) = (generator.nextUnit(), generator.nextUnit())
                var trial = Trial(number: number, configuration: Configuration(["x": .double(x), "y": .double(y)]))
                trial.state = .completed
                trial.score = (x - 0.3) * (x - 0.3) + (y - 0.3) * (y - 0.3)
                history.record(trial)
                try strategy.tell(trial)
            }
            return try strategy.ask(8, history: history).map { [$0["x"]!.numericValue!, $0["y"]!.numericValue!] }
        }
        /// The most points of `points` in one neighbourhood of any of them.
        func crowd(_ points: [[Double]]) -> Int {
            points.map { centre in
                points.count { BayesianOptimization.near($0, centre, within: BayesianOptimization.crowdingRadius) }
            }.max() ?? 0
        }
        let crowded = try batch("off")
        #expect(crowded.count == 8 && crowd(crowded) >= 3, "the believer alone: \(crowded)")
        let spread = try batch("spread")
        #expect(spread.count == 8)
        for (index, point) in spread.enumerated() {
            #expect(!BayesianOptimization.crowds(point, Array(spread[..<index])), "\(point) in \(spread)")
        }
        #expect(throws: StrategyError.self) {
            try BayesianOptimization(
                context: StrategyContext(
                    space: space, objective: .minimize("f"), seed: 5, options: ["crowding": .string("always")]))
        }
        // Crowding is the default with one objective; with two the front's acquisition spreads the batch itself.
        let single = try BayesianOptimization(
            context: StrategyContext(space: space, objective: .minimize("f"), seed: 5))
        #expect(single.state.settings.crowding == .spread)
        let two = try BayesianOptimization(
            context: StrategyContext(
                space: space, objective: Objective(goals: [.maximize("tps"), .minimize("ttft")]), seed: 5))
        #expect(two.state.settings.crowding == .off)
    }
}

/// How near a running trial a proposal may be (``BayesianOptimization/duplicateRadius``).
@Suite struct DuplicateRadiusTests {
    /// A bowl whose bottom the model knows to a thousandth, the measured incumbent, and a batch of four: the
    /// believer expects each running trial near the bottom to improve and keeps the improvement beside it, so
    /// the next slot refines next to it. Finer than the refinement's finest step (1e-3) it may go; a hair
    /// (1e-4) it may not. A checkpoint from before the radius was set resumes with 1e-3.
    @Test func slotsRefineAnOptimumTogetherButNeverAHairApart() throws {
        let space = try SearchSpace([Parameter("x", .float(lower: 0, upper: 1))])
        let context = StrategyContext(
            space: space, objective: .minimize("f"), seed: 3,
            options: ["candidates": .number(512), "initial_points": .number(2), "incumbent": .string("measured")])
        var strategy = try BayesianOptimization(context: context)
        #expect(strategy.state.settings.duplicateRadius == BayesianOptimization.duplicateRadius)
        var history = StudyHistory()
        var generator = SeededGenerator(seed: 4)
        // Spread over the cube, then ever closer to the bottom at 0.3.
        let xs = (0..<12).map { _ in generator.nextUnit() } + (1...12).map { 0.3 + 0.5 * pow(-0.5, Double($0)) }
        for (number, x) in xs.enumerated() {
            var trial = Trial(number: number, configuration: Configuration(["x": .double(x)]))
            trial.state = .completed
            trial.score = (x - 0.3) * (x - 0.3)
            history.record(trial)
            try strategy.tell(trial)
        }
        /// The smallest distance between two of a batch's proposals.
        func closest(_ strategy: inout BayesianOptimization) throws -> Double {
            let xs = try strategy.ask(4, history: history).map { $0["x"]!.numericValue! }
            #expect(xs.count == 4)
            return xs.indices.flatMap { i in xs.indices.filter { $0 > i }.map { abs(xs[i] - xs[$0]) } }.min()!
        }
        var legacyState = strategy.state
        let now = try closest(&strategy)
        #expect(now > BayesianOptimization.duplicateRadius)
        #expect(now <= BayesianOptimization.legacyDuplicateRadius, "no two slots refine the bottom together")
        legacyState.settings.duplicateRadius = nil
        var legacy = try BayesianOptimization(context: context, state: legacyState)
        #expect(try closest(&legacy) > BayesianOptimization.legacyDuplicateRadius)
    }
}

/// What a proposal made while trials run must improve on (``BayesianOptimization/IncumbentMode``).
@Suite struct BelievedIncumbentTests {
    /// A bowl whose bottom `(0.7, 0.3)` breaks an SLO `x ≤ 0.6`: a running trial just inside the SLO, which the
    /// model expects to beat the best measured, becomes the incumbent the next proposal must improve on
    /// (`incumbent: believed`); one at the bottom, expected to be better still but to break the SLO, does not, nor
    /// one expected to be worse; with `incumbent: measured` none does.
    @Test func aRunningTrialBelievedToBeatTheBestBecomesTheIncumbent() throws {
        let space = try SearchSpace([
            Parameter("x", .float(lower: 0, upper: 1)), Parameter("y", .float(lower: 0, upper: 1)),
        ])
        let objective = Objective(goals: [.minimize("f")], constraints: [MetricConstraint(metric: "x", maximum: 0.6)])
        for incumbent in ["believed", "measured"] {
            var strategy = try BayesianOptimization(
                context: StrategyContext(
                    space: space, objective: objective, seed: 3, options: ["incumbent": .string(incumbent)]))
            var generator = SeededGenerator(seed: 4)
            for number in 0..<24 {
                let (x, y) = (generator.nextUnit(), generator.nextUnit())
                var trial = Trial(number: number, configuration: Configuration(["x": .double(x), "y": .double(y)]))
                trial.metrics = ["f": (x - 0.7) * (x - 0.7) + (y - 0.3) * (y - 0.3), "x": x]
                trial.score = try? objective.evaluate(trial.metrics).get()
                trial.state = trial.score == nil ? .failed : .completed
                try strategy.tell(trial)
            }
            var models = strategy.fitModels()
            let measuredBest = try #require(models.best)
            let model = try #require(models.objective)
            func point(_ x: Double, _ y: Double) -> [Double] {
                strategy.encoder.encode([Configuration(["x": .double(x), "y": .double(y)])])
            }
            let bottom = point(0.7, 0.3)
            let inside = point(0.56, 0.3)
            let believedInside = model.predictMean(inside, count: 1)[0]
            try #require(model.predictMean(bottom, count: 1)[0] < believedInside && believedInside < measuredBest)
            models.believe(bottom, pending: .believer)
            #expect(models.best == measuredBest, "\(incumbent): a trial expected to break the SLO")
            models.believe(point(0.05, 0.95), pending: .believer)
            #expect(models.best == measuredBest, "\(incumbent): a trial expected to be worse")
            models.believe(inside, pending: .believer)
            // The believed mean, up to the rounding of the two points believed before it.
            let expected = incumbent == "believed" ? believedInside : measuredBest
            #expect(abs(try #require(models.best) - expected) < 1e-9, "\(incumbent)")
        }
        // The believed incumbent is the default without hard constraints, the measured one with them.
        let constrained = try BayesianOptimization(
            context: StrategyContext(space: space, objective: objective, seed: 3))
        #expect(constrained.state.settings.incumbent == .measured)
        let unconstrained = try BayesianOptimization(
            context: StrategyContext(space: space, objective: .minimize("f"), seed: 3))
        #expect(unconstrained.state.settings.incumbent == .believed)
    }
}

/// When the model takes over from the initial design (``BayesianOptimization/DesignMode``).
@Suite struct DesignModeTests {
    /// Four design points started, two finished, two running: with `design: finished` the freed slot gets the
    /// next Sobol point, since only two of the four design trials have results; with `design: started` the model
    /// of those two proposes it. Several objectives wait for the design's results by default, one does not.
    @Test func aFreedSlotGetsTheNextDesignPointUntilTheDesignHasFinished() throws {
        let space = try SearchSpace([
            Parameter("x", .float(lower: 0, upper: 1)), Parameter("y", .float(lower: 0, upper: 1)),
        ])
        let objective = Objective(goals: [.maximize("tps"), .minimize("ttft")])
        for mode in ["finished", "started"] {
            var strategy = try BayesianOptimization(
                context: StrategyContext(
                    space: space, objective: objective, seed: 7,
                    options: ["initial_points": .number(4), "design": .string(mode)]))
            var history = StudyHistory()
            for (number, configuration) in try strategy.ask(4, history: history).enumerated() {
                var trial = Trial(number: number, configuration: configuration)
                trial.state = .running
                history.record(trial)
            }
            for number in 0..<2 {
                var trial = try #require(history.running[number])
                let (x, y) = (trial.configuration["x"]!.numericValue!, trial.configuration["y"]!.numericValue!)
                trial.metrics = ["tps": x + y, "ttft": x * x + 1]
                trial.score = trial.metrics["tps"]
                trial.state = .completed
                history.record(trial)
                try strategy.tell(trial)
            }
            let designed = strategy.state.design.index
            let proposal = try strategy.ask(1, history: history)
            #expect(proposal.count == 1)
            if mode == "finished" {
                #expect(strategy.state.design.index > designed, "the next Sobol point")
            } else {
                #expect(strategy.state.design.index == designed, "the model's proposal")
            }
        }
        let two = try BayesianOptimization(context: StrategyContext(space: space, objective: objective, seed: 7))
        #expect(two.state.settings.design == .finished)
        let one = try BayesianOptimization(
            context: StrategyContext(space: space, objective: .minimize("f"), seed: 7))
        #expect(one.state.settings.design == .started)
        #expect(throws: StrategyError.self) {
            try BayesianOptimization(
                context: StrategyContext(
                    space: space, objective: .minimize("f"), seed: 7, options: ["design": .string("never")]))
        }
    }
}
