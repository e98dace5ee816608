import Foundation
import Testing

@testable import Autotune

private let twoGoals = Objective(
    goals: [.maximize("tps"), .minimize("ttft")], constraints: [MetricConstraint(metric: "ttft", maximum: 100)])

private func finished(_ number: Int, tps: Double?, ttft: Double?, state: TrialState = .completed) -> Trial {
    var trial = Trial(number: number, configuration: Configuration(["x": .int(number)]))
    if let tps { trial.metrics["tps"] = tps }
    if let ttft { trial.metrics["ttft"] = ttft }
    trial.state = state
    if state == .completed { trial.score = tps }
    return trial
}

/// The non-dominated set by brute force, as trial numbers.
private func bruteForceFront(_ trials: [Trial]) -> Set<Int> {
    let completed = trials.filter { $0.state == .completed }
    return Set(
        completed.filter { trial in
            let values = twoGoals.values(trial.metrics)!
            return !completed.contains { twoGoals.dominates(twoGoals.values($0.metrics)!, values) }
        }.map(\.number))
}

/// Two 1-D GPs on four measurements (length scale 0.3, almost no noise), their front and a reference point.
private func oneDimensionalScene() throws -> (
    first: GaussianProcess, second: GaussianProcess, front: [[Double]], reference: [Double]
) {
    let theta = GPHyperparameters(logLengthScales: [log(0.3)], logOutputScale: 0, logNoise: log(1e-6))
    let inputs = [0.1, 0.4, 0.7, 0.9]
    let first = try GaussianProcess(
        inputs: inputs, outputs: [0.2, -0.5, 0.1, 0.8], dimension: 1, hyperparameters: theta)
    let second = try GaussianProcess(
        inputs: inputs, outputs: [0.9, 0.3, -0.4, -0.2], dimension: 1, hyperparameters: theta)
    let front = ParetoModel.nonDominated(zip([0.2, -0.5, 0.1, 0.8], [0.9, 0.3, -0.4, -0.2]).map { [$0, $1] })
    return (first, second, front, [1.5, 1.5])
}

@Suite struct ParetoFrontTests {
    @Test func theFrontKeepsExactlyTheNonDominatedCompletedTrials() {
        var generator = SeededGenerator(seed: 4)
        var trials: [Trial] = []
        var best: BestTrial?
        for number in 0..<200 {
            let roll = generator.nextUnit()
            let trial: Trial
            if roll < 0.1 {
                trial = finished(number, tps: nil, ttft: nil, state: .failed)  // crashed: nothing measured
            } else if roll < 0.2 {
                // Broke the SLO: measured, failed, never on the front however good its throughput.
                trial = finished(number, tps: 10_000, ttft: 150, state: .failed)
            } else {
                // Coarse values so ties happen.
                let tps = (generator.nextUnit() * 20).rounded() * 50
                trial = finished(number, tps: tps, ttft: (generator.nextUnit() * 10).rounded() * 10)
            }
            trials.append(trial)
            best = twoGoals.best(best, after: trial)
            let front = best?.front ?? []
            #expect(Set(front.map(\.number)) == bruteForceFront(trials), "after trial \(number)")
        }
        let front = best!.front
        // Best first on the first objective (throughput, maximised).
        #expect(zip(front, front.dropFirst()).allSatisfy { $0.values[0] >= $1.values[0] })
        #expect(best!.score == trials.filter { $0.state == .completed }.compactMap(\.score).max())
    }

    @Test func equalVectorsBothStayAndADominatedNewcomerIsLeftOut() {
        var best = twoGoals.best(nil, after: finished(0, tps: 100, ttft: 50))
        best = twoGoals.best(best, after: finished(1, tps: 100, ttft: 50))
        #expect(best?.front.map(\.number) == [0, 1])
        best = twoGoals.best(best, after: finished(2, tps: 90, ttft: 60))
        #expect(best?.front.map(\.number) == [0, 1])
        best = twoGoals.best(best, after: finished(3, tps: 100, ttft: 40))
        #expect(best?.front.map(\.number) == [3])
        #expect(best?.number == 0)  // the score ties; the first to reach it stays the best
        // A single-objective study keeps no front.
        let single = Objective.maximize("tps").best(nil, after: finished(4, tps: 5, ttft: 1))
        #expect(single?.front.isEmpty == true)
    }

    @Test func aTrialMissingASecondObjectiveFailsWithTheMetricNamed() {
        guard case .failure(let failure) = twoGoals.evaluate(["tps": 3]) else {
            Issue.record("a trial without ttft was scored")
            return
        }
        #expect(failure.description.contains("'ttft'"))
    }

    @Test func theHypervolumeMatchesCountingCellsOfAGrid() {
        var generator = SeededGenerator(seed: 9)
        for _ in 0..<5 {
            let points = (0..<12).map { _ in [generator.nextUnit(), generator.nextUnit()] }
            let reference = [1.1, 1.05]
            let cells = 600
            var covered = 0
            for i in 0..<cells {
                for j in 0..<cells {
                    let u = reference[0] * (Double(i) + 0.5) / Double(cells)
                    let v = reference[1] * (Double(j) + 0.5) / Double(cells)
                    if points.contains(where: { $0[0] <= u && $0[1] <= v }) { covered += 1 }
                }
            }
            let brute = Double(covered) / Double(cells * cells) * reference[0] * reference[1]
            let exact = Pareto.hypervolume(points, reference: reference)
            #expect(abs(exact - brute) < 5e-3, "\(exact) vs \(brute)")
        }
    }

    /// The closed-form expected hypervolume improvement against a Monte Carlo average of the improvement itself.
    @Test func theExpectedHypervolumeImprovementMatchesMonteCarlo() throws {
        let (first, second, front, reference) = try oneDimensionalScene()
        let model = ParetoModel(models: [first, second], front: front, reference: reference)
        let before = Pareto.hypervolume(front, reference: reference)
        var generator = SeededGenerator(seed: 1)
        for x in [0.25, 0.55, 0.8, 1.0] {
            let closed = exp(model.logExpectedImprovement([x], count: 1)[0])
            let (m1, v1) = first.predict([x], count: 1)
            let (m2, v2) = second.predict([x], count: 1)
            var sum = 0.0
            let samples = 200_000
            for _ in 0..<samples {
                let a = m1[0] + v1[0].squareRoot() * generator.nextNormal()
                let b = m2[0] + v2[0].squareRoot() * generator.nextNormal()
                sum += Pareto.hypervolume(front + [[a, b]], reference: reference) - before
            }
            let estimate = sum / Double(samples)
            #expect(abs(closed - estimate) < 0.02 * max(estimate, 0.01), "x = \(x): \(closed) vs \(estimate)")
        }
    }

    /// With pending points drawn (`pending: fantasies`), a candidate's acquisition is the average over the draws
    /// of its EHVI on the models conditioned on the draw, against the front the draw leaves: checked against
    /// rebuilding both models and the front for every draw. And a candidate on a pending point gains little.
    @Test func drawnPendingPointsAverageTheImprovementOverTheFrontEachDrawLeaves() throws {
        let (first, second, front, reference) = try oneDimensionalScene()
        let plain = ParetoModel(models: [first, second], front: front, reference: reference)
        var drawn = plain
        let pending = [0.25, 0.55]
        for point in pending { drawn.believe([point], fantasize: true) }
        var generator = SeededGenerator(seed: 3)
        drawn.sampleFantasies(samples: 16, generator: &generator)
        let fantasies = try #require(drawn.fantasies)
        #expect(fantasies.fronts.count == 16)
        for x in [0.0, 0.3, 0.5, 0.8, 1.0] {
            let value = drawn.logExpectedImprovement([x], count: 1)[0]
            var improvements: [Double] = []
            for s in 0..<16 {
                var models = [first, second]
                var outcomes: [[Double]] = pending.map { _ in [] }
                for objective in 0..<2 {
                    for (j, point) in pending.enumerated() {
                        let outcome = fantasies.draws[objective].outcomes[s * pending.count + j]
                        try models[objective].add(point: [point], output: outcome)
                        outcomes[j].append(outcome)
                    }
                }
                let rebuilt = ParetoModel(
                    models: models, front: ParetoModel.nonDominated(front + outcomes), reference: reference)
                improvements.append(exp(rebuilt.logExpectedImprovement([x], count: 1)[0]))
            }
            let average = improvements.reduce(0, +) / 16
            #expect(abs(exp(value) - average) <= 1e-4 * average + 1e-12, "x = \(x): \(exp(value)) vs \(average)")
        }
        let atPending = drawn.logExpectedImprovement([0.25], count: 1)[0]
        #expect(atPending < plain.logExpectedImprovement([0.25], count: 1)[0] - 2, "\(atPending)")

        // A pending point the models expect to crash or break a constraint adds nothing to any draw's front; one
        // they expect to hold adds to every draw's.
        let measured = ParetoModel.Strips(front: front, reference: reference)
        var doomed = plain
        doomed.believe([0.95], fantasize: true, feasibility: 0)
        doomed.sampleFantasies(samples: 16, generator: &generator)
        #expect(try #require(doomed.fantasies).fronts.allSatisfy { $0.xs == measured.xs && $0.ys == measured.ys })
        var sure = plain
        sure.believe([0.95], fantasize: true, feasibility: 1)
        sure.sampleFantasies(samples: 16, generator: &generator)
        let changed = try #require(sure.fantasies).fronts.count { $0.xs != measured.xs || $0.ys != measured.ys }
        #expect(changed > 0)
    }

    /// The hypervolume's reference where no constraint bounds an objective is the worst measured loss plus a
    /// tenth of the range over every trial that measured the objectives, those that broke a constraint
    /// included: from the feasible ones alone it sat just past the front's own end, and a study whose early
    /// trials mostly broke the constraints extended its front a small step per trial.
    @Test func theReferenceReachesAsFarAsTrialsThatBrokeAConstraintMeasured() throws {
        let space = try SearchSpace([Parameter("x", .int(lower: 0, upper: 100))])
        var strategy = try BayesianOptimization(
            context: StrategyContext(space: space, objective: twoGoals, seed: 1, options: [:]))
        // Feasible (tps, ttft): tps from 20 to 60; one trial past the SLO on ttft measured a tps of 2.
        for (number, (tps, ttft)) in [(20.0, 10.0), (40, 40), (60, 90)].enumerated() {
            try strategy.tell(finished(number, tps: tps, ttft: ttft))
        }
        try strategy.tell(finished(3, tps: 2, ttft: 150, state: .failed))
        let measured = [[-20.0, 10], [-40, 40], [-60, 90], [-2, 150]]
        let reference = strategy.referenceLosses(measured)
        // tps is maximised: its loss is −tps, worst −2, range 58. ttft's reference is its SLO.
        #expect(abs(reference[0] - (-2 + 5.8)) < 1e-9, "\(reference)")
        #expect(reference[1] == 100)
        // The model's reference is on the models' scales: beyond every measured tps loss, the infeasible one's
        // too (from the feasible trials alone it would lie below it).
        let fitted = strategy.fitPareto()
        let model = try #require(fitted)
        #expect(model.reference[0] > (model.models[0].outputs.max() ?? .infinity), "\(model.reference)")
        let feasibleOnly = strategy.referenceLosses(Array(measured.prefix(3)))
        #expect(feasibleOnly[0] < reference[0] - 10, "the feasible trials alone would stop at \(feasibleOnly)")
    }

    /// Every member of the feasible front is a centre of the local candidates, and nothing else: the best of
    /// the first objective alone are one end of the front (ZDT1's front went from 0.954 to 0.976 of the true
    /// hypervolume when its middle got local candidates too).
    @Test func theLocalCandidatesOfTwoObjectivesCentreOnEveryFrontMember() throws {
        let space = try SearchSpace([Parameter("x", .int(lower: 0, upper: 100))])
        var strategy = try BayesianOptimization(
            context: StrategyContext(
                space: space, objective: twoGoals, seed: 1, options: ["initial_points": .number(4)]))
        // (tps, ttft): a front of six, two it dominates, one past the SLO on ttft with the highest tps.
        let measured: [(Double, Double)] = [
            (10, 10), (20, 20), (30, 30), (40, 40), (50, 50), (60, 60), (25, 80), (35, 90),
        ]
        for (number, (tps, ttft)) in measured.enumerated() {
            try strategy.tell(finished(number, tps: tps, ttft: ttft))
        }
        try strategy.tell(finished(8, tps: 100, ttft: 150, state: .failed))
        let centres = strategy.localCentres(pareto: true).map { $0["x"]! }
        #expect(Set(centres) == Set((0..<6).map { ParameterValue.int($0) }), "\(centres)")
        // One objective: the five best feasible scores (here the first objective's), the dominated included.
        let single = strategy.localCentres(pareto: false).map { $0["x"]! }
        #expect(single == [5, 4, 3, 7, 2].map { ParameterValue.int($0) })
    }
}

@Suite struct ImportanceTests {
    /// On a function whose important parameters are known, the shares rank them: `a` drives the score, `b`
    /// less, `c` and the categorical not at all.
    @Test func theParametersThatMatterRankFirst() throws {
        let space = try SearchSpace([
            Parameter("c", .float(lower: 0, upper: 1)), Parameter("a", .float(lower: 0, upper: 1)),
            Parameter("mode", .categorical([.string("p"), .string("q")])), Parameter("b", .int(lower: 1, upper: 100)),
        ])
        var random = try RandomSearch(context: StrategyContext(space: space, objective: .maximize("y"), seed: 2))
        let trials = try random.ask(60, history: StudyHistory()).enumerated().map { number, configuration in
            var trial = Trial(number: number, configuration: configuration)
            let a = configuration["a"]!.numericValue!
            let b = configuration["b"]!.numericValue! / 100
            trial.state = .completed
            trial.score = 10 * sin(3 * a) + 2 * b
            return trial
        }
        let shares = try #require(ParameterImportance.compute(space: space, trials: trials))
        #expect(shares.map(\.name).prefix(2) == ["a", "b"], "\(shares)")
        let byName = Dictionary(uniqueKeysWithValues: shares.map { ($0.name, $0.share) })
        #expect(byName["a"]! > 0.8)
        #expect(byName["c"]! < 0.02 && byName["mode"]! < 0.02, "\(shares)")
        #expect(abs(shares.map(\.share).reduce(0, +) - 1) < 1e-9)
        #expect(ParameterImportance.compute(space: space, trials: Array(trials.prefix(4))) == nil)
    }

    /// A long study is fitted on an even spread of its trials (the fit is cubic in their number): the first,
    /// then every few, in order, never a repeat, and all of a short study.
    @Test func aLongStudyIsFittedOnAnEvenSpreadOfItsTrials() {
        let trials = (0..<1000).map { Trial(number: $0, configuration: Configuration([:])) }
        let spread = ParameterImportance.spread(trials).map(\.number)
        #expect(spread.count == ParameterImportance.maximumTrials)
        #expect(spread.first == 0 && spread.last! >= 990)
        #expect(spread == spread.sorted() && Set(spread).count == spread.count)
        let gaps = zip(spread.dropFirst(), spread).map { $0 - $1 }
        #expect(gaps.allSatisfy { (2...3).contains($0) }, "\(Set(gaps))")
        #expect(ParameterImportance.spread(Array(trials.prefix(300))).count == 300)
    }
}
