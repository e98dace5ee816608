import Foundation
import Testing

@testable import Autotune

private func unitSquare() throws -> SearchSpace {
    try SearchSpace([Parameter("x", .float(lower: 0, upper: 1)), Parameter("y", .float(lower: 0, upper: 1))])
}

private func value(_ configuration: Configuration, _ name: String) -> Double {
    configuration[name]!.numericValue!
}

/// Runs `evaluations` sequential trials of `strategy` against `outcome`, which fills in a trial's state, metrics
/// and error.
private func play(
    _ strategy: inout some Strategy,
    evaluations: Int,
    history: inout StudyHistory,
    outcome: (inout Trial) -> Void
) async throws -> [Trial] {
    var trials: [Trial] = []
    for _ in 0..<evaluations {
        guard let configuration = try await strategy.ask(1, history: history).first else { break }
        var trial = Trial(number: history.count, configuration: configuration)
        outcome(&trial)
        history.record(trial)
        try await strategy.tell(trial)
        trials.append(trial)
    }
    return trials
}

@Suite struct ConstrainedSearchTests {
    @Test func expressionsParseEvaluateAndSayWhereTheyAreWrong() async throws {
        let constraint = try ParameterExpression("tp * pp <= gpus and not (mode == 'slow' or batch < 2 * tp)")
        #expect(constraint.names == ["tp", "pp", "gpus", "mode", "batch"])
        let values: [String: ParameterValue] = [
            "tp": .int(2), "pp": .int(2), "mode": .string("fast"), "batch": .int(8),
        ]
        #expect(constraint.holds(values, constants: ["gpus": 4]))
        #expect(!constraint.holds(values, constants: ["gpus": 2]))
        #expect(constraint.holds(values), "an unknown constant makes a constraint not apply")
        #expect(try ParameterExpression("speculative == true").isTrue(["speculative": .bool(true)]))
        #expect(!(try ParameterExpression("speculative == true").isTrue([:])))
        #expect(try ParameterExpression("-x + 1.5e1 / 3 >= 4").holds(["x": .int(1)]))
        for (text, offset) in [("a <= ", 5), ("(a < 1", 6), ("a <> b", 3), ("'open", 0), ("and a", 0)] {
            let error = #expect(throws: ExpressionError.self) { try ParameterExpression(text) }
            #expect(error?.offset == offset, "\(text): \(error?.description ?? "")")
        }
    }

    @Test func aConditionalParameterIsAbsentWhereItsConditionIsFalse() async throws {
        let space = try SearchSpace([
            Parameter("speculative", .bool),
            Parameter("tokens", .int(lower: 1, upper: 8), when: try ParameterExpression("speculative == true")),
        ])
        let off = space.configuration(atUnit: [0.2, 0.9])
        #expect(off.values == ["speculative": .bool(false)])
        #expect(space.configuration(atUnit: [0.8, 0.9]).values == ["speculative": .bool(true), "tokens": .int(8)])
        #expect(try space.coerce(["speculative": .bool(false), "tokens": .int(3)]) == off)
        #expect(throws: SearchSpaceError.self) { try space.coerce(["speculative": .bool(true)]) }
        #expect(off.flags(in: space) == [])
        // The model sees an inactive parameter as absent, the same for every such configuration.
        let encoder = FeatureEncoder(space: space)
        #expect(encoder.encode([off]) == [0, 0, 0])
        #expect(encoder.encode([space.configuration(atUnit: [0.8, 0])]) == [1, 1, 1.0 / 16])
        #expect(throws: SearchSpaceError.self) {
            try SearchSpace([
                Parameter("a", .int(lower: 1, upper: 2), when: try ParameterExpression("b == 1")),
                Parameter("b", .bool),
            ])
        }
    }

    @Test(arguments: ["grid", "random", "bayesian"])
    func noStrategyProposesAConfigurationThatBreaksAKnownConstraint(name: String) async throws {
        let space = try SearchSpace(
            [
                Parameter("tp", .categorical([.int(1), .int(2), .int(4), .int(8)])),
                Parameter("pp", .int(lower: 1, upper: 4)),
            ],
            constraints: [try ParameterExpression("tp * pp <= gpus")])
        var strategy = try await StrategyRegistry.builtIn.make(
            name,
            context: StrategyContext(
                space: space, objective: .maximize("y"), seed: 5,
                options: name == "bayesian" ? ["candidates": .number(128), "initial_points": .number(3)] : [:],
                constants: ["gpus": 4]))
        var history = StudyHistory()
        let trials = try await play(&strategy, evaluations: 30, history: &history) { trial in
            trial.state = .completed
            trial.score = value(trial.configuration, "tp") + value(trial.configuration, "pp")
        }
        #expect(!trials.isEmpty)
        #expect(trials.allSatisfy { space.isFeasible($0.configuration, constants: ["gpus": 4]) })
        if name == "grid" {
            // Exactly the feasible points: tp 1 × pp 1…4, tp 2 × pp 1…2, tp 4 × pp 1.
            #expect(trials.count == 7)
            #expect(strategy.isExhausted)
        }
    }

    /// The loop refuses a proposal that breaks a known constraint, naming it.
    @Test func theBookRefusesAnInfeasibleProposal() async throws {
        let space = try SearchSpace(
            [Parameter("a", .int(lower: 1, upper: 8))], constraints: [try ParameterExpression("a <= 4")])
        let definition = StudyDefinition(
            name: "s", space: space, objective: .maximize("y"), strategy: StrategySpec(name: "p"),
            budget: Budget(maxTrials: 4), experiment: .command(CommandSpec(command: [Template("true")])))
        var book = StudyBook(definition: definition, trials: [])
        let plan = book.plan(room: 1, elapsed: .zero, strategyExhausted: false)
        let error = #expect(throws: AutotuneError.self) {
            try book.start(plan, proposals: [Configuration(["a": .int(6)])], at: Date())
        }
        #expect(error?.code == .infeasibleProposal)
        #expect(error?.message.contains("a <= 4") == true)
    }

    /// A crash classifier given trials on both sides of a known boundary classifies new points correctly.
    @Test func theCrashModelLearnsAKnownBoundary() async throws {
        let space = try unitSquare()
        let encoder = FeatureEncoder(space: space)
        var generator = SeededGenerator(seed: 11)
        let points = (0..<40).map { _ in space.configuration(atUnit: [generator.nextUnit(), generator.nextUnit()]) }
        let crashes = { (c: Configuration) in value(c, "x") + value(c, "y") > 1.2 }
        let model = try #require(
            CrashModel.fit(
                inputs: encoder.encode(points), labels: points.map { crashes($0) ? -1 : 1 }, dimension: 2,
                hyperparameters: nil))
        var correct = 0
        var total = 0
        for i in 0...10 {
            for j in 0...10 {
                let x = Double(i) / 10
                let y = Double(j) / 10
                guard abs(x + y - 1.2) > 0.15 else { continue }
                let run = exp(model.logProbabilityOfRunning([x, y], count: 1)[0])
                total += 1
                if (run > 0.5) == !(x + y > 1.2) { correct += 1 }
            }
        }
        #expect(Double(correct) / Double(total) > 0.9, "\(correct) of \(total)")
        #expect(exp(model.logProbabilityOfRunning([0.05, 0.05], count: 1)[0]) > 0.8)
        #expect(exp(model.logProbabilityOfRunning([0.95, 0.95], count: 1)[0]) < 0.2)
    }

    /// A constraint's GP is fitted to the measured metric, violations included: the probability it holds follows
    /// the metric.
    @Test func aConstraintsModelPredictsWhereItHolds() async throws {
        let space = try unitSquare()
        var strategy = try BayesianOptimization(
            context: StrategyContext(
                space: space,
                objective: .maximize("throughput", constraints: [MetricConstraint(metric: "latency", maximum: 0.5)]),
                seed: 2, options: ["candidates": .number(256), "initial_points": .number(8)]))
        var history = StudyHistory()
        // Throughput grows with x; latency is x itself, so the best feasible x is 0.5.
        let trials = try await play(&strategy, evaluations: 24, history: &history) { trial in
            let x = value(trial.configuration, "x")
            trial.metrics = ["throughput": x + 0.1 * value(trial.configuration, "y"), "latency": x]
            if x <= 0.5 {
                trial.state = .completed
                trial.score = trial.metrics["throughput"]
            } else {
                trial.state = .failed
                trial.error = TrialError(stage: .objective, message: "constraint latency <= 0.5 violated")
            }
        }
        // Violations were modelled as measurements, not crashes.
        #expect(strategy.state.observations.allSatisfy { $0.ran == true })
        #expect(strategy.state.observations.filter { $0.loss == nil }.allSatisfy { $0.modelLoss != nil })
        let models = strategy.modelsForTest()
        let constraint = try #require(models.constraints.first)
        let (low, _) = constraint.model.predict([0.2, 0.5], count: 1)
        let (high, _) = constraint.model.predict([0.9, 0.5], count: 1)
        #expect(low[0] < constraint.upper! && high[0] > constraint.upper!)
        // The optimum lies on the boundary: late trials hug it from both sides, few are clearly over it.
        let late = trials.suffix(12)
        #expect(
            late.filter { value($0.configuration, "x") > 0.55 }.count <= 3,
            "\(late.map { value($0.configuration, "x") })")
        #expect(late.filter { abs(value($0.configuration, "x") - 0.5) < 0.02 }.count >= 6)
        let best = trials.filter { $0.state == .completed }.map { value($0.configuration, "x") }.max()!
        #expect(best > 0.45)
    }

    /// With no feasible trial yet, the search goes where feasibility is likeliest, and no score is −∞ or NaN.
    @Test func withNoFeasibleTrialTheSearchMaximisesTheProbabilityOfFeasibility() async throws {
        let space = try unitSquare()
        var strategy = try BayesianOptimization(
            context: StrategyContext(
                space: space,
                objective: .maximize("y", constraints: [MetricConstraint(metric: "latency", maximum: 0.15)]),
                seed: 4, options: ["candidates": .number(256), "initial_points": .number(6)]))
        var history = StudyHistory()
        // Latency is high everywhere the design looks first, and falls towards the corner (0, 0).
        let latency = { (c: Configuration) in value(c, "x") + value(c, "y") }
        let trials = try await play(&strategy, evaluations: 14, history: &history) { trial in
            let l = latency(trial.configuration)
            trial.metrics = ["y": 1, "latency": l]
            if l <= 0.15 {
                trial.state = .completed
                trial.score = 1
            } else {
                trial.state = .failed
                trial.error = TrialError(stage: .objective, message: "violated")
            }
        }
        let design = trials.prefix(6).map { latency($0.configuration) }
        let modelled = trials.dropFirst(6).map { latency($0.configuration) }
        #expect(modelled.min()! < design.min()!, "design \(design), then \(modelled)")
        #expect(modelled.suffix(4).allSatisfy { $0 < 0.5 }, "\(modelled)")
        let models = strategy.modelsForTest()
        let features = [0.9, 0.9, 0.05, 0.05, 0.5, 0.5]
        let scores = models.feasibleScore(features, count: 3, objective: models.objectiveScore(features, count: 3))
        #expect(scores.allSatisfy { $0.isFinite })
        #expect(scores[1] > scores[0])
    }

    /// A serving-shaped trap: a broad hill of throughput (70% of the best) far inside the SLO, and a narrow
    /// higher peak whose top breaks it. A study searched with `stalled: off` sits on the hill's top after 40
    /// trials, stalled for 30. The same study continued with `stalled: shrink` finds the peak's feasible side
    /// within 30 trials; continued with `off` it stays on the hill. One seed, where `off` stays stuck (on other
    /// seeds of this trap it sometimes escapes late): how often each escapes is measured over 30 seeds in
    /// docs/benchmarks.md.
    @Test func aStalledConstrainedSearchLeavesAnOptimumFarInsideItsSLO() async throws {
        var (stuck, history) = try await StalledTrap.study()
        #expect(stuck.state.settings.stalled == .off)
        var shrinking = stuck
        shrinking.state.settings.stalled = .shrink
        var shrinkingHistory = history
        let found =
            try await play(&shrinking, evaluations: 30, history: &shrinkingHistory, outcome: StalledTrap.outcome)
            .filter { $0.state == .completed }.map { $0.score! }.max() ?? 0
        let kept =
            try await play(&stuck, evaluations: 30, history: &history, outcome: StalledTrap.outcome)
            .filter { $0.state == .completed }.map { $0.score! }.max() ?? 0
        #expect(found > 0.75, "shrink: \(found)")
        #expect(kept <= 0.7 + 1e-9, "off: \(kept)")
    }

    /// `stalled: boundary`, the default once there is an SLO: the same stalled study proposes on its boundary
    /// turns only configurations the latency model expects just inside the SLO (the band of candidates nearest
    /// it), and there finds the peak's feasible side within ten trials (`shrink` needed up to 30); a study whose
    /// best sits on the SLO gets no band (its turns are the shortened model's, as with `shrink`).
    @Test func aStalledSearchFarInsideItsSLOLooksAlongTheSLO() async throws {
        var (stalled, history) = try await StalledTrap.study()
        let defaults = try BayesianOptimization(context: StalledTrap.context)
        #expect(defaults.state.settings.stalled == .boundary)
        let unconstrained = try BayesianOptimization(
            context: StrategyContext(space: try unitSquare(), objective: .maximize("throughput"), seed: 0))
        #expect(unconstrained.state.settings.stalled == .off)
        stalled.state.settings.stalled = .boundary
        let points = (0..<256).map { [Double($0 % 16) / 15, Double($0 / 16) / 15] }
        #expect(stalled.boundaryBand(points, models: stalled.modelsForTest())?.band.width != nil)
        var boundaryLatencies: [Double] = []
        var best = 0.0
        for _ in 0..<10 where best <= 0.75 {
            let turn = stalled.state.observations.count % BayesianOptimization.stalledRefinementPeriod
            let trial = try await play(&stalled, evaluations: 1, history: &history, outcome: StalledTrap.outcome)[0]
            if BayesianOptimization.boundaryTurns.contains(turn) {
                boundaryLatencies.append(trial.metrics["latency"]!)
            }
            if let score = trial.score { best = max(best, score) }
        }
        #expect(best > 0.75, "boundary: \(best)")
        #expect(!boundaryLatencies.isEmpty)
        // The band is the tenth of the square's feasible candidates nearest the SLO of 1.1: 0.08 wide in latency.
        #expect(boundaryLatencies.allSatisfy { $0 > 0.95 && $0 < 1.2 }, "\(boundaryLatencies)")
        // Once on the peak's feasible side the best is on the SLO: no band.
        #expect(stalled.boundaryBand(points, models: stalled.modelsForTest())?.band.width == nil)

        // Throughput that rises towards the SLO: the best is on it, and a boundary turn reads the whole square.
        var onTheSLO = try BayesianOptimization(context: StalledTrap.context)
        var slopeHistory = StudyHistory()
        _ = try await play(&onTheSLO, evaluations: 25, history: &slopeHistory) { trial in
            let (x, y) = (value(trial.configuration, "x"), value(trial.configuration, "y"))
            trial.metrics = ["throughput": x + y, "latency": x + 0.6 * y]
            trial.state = x + 0.6 * y <= 1.1 ? .completed : .failed
            trial.score = x + 0.6 * y <= 1.1 ? x + y : nil
            if x + 0.6 * y > 1.1 { trial.error = TrialError(stage: .objective, message: "violated") }
        }
        #expect(onTheSLO.boundaryBand(points, models: onTheSLO.modelsForTest())?.band.width == nil)
    }

    /// Crashes and SLO violations together, resumed from a checkpoint mid-way: the resumed strategy proposes
    /// exactly what the uninterrupted one does.
    @Test func aResumedConstrainedSearchProposesWhatTheUninterruptedOneWould() async throws {
        let space = try unitSquare()
        let context = StrategyContext(
            space: space, objective: .maximize("t", constraints: [MetricConstraint(metric: "l", maximum: 0.7)]),
            seed: 9,
            options: ["candidates": .number(128), "initial_points": .number(5)])
        let outcome = { (trial: inout Trial) in
            let x = value(trial.configuration, "x")
            let y = value(trial.configuration, "y")
            if x > 0.8 {
                trial.state = .failed
                trial.error = TrialError(stage: .ready, message: "OOM")
                return
            }
            trial.metrics = ["t": x + y, "l": y]
            trial.state = y <= 0.7 ? .completed : .failed
            trial.score = y <= 0.7 ? x + y : nil
            if y > 0.7 { trial.error = TrialError(stage: .objective, message: "violated") }
        }
        var straight = try BayesianOptimization(context: context)
        var straightHistory = StudyHistory()
        let all = try await play(&straight, evaluations: 16, history: &straightHistory, outcome: outcome)
        var first = try BayesianOptimization(context: context)
        var history = StudyHistory()
        let before = try await play(&first, evaluations: 9, history: &history, outcome: outcome)
        var resumed = try BayesianOptimization(
            context: context, state: BayesianOptimization.decodeState(try first.encodedState()))
        let after = try await play(&resumed, evaluations: 7, history: &history, outcome: outcome)
        #expect((before + after).map(\.configuration) == all.map(\.configuration))
        #expect(all.contains { $0.error?.stage == .ready })
    }

    /// Past 60 measurements a constraint's hyperparameters are reused until the data grew by a tenth, as the
    /// objective's are (refitting them on every ask made a constrained ask at 500 observations 3× slower);
    /// then fitted again.
    @Test func aConstraintsHyperparametersAreRefittedOnTheObjectivesSchedule() async throws {
        let space = try unitSquare()
        var strategy = try BayesianOptimization(
            context: StrategyContext(
                space: space,
                objective: .maximize("t", constraints: [MetricConstraint(metric: "l", maximum: 0.5)]),
                seed: 5, options: ["candidates": .number(128)]))
        var random = try RandomSearch(context: StrategyContext(space: space, objective: .maximize("t"), seed: 5))
        var history = StudyHistory()
        func tell(_ count: Int) throws {
            for configuration in try random.ask(count, history: history) {
                var trial = Trial(number: history.count, configuration: configuration)
                let x = value(configuration, "x")
                let y = value(configuration, "y")
                trial.metrics = ["t": x + y, "l": sin(6 * x) * y]
                trial.state = .completed
                trial.score = x + y
                history.record(trial)
                try strategy.tell(trial)
            }
        }
        try tell(80)
        _ = strategy.modelsForTest()
        let fitted = try #require(strategy.state.constraintHyperparameters?.first ?? nil)
        #expect(strategy.state.constraintFittedCounts == [80])
        try tell(6)
        _ = strategy.modelsForTest()
        #expect(strategy.state.constraintHyperparameters?.first ?? nil == fitted, "reused below a tenth more")
        #expect(strategy.state.constraintFittedCounts == [80])
        try tell(3)
        _ = strategy.modelsForTest()
        #expect(strategy.state.constraintFittedCounts == [89])
        #expect(strategy.state.constraintHyperparameters?.first ?? nil != fitted, "refitted at a tenth more")
    }
}

extension BayesianOptimization {
    /// The models the next ask would score with, for tests.
    mutating func modelsForTest() -> Models { fitModels() }
}

/// What the models recommend is not the luckiest measurement: a p99 measured just under its SLO, where every
/// neighbour measured over it, is likelier noise, and the recommendation is a configuration the models are sure of.
@Suite struct RecommendationTests {
    @Test func aLuckyMeasurementJustUnderTheSLOIsNotRecommended() async throws {
        let space = try SearchSpace([Parameter("x", .float(lower: 0, upper: 1))])
        let objective = Objective.maximize("tps", constraints: [MetricConstraint(metric: "p99", maximum: 1000)])
        var strategy = try BayesianOptimization(
            context: StrategyContext(space: space, objective: objective, seed: 1))
        // The truth: tps = 1000 x, p99 = 1200 x, so the SLO holds up to x = 0.833.
        var measurements: [(Double, Double, Double)] = stride(from: 0.05, through: 1.0, by: 0.05).map { x in
            (x, 1000 * x, 1200 * x)
        }
        // One lucky measurement at x = 0.9: its true p99 is 1080, measured 980.
        measurements.append((0.9, 905, 980))
        for (number, (x, tps, p99)) in measurements.enumerated() {
            var trial = Trial(number: number, configuration: Configuration(["x": .double(x)]))
            trial.metrics = ["tps": tps, "p99": p99]
            trial.score(by: objective)
            try strategy.tell(trial)
        }
        let recommended = try #require(await strategy.recommendation())
        let x = try #require(recommended.configuration["x"]?.numericValue)
        #expect(x < 0.85 && x >= 0.75, "recommended x = \(x)")
        #expect(recommended.feasibility >= BayesianOptimization.recommendationAssurance)
        // The best measurement meeting the SLO was the lucky one.
        let best = measurements.filter { $0.2 <= 1000 }.max { $0.1 < $1.1 }
        #expect(best?.0 == 0.9)
    }
}

/// The serving-shaped trap of ``ConstrainedSearchTests``: throughput with a broad hill (0.7) far inside a latency
/// SLO of 1.1 and a narrow peak (1.0) whose top breaks it, and a study of it searched with `stalled: off` for 40
/// trials, which leaves it on the hill's top, stalled.
private enum StalledTrap {
    static func throughput(_ x: Double, _ y: Double) -> Double {
        0.7 * exp(-((x - 0.3) * (x - 0.3) + (y - 0.25) * (y - 0.25)) / 0.05)
            + exp(-((x - 0.75) * (x - 0.75) + (y - 0.65) * (y - 0.65)) / 0.012)
    }

    static func outcome(_ trial: inout Trial) {
        let (x, y) = (value(trial.configuration, "x"), value(trial.configuration, "y"))
        trial.metrics = ["throughput": throughput(x, y), "latency": x + 0.6 * y]
        if x + 0.6 * y <= 1.1 {
            trial.state = .completed
            trial.score = trial.metrics["throughput"]
        } else {
            trial.state = .failed
            trial.error = TrialError(stage: .objective, message: "constraint latency <= 1.1 violated")
        }
    }

    static let context = StrategyContext(
        space: try! unitSquare(),
        objective: .maximize("throughput", constraints: [MetricConstraint(metric: "latency", maximum: 1.1)]),
        seed: 0, options: ["candidates": .number(512)])

    /// The study on the hill's top, stalled, with its history; its `stalled` is `off`.
    static func study() async throws -> (BayesianOptimization, StudyHistory) {
        var stuck = try BayesianOptimization(context: context)
        stuck.state.settings.stalled = .off
        var history = StudyHistory()
        let first = try await play(&stuck, evaluations: 40, history: &history, outcome: outcome)
        let hill = first.filter { $0.state == .completed }.map { $0.score! }.max() ?? 0
        #expect(hill <= 0.7 && stuck.stalledFor >= BayesianOptimization.stallLength(parallel: 1))
        return (stuck, history)
    }
}
