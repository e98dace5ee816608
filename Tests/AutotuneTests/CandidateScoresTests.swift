import Foundation
import Testing

@testable import Autotune

/// A constrained ask reads its feasibility models only at the candidates that can still win, and chooses what
/// scoring every candidate would.
@Suite struct CandidateScoresTests {
    /// A study of 150 random trials on the unit square: throughput `x + y`, a p99 that breaks its SLO where
    /// `sin(5x) y` passes 0.4, crashes beyond `x = 0.9`; and 600 quasi-random candidates with their full scores.
    private func scene() throws -> (
        models: BayesianOptimization.Models, points: [[Double]], features: [Double], dimension: Int, full: [Double]
    ) {
        let space = try SearchSpace([
            Parameter("x", .float(lower: 0, upper: 1)), Parameter("y", .float(lower: 0, upper: 1)),
        ])
        let objective = Objective.maximize("t", constraints: [MetricConstraint(metric: "p99", maximum: 0.4)])
        var strategy = try BayesianOptimization(context: StrategyContext(space: space, objective: objective, seed: 3))
        var random = try RandomSearch(context: StrategyContext(space: space, objective: objective, seed: 3))
        var history = StudyHistory()
        for configuration in try random.ask(150, history: history) {
            var trial = Trial(number: history.count, configuration: configuration)
            let x = configuration["x"]!.numericValue!
            let y = configuration["y"]!.numericValue!
            if x > 0.9 {
                trial.state = .failed
                trial.error = TrialError(stage: .ready, message: "out of memory")
            } else {
                let p99 = sin(5 * x) * y
                trial.metrics = ["t": x + y, "p99": p99]
                trial.state = p99 <= 0.4 ? .completed : .failed
                trial.score = p99 <= 0.4 ? x + y : nil
                if p99 > 0.4 { trial.error = TrialError(stage: .objective, message: "p99 over its SLO") }
            }
            history.record(trial)
            try strategy.tell(trial)
        }
        let models = strategy.modelsForTest()
        #expect(models.hasFeasibilityModel && models.crash != nil && models.constraints.count == 1)
        var sobol = SobolSequence(dimension: 2, seed: 11)
        let points = (0..<600).map { _ in sobol.next() }
        var features: [Double] = []
        for point in points { strategy.encoder.encode(unit: point, into: &features) }
        let dimension = strategy.encoder.dimension
        let full = models.feasibleScore(
            features, count: points.count, objective: models.objectiveScore(features, count: points.count))
        return (models, points, features, dimension, full)
    }

    @Test func theLeadersAreTheFullScoresLeadersFromAFractionOfTheReads() throws {
        let (models, points, features, dimension, full) = try scene()
        var scores = CandidateScores(points: points, features: features, dimension: dimension, models: models)
        #expect(scores.values.allSatisfy { $0 == nil }, "with feasibility models nothing is exact before a read")
        scores.settleBest(4)
        let read = scores.values.indices.filter { scores.values[$0] != nil }
        for index in read { #expect(scores.values[index] == full[index]) }
        #expect(scores.ranked.prefix(4).map(\.value) == Array(full.sorted(by: >).prefix(4)))
        #expect(read.count < points.count / 4, "read \(read.count) of \(points.count)")
        // Whatever was left unread cannot score as high as the fourth leader.
        let fourth = full.sorted(by: >)[3]
        #expect(try #require(scores.unreadBound) < fourth)
        for index in scores.values.indices where scores.values[index] == nil { #expect(full[index] < fourth) }
    }

    @Test func aRefinementStepReadsEveryCandidateThatCouldBeatItsCentre() throws {
        let (models, points, features, dimension, full) = try scene()
        let threshold = full.sorted(by: >)[3]
        var scores = CandidateScores(points: points, features: features, dimension: dimension, models: models)
        scores.settle(above: Array(repeating: threshold, count: points.count))
        for index in full.indices where full[index] > threshold { #expect(scores.values[index] == full[index]) }
        let read = scores.values.count { $0 != nil }
        #expect(read < points.count / 4, "read \(read) of \(points.count)")
        scores.settleAll()
        #expect(scores.values.map { $0! } == full)
    }

    @Test func withoutFeasibilityModelsEveryScoreIsExactAtOnce() throws {
        let space = try SearchSpace([Parameter("x", .float(lower: 0, upper: 1))])
        var strategy = try BayesianOptimization(
            context: StrategyContext(space: space, objective: .maximize("t"), seed: 2))
        for number in 0..<12 {
            var trial = Trial(number: number, configuration: Configuration(["x": .double(Double(number) / 11)]))
            trial.state = .completed
            trial.score = sin(6 * Double(number) / 11)
            trial.metrics = ["t": trial.score!]
            try strategy.tell(trial)
        }
        let models = strategy.modelsForTest()
        let points = (0..<50).map { [Double($0) / 49] }
        let features = points.flatMap { $0 }
        let scores = CandidateScores(points: points, features: features, dimension: 1, models: models)
        #expect(scores.unreadBound == nil)
        #expect(
            scores.values.map { $0! }
                == models.feasibleScore(features, count: 50, objective: models.objectiveScore(features, count: 50)))
    }
}
