import Autotune
import Foundation
import Testing

/// The rules that say what the re-measured configurations mean: which held up, how they rank, how much better
/// than the baseline the winner is, and how sure the tool is that it meets its SLOs. Pure values, no loop.
@Suite struct ConfirmationStatisticsTests {
    private let space = try! SearchSpace([Parameter("x", .int(lower: 0, upper: 99))])

    /// A search trial `number` with configuration x = `number` and `score`, or a repeat of `confirms`.
    private func trial(
        _ number: Int, score: Double?, confirms: Int? = nil, metrics: [String: Double] = [:], failed: Bool = false
    ) -> Trial {
        var trial = Trial(number: number, configuration: Configuration(["x": .int(confirms ?? number)]))
        trial.confirms = confirms
        trial.state = failed ? .failed : .completed
        trial.score = failed ? nil : score
        trial.metrics = metrics
        if let score, !failed { trial.metrics["y"] = score }
        return trial
    }

    private func definition(
        _ objective: Objective = .maximize("y"), rankBy: ConfirmationPhase.Ranking = .mean, baseline: Bool = true
    ) throws -> StudyDefinition {
        StudyDefinition(
            name: "s", space: space, objective: objective, strategy: StrategySpec(name: "random"),
            budget: Budget(maxTrials: 6), parallel: 1,
            experiment: .command(CommandSpec(command: [Template("true")])),
            baseline: baseline ? Configuration(["x": .int(0)]) : nil,
            confirm: ConfirmationPhase(top: 2, repeats: 2, rankBy: rankBy))
    }

    /// Two configurations fall short of their search scores by the same amount; one's repeats are noisy, the
    /// other's steady. The verdict comes from the noise pooled over every repeat, so they get the same one: the
    /// old rule (two of a configuration's own standard deviations) passed the noisy one and failed the steady.
    @Test func heldUpDoesNotRewardANoisyConfiguration() throws {
        let definition = try definition()
        let trials = [
            trial(0, score: 22.6), trial(1, score: 31), trial(2, score: 31),
            trial(3, score: 22.5, confirms: 1), trial(4, score: 30.5, confirms: 1),  // noisy, mean 26.5
            trial(5, score: 26.0, confirms: 2), trial(6, score: 27.0, confirms: 2),  // steady, mean 26.5
            trial(7, score: 22.2, confirms: 0), trial(8, score: 23.1, confirms: 0),
        ]
        let ranking = definition.confirm!.ranking(of: trials, objective: definition.objective, baseline: 0)
        let noisy = try #require(ranking.first { $0.trial == 1 })
        let steady = try #require(ranking.first { $0.trial == 2 })
        #expect(noisy.mean == steady.mean)
        #expect(noisy.heldUp(objective: definition.objective) == steady.heldUp(objective: definition.objective))
        #expect(noisy.noise == steady.noise && noisy.noise != nil)
        // The baseline's repeats inform the noise but are not ranked.
        #expect(!ranking.contains { $0.trial == 0 })
    }

    /// A shortfall well past the pooled noise fails; one inside it holds; a failed repeat fails whatever the rest.
    @Test func heldUpFollowsThePooledNoiseAndFailsOnAFailedRepeat() throws {
        let definition = try definition()
        let steady = [
            trial(0, score: 10), trial(1, score: 20), trial(2, score: 12.2),
            trial(3, score: 14, confirms: 1), trial(4, score: 14.2, confirms: 1),  // 20 → 14.1: a fluke
            trial(5, score: 12, confirms: 2), trial(6, score: 12.1, confirms: 2),  // 12.2 → 12.05: noise
        ]
        let ranking = definition.confirm!.ranking(of: steady, objective: definition.objective, baseline: 0)
        #expect(ranking.first { $0.trial == 1 }?.heldUp(objective: definition.objective) == false)
        #expect(ranking.first { $0.trial == 2 }?.heldUp(objective: definition.objective) == true)
        var failing = steady
        failing[6] = trial(6, score: nil, confirms: 2, failed: true)
        let failed = definition.confirm!.ranking(of: failing, objective: definition.objective, baseline: 0)
        let two = try #require(failed.first { $0.trial == 2 })
        #expect(two.failures == 1 && !two.heldUp(objective: definition.objective))
        #expect(failed.last?.trial == 2, "a configuration with a failed repeat ranks last")
    }

    /// When smaller is better, repeats that came out larger are the shortfall.
    @Test func heldUpWhenMinimising() throws {
        let definition = try definition(.minimize("y"))
        let trials = [
            trial(0, score: 100), trial(1, score: 50), trial(2, score: 52),
            trial(3, score: 70, confirms: 1), trial(4, score: 71, confirms: 1),  // 50 → 70.5: did not hold
            trial(5, score: 52.5, confirms: 2), trial(6, score: 51.8, confirms: 2),
        ]
        let ranking = definition.confirm!.ranking(of: trials, objective: definition.objective, baseline: 0)
        #expect(ranking.map(\.trial) == [2, 1])
        #expect(ranking.first { $0.trial == 1 }?.heldUp(objective: definition.objective) == false)
        #expect(ranking.first { $0.trial == 2 }?.heldUp(objective: definition.objective) == true)
    }

    /// Ranked by the mean, a noisy configuration with the higher mean wins; ranked by the pessimistic bound, the
    /// steady one does.
    @Test func theLowerConfidenceBoundPrefersASteadyConfiguration() throws {
        let trials = [
            trial(0, score: 10), trial(1, score: 30), trial(2, score: 29),
            trial(3, score: 20, confirms: 1), trial(4, score: 38, confirms: 1),  // mean 29, noisy
            trial(5, score: 27.5, confirms: 2), trial(6, score: 28.3, confirms: 2),  // mean 27.9, steady
        ]
        let byMean = try definition(rankBy: .mean)
        #expect(byMean.confirm!.ranking(of: trials, objective: byMean.objective, baseline: 0).first?.trial == 1)
        let byBound = try definition(rankBy: .lcb)
        let ranking = byBound.confirm!.ranking(of: trials, objective: byBound.objective, baseline: 0)
        #expect(ranking.first?.trial == 2)
        #expect(ranking.allSatisfy { ($0.bound ?? .infinity) < $0.mean! })
        // The confirmed best is still reported at its mean.
        #expect(byBound.confirm!.best(of: ranking)?.score == ranking.first?.mean)
    }

    /// The baseline is re-measured as often as the winners, once the search is over.
    @Test func theBaselineIsReMeasuredWithTheWinners() throws {
        let definition = try definition()
        let trials = [trial(0, score: 10), trial(1, score: 30), trial(2, score: 20), trial(3, score: 5)]
        let missing = definition.confirm!.missing(in: trials, objective: definition.objective, baseline: 0)
        #expect(missing.map(\.target) == [1, 1, 2, 2, 0, 0])
        let book = StudyBook(definition: definition, trials: trials + [trial(4, score: 1), trial(5, score: 2)])
        let plan = book.plan(room: 8, elapsed: .zero, strategyExhausted: false)
        #expect(plan.trials.compactMap(\.confirms).sorted() == [0, 0, 1, 1, 2, 2])
    }

    /// The gain compares the winner's repeats with the baseline's measurements, with its 90% interval; a gain
    /// smaller than the noise is said to be within it.
    @Test func theGainCarriesItsUncertainty() throws {
        let definition = try definition()
        let clear = [
            trial(0, score: 100), trial(1, score: 125), trial(2, score: 110),
            trial(3, score: 121, confirms: 1), trial(4, score: 123, confirms: 1),
            trial(5, score: 108, confirms: 2), trial(6, score: 109, confirms: 2),
            trial(7, score: 101, confirms: 0), trial(8, score: 99, confirms: 0),
        ]
        let result = StudyResult(definition: definition, trials: clear, best: BestTrial(number: 1, score: 125))
        let gain = try #require(result.gain)
        #expect(gain.baselineRuns == 3 && gain.bestRuns == 2)
        #expect(abs(gain.fraction! - 0.22) < 1e-9, "(122 − 100) / 100")
        #expect(gain.low! > 0.1 && gain.high! < 0.35 && !gain.withinNoise)
        let noisy = [
            trial(0, score: 100), trial(1, score: 125), trial(2, score: 110),
            trial(3, score: 92, confirms: 1), trial(4, score: 114, confirms: 1),
            trial(5, score: 108, confirms: 2), trial(6, score: 96, confirms: 2),
            trial(7, score: 110, confirms: 0), trial(8, score: 91, confirms: 0),
        ]
        let within = StudyResult(definition: definition, trials: noisy, best: BestTrial(number: 1, score: 125))
        #expect(within.gain?.withinNoise == true, "\(String(describing: within.gain))")
        // With no repeats there is no interval: one measurement of each says nothing about the noise.
        var plain = definition
        plain.confirm = nil
        let single = StudyResult(
            definition: plain, trials: Array(clear.prefix(3)), best: BestTrial(number: 1, score: 125))
        #expect(single.gain?.low == nil && single.gain?.fraction == 0.25)
    }

    /// How sure the tool is that the recommended configuration meets an SLO: near the limit with noisy repeats,
    /// about even; far inside, sure.
    @Test func theRecommendationSaysHowSureItMeetsEachSLO() throws {
        let objective = Objective.maximize("y", constraints: [MetricConstraint(metric: "p99", maximum: 1000)])
        let definition = try definition(objective)
        func trials(near p99: Double) -> [Trial] {
            [
                trial(0, score: 10, metrics: ["p99": 500]), trial(1, score: 30, metrics: ["p99": p99 - 40]),
                trial(2, score: 20, metrics: ["p99": 600]),
                trial(3, score: 29, confirms: 1, metrics: ["p99": p99 - 60]),
                trial(4, score: 30, confirms: 1, metrics: ["p99": p99 + 60]),
                trial(5, score: 20, confirms: 2, metrics: ["p99": 580]),
                trial(6, score: 20, confirms: 2, metrics: ["p99": 640]),
            ]
        }
        let close = StudyResult(
            definition: definition, trials: trials(near: 1000), best: BestTrial(number: 1, score: 30))
        let edge = try #require(close.assurance.first)
        #expect(edge.runs == 2 && edge.mean == 1000)
        #expect(abs(edge.probability! - 0.5) < 0.05, "\(edge)")
        let far = StudyResult(definition: definition, trials: trials(near: 700), best: BestTrial(number: 1, score: 30))
        #expect(far.assurance.first!.probability! > 0.98, "300 inside with a noise of 67 over 2 degrees of freedom")
        #expect(far.assurance.first!.margin > 0.25)
    }
}

@Suite struct NoiseTests {
    /// Student's t against values every table has.
    @Test func studentsTMatchesItsTables() {
        #expect(abs(Noise.tCDF(2.920, degreesOfFreedom: 2) - 0.95) < 1e-3)
        #expect(abs(Noise.tCDF(1.812, degreesOfFreedom: 10) - 0.95) < 1e-3)
        #expect(abs(Noise.tCDF(-2.132, degreesOfFreedom: 4) - 0.05) < 1e-3)
        #expect(abs(Noise.tCDF(1.96, degreesOfFreedom: .infinity) - 0.975) < 1e-3)
        // df = 2 has a closed form: 1/2 + t / (2 √(2 + t²)).
        for t in [0.3, 1.0, 4.0, 6.3] {
            #expect(abs(Noise.tCDF(t, degreesOfFreedom: 2) - (0.5 + t / (2 * (2 + t * t).squareRoot()))) < 1e-9)
        }
        #expect(abs(Noise.t95(degreesOfFreedom: 4) - 2.132) < 1e-3)
        #expect(abs(Noise.t95(degreesOfFreedom: 11) - 1.796) < 0.01)
    }
}
