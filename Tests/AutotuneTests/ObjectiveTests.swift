import Autotune
import Foundation
import Testing

@Suite struct ObjectiveTests {
    @Test func aWeightedSumScoresEveryTerm() {
        let objective = Objective(
            .maximize,
            terms: [.init(metric: "tokens_per_s", weight: 1), .init(metric: "ttft_ms", weight: -0.5)]
        )
        #expect(objective.evaluate(["tokens_per_s": 100, "ttft_ms": 40]) == .success(80))
        #expect(objective.label == "score")
    }

    @Test func aMissingMetricNamesWhatWasReported() {
        let result = Objective.maximize("throughput").evaluate(["wall_time": 1])
        #expect(result == .failure(.missingMetric("throughput", available: ["wall_time"])))
        guard case .failure(let failure) = result else { return }
        #expect(failure.description == "metric 'throughput' was not reported (got: wall_time)")
    }

    @Test func aHardConstraintFailsTheTrial() {
        let objective = Objective.maximize("speed", constraints: [MetricConstraint(metric: "ratio", minimum: 2.6)])
        #expect(objective.evaluate(["speed": 10, "ratio": 2.7]) == .success(10))
        guard case .failure(let failure) = objective.evaluate(["speed": 10, "ratio": 2.5]) else {
            Issue.record("expected a failure")
            return
        }
        #expect(failure.description == "constraint ratio >= 2.6 violated: ratio = 2.5")
    }

    @Test func aSoftConstraintMakesTheScoreWorseByItsPenalty() {
        let slo = MetricConstraint(metric: "p99_ttft_ms", maximum: 500, enforcement: .soft(penalty: 0.1))
        let maximize = Objective.maximize("tokens_per_s", constraints: [slo])
        #expect(maximize.evaluate(["tokens_per_s": 1000, "p99_ttft_ms": 600]) == .success(990))
        #expect(maximize.evaluate(["tokens_per_s": 1000, "p99_ttft_ms": 400]) == .success(1000))
        let minimize = Objective.minimize("latency", constraints: [slo])
        #expect(minimize.evaluate(["latency": 10, "p99_ttft_ms": 520]) == .success(12))
    }

    @Test func theFailurePenaltyIsFiniteAndWorseThanEverySuccess() {
        let scores = [3.0, 7.5, 5.0]
        let maximize = Objective.maximize("x").penaltyScore(successes: scores)
        let minimize = Objective.minimize("x").penaltyScore(successes: scores)
        #expect(maximize.isFinite && maximize < 3)
        #expect(minimize.isFinite && minimize > 7.5)
        #expect(Objective.maximize("x").penaltyScore(successes: [4.0, 4.0]) == 3)
        #expect(Objective.maximize("x").penaltyScore(successes: [Double]()) == 0)
    }

    @Test(arguments: [Double.nan, .infinity, -.infinity])
    func nonFiniteMetricsDoNotScore(value: Double) {
        guard case .failure(.nonFiniteMetric("x", _)) = Objective.maximize("x").evaluate(["x": value]) else {
            Issue.record("a metric of \(value) must not score")
            return
        }
    }
}

@Suite struct MetricsExtractionTests {
    @Test func theLastJSONLineWinsAndNestedKeysFlatten() {
        let output = """
            warming up {not json}
            {"throughput": 1}
            progress 100%
            {"throughput": 2.5, "latency": {"p99": 30, "p50": 10}, "ok": true, "name": "x", "list": [1]}
            done
            """
        #expect(
            MetricsExtraction.lastJSONObject(in: output)
                == ["throughput": 2.5, "latency.p99": 30, "latency.p50": 10, "ok": 1]
        )
    }

    @Test func prettyPrintedJSONIsReadWhole() {
        #expect(MetricsExtraction.lastJSONObject(in: "{\n  \"a\": 1,\n  \"b\": 2\n}\n") == ["a": 1, "b": 2])
        #expect(MetricsExtraction.lastJSONObject(in: "no json here") == nil)
    }

    @Test func patternsReadTheLastMatchOfTheFirstGroup() throws {
        let text = "-3      2985520 (2.680) 114.73 MB/s  674.8 MB/s  sample.txt"
        let metrics = try MetricsExtraction.patterns(
            ["ratio": #"\(([0-9.]+)\)"#, "speed": #"\)\s+([0-9.]+) MB/s"#, "missing": "nothing (here)"],
            in: ["", text]
        )
        #expect(metrics == ["ratio": 2.68, "speed": 114.73])
        #expect(MetricsExtraction.problem(withPattern: "no group") != nil)
        #expect(MetricsExtraction.problem(withPattern: "(unclosed") != nil)
        #expect(MetricsExtraction.problem(withPattern: #"x=([0-9]+)"#) == nil)
    }
}
