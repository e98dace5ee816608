import Autotune
import AutotuneRunner
import AutotuneTesting
import Foundation
import Testing

private let reference = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../strategies/reference/random_search.py").standardizedFileURL.path

/// Throughput against latency over two parameters: more batching gives more throughput and more latency.
private func serving(_ configuration: Configuration) -> [String: Double] {
    let x = configuration["batch"]?.numericValue ?? 0
    let y = configuration["chunk"]?.numericValue ?? 1
    return ["tps": 100 * x * (1 + 0.1 * y) - 5 * y * y, "ttft": 10 + 60 * x * x + 3 * y]
}

private let objective = Objective(
    goals: [.maximize("tps"), .minimize("ttft")], constraints: [MetricConstraint(metric: "ttft", maximum: 60)])

private func study(strategy: String, options: [String: JSONValue] = [:], trials: Int = 16) throws -> StudyDefinition {
    var definition = definition(
        space: try SearchSpace([
            Parameter("batch", .float(lower: 0, upper: 1)), Parameter("chunk", .int(lower: 1, upper: 4)),
        ]),
        objective: objective, strategy: strategy, maxTrials: strategy == "grid" ? nil : trials, parallel: 3)
    definition.strategy.options = options
    return definition
}

/// The non-dominated completed trials, by brute force.
private func bruteForceFront(_ trials: [Trial]) -> Set<Int> {
    let completed = trials.filter { $0.state == .completed }
    return Set(
        completed.filter { trial in
            !completed.contains { objective.dominates(objective.values($0.metrics)!, objective.values(trial.metrics)!) }
        }.map(\.number))
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct MultiObjectiveTests {
    /// Every strategy runs a two-objective study through the loop; the stored front is the non-dominated set of
    /// the completed trials (those that broke the latency SLO never on it) and each point carries its values.
    @Test(arguments: [
        ("grid", ["resolution": JSONValue.number(4)]), ("random", [:]),
        ("bayesian", ["initial_points": .number(5), "candidates": .number(256)]),
        ("plugin", ["command": .array([.string("python3"), .string(reference)])]),
    ])
    func everyStrategySearchesTwoObjectivesAndTheStoreKeepsTheFront(
        strategy: String, options: [String: JSONValue]
    ) async throws {
        let experiment = ScriptedExperiment { trial in .metrics(serving(trial.configuration)) }
        try await withTestStudy(try study(strategy: strategy, options: options)) { study in
            let outcome = try await study.run(experiment: experiment)
            #expect(outcome.status == .completed)
            let trials = try await study.trials()
            #expect(trials.count == 16)
            #expect(trials.contains { $0.state == .failed && $0.error?.stage == .objective })
            let stored = try #require(try await study.stored().best)
            #expect(Set(stored.front.map(\.number)) == bruteForceFront(trials))
            #expect(!stored.front.isEmpty)
            for point in stored.front {
                let trial = try #require(trials.first { $0.number == point.number })
                #expect(point.values == objective.values(trial.metrics))
                #expect(trial.metrics["ttft"]! <= 60)
            }
        }
    }

    /// Bayesian search of two objectives, stopped and resumed, proposes exactly what an uninterrupted run does.
    @Test func aTwoObjectiveBayesianStudyResumesExactly() throws {
        let space = try SearchSpace([
            Parameter("batch", .float(lower: 0, upper: 1)), Parameter("chunk", .int(lower: 1, upper: 4)),
        ])
        let context = StrategyContext(
            space: space, objective: objective, seed: 5, options: ["initial_points": .number(4)])
        func step(_ strategy: inout BayesianOptimization, _ history: inout StudyHistory) throws -> Configuration {
            let configuration = try #require(try strategy.ask(1, history: history).first)
            var trial = Trial(number: history.count, configuration: configuration)
            trial.metrics = serving(configuration)
            trial.score(by: objective)
            history.record(trial)
            try strategy.tell(trial)
            return configuration
        }
        var whole = try BayesianOptimization(context: context)
        var wholeHistory = StudyHistory()
        for _ in 0..<10 { _ = try step(&whole, &wholeHistory) }
        var resumed = try BayesianOptimization(
            context: context, state: BayesianOptimization.decodeState(try whole.encodedState()))
        var resumedHistory = wholeHistory
        var later: [Configuration] = []
        for _ in 0..<5 { later.append(try step(&whole, &wholeHistory)) }
        var again: [Configuration] = []
        for _ in 0..<5 { again.append(try step(&resumed, &resumedHistory)) }
        #expect(later == again)
        #expect(whole.state.goalHyperparameters?.count == 2)
    }

    /// A plug-in is told the objectives in hello and each trial's objective values in tell (protocol 2); one
    /// that speaks only protocol 1 is refused for a study of two objectives, with the reason.
    @Test func aPluginIsToldTheObjectiveVectorAndAVersionOnePluginIsRefused() async throws {
        let source = """
            import json, sys
            seen = {"objectives": None, "values": []}
            for line in sys.stdin:
                request = json.loads(line)
                kind = request["type"]
                if kind == "hello":
                    seen["objectives"] = request["objectives"]
                    reply = {"protocol": 2}
                elif kind == "ask":
                    reply = {"configurations": [{"batch": 0.5, "chunk": 2}]}
                elif kind == "tell":
                    seen["values"].append(request["trial"].get("values"))
                    reply = {}
                elif kind == "save":
                    reply = {"state": seen}
                else:
                    reply = {}
                print(json.dumps(reply), flush=True)
            """
        let space = try SearchSpace([
            Parameter("batch", .float(lower: 0, upper: 1)), Parameter("chunk", .int(lower: 1, upper: 4)),
        ])
        let options: [String: JSONValue] = ["command": .array(["python3", "-c", source].map(JSONValue.string))]
        var strategy = try await PluginStrategy(
            context: StrategyContext(space: space, objective: objective, seed: 1, options: options))
        let configuration = try #require(try await strategy.ask(1, history: StudyHistory()).first)
        var trial = Trial(number: 0, configuration: configuration)
        trial.metrics = serving(configuration)
        trial.state = .completed
        trial.score = trial.metrics["tps"]
        try await strategy.tell(trial)
        guard case .object(let seen) = strategy.state.plugin, case .array(let objectives)? = seen["objectives"],
            case .array(let values)? = seen["values"]
        else {
            Issue.record("unexpected plug-in state \(strategy.state.plugin)")
            return
        }
        #expect(objectives.count == 2)
        #expect(objectives.first == .object(["name": .string("tps"), "direction": .string("maximize")]))
        #expect(values == [.array(objective.values(trial.metrics)!.map(JSONValue.number))])

        let old = source.replacingOccurrences(of: #"{"protocol": 2}"#, with: #"{"protocol": 1}"#)
        await #expect {
            _ = try await PluginStrategy(
                context: StrategyContext(
                    space: space, objective: objective, seed: 1,
                    options: ["command": .array(["python3", "-c", old].map(JSONValue.string))]))
        } throws: { error in
            "\(error)".contains("protocol 1, which has one objective")
        }
        // For one objective a version 1 plug-in is still welcome.
        _ = try await PluginStrategy(
            context: StrategyContext(
                space: space, objective: .maximize("tps"), seed: 1,
                options: ["command": .array(["python3", "-c", old].map(JSONValue.string))]))
    }
}
