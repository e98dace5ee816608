import Autotune
import AutotuneRunner
import AutotuneStore
import AutotuneTesting
import Foundation
import Synchronization
import Testing

private let reference = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../strategies/reference/random_search.py").standardizedFileURL.path

/// A plug-in written inline: the Python body of a `handle(request)` function.
private func plugin(_ body: String) -> [String: JSONValue] {
    let source = """
        import json, sys
        def handle(request):
        \(body.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
        for line in sys.stdin:
            print(json.dumps(handle(json.loads(line))), flush=True)
        """
    return ["command": .array(["python3", "-c", source].map(JSONValue.string)), "timeout": .number(2)]
}

private func context(_ options: [String: JSONValue]) -> StrategyContext {
    StrategyContext(space: StrategyConformance.space(), objective: .minimize("f"), seed: 3, options: options)
}

private func error(_ options: [String: JSONValue], ask: Bool = true) async -> String {
    do {
        var strategy = try await PluginStrategy(context: context(options))
        if ask { _ = try await strategy.ask(2, history: StudyHistory()) }
        return "no error"
    } catch {
        return "\(error)"
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct PluginStrategyTests {
    @Test func theReferencePluginKeepsTheContract() async {
        let options: [String: JSONValue] = ["command": .array([.string("python3"), .string(reference)])]
        let problems = await StrategyConformance(registry: .standard, name: "plugin", options: options).run()
        #expect(problems.isEmpty, "\(problems)")
    }

    /// The plug-in is told the known constraints, the conditions and the constants, and the reference plug-in
    /// keeps them: no proposal breaks a constraint, and an inactive parameter is left out.
    @Test func aPluginIsToldTheConstraintsAndConditionsAndTheReferenceKeepsThem() async throws {
        let space = try SearchSpace(
            [
                Parameter("tp", .categorical([.int(1), .int(2), .int(4), .int(8)])),
                Parameter("pp", .int(lower: 1, upper: 4)),
                Parameter("speculative", .bool),
                Parameter("tokens", .int(lower: 1, upper: 8), when: try ParameterExpression("speculative == true")),
            ],
            constraints: [try ParameterExpression("tp * pp <= gpus")])
        var strategy = try await PluginStrategy(
            context: StrategyContext(
                space: space, objective: .maximize("y"), seed: 1,
                options: ["command": .array([.string("python3"), .string(reference)])], constants: ["gpus": 4]))
        let proposals = try await strategy.ask(40, history: StudyHistory())
        #expect(proposals.count == 40)
        #expect(proposals.allSatisfy { space.isFeasible($0, constants: ["gpus": 4]) })
        #expect(proposals.allSatisfy { ($0["speculative"] == .bool(true)) == ($0["tokens"] != nil) })
        #expect(proposals.contains { $0["speculative"] == .bool(false) } && proposals.contains { $0["tokens"] != nil })
    }

    @Test func protocolViolationsAreClearErrorsWithTheStderrTail() async {
        let greeting =
            #"if request["type"] == "hello": return {"protocol": 1}"# + "\n"
            + #"if request["type"] == "save": return {"state": 1}"# + "\n"
        let garbage = await error(
            plugin(greeting + #"import sys; sys.stderr.write("thinking hard\n"); print("not json"); return {}"#))
        #expect(garbage.contains("not a JSON object") && garbage.contains("thinking hard"), "\(garbage)")
        #expect(await error(plugin(greeting + #"return {"error": "no idea"}"#)).contains("reported an error: no idea"))
        let dead = await error(plugin(greeting + #"import sys; sys.stderr.write("bye\n"); sys.exit(3)"#))
        #expect(dead.contains("exited before answering 'ask'") && dead.contains("bye"), "\(dead)")
        #expect(
            await error(plugin(greeting + "import time; time.sleep(30)")).contains("did not answer 'ask' within 2 s"))
        let outside = await error(plugin(greeting + #"return {"configurations": [{"a": 99}]}"#))
        #expect(outside.contains("outside the space"), "\(outside)")
        let many = await error(plugin(greeting + #"return {"configurations": [{}, {}, {}]}"#))
        #expect(many.contains("returned 3 configurations for an ask of 2"), "\(many)")
        let version = await error(plugin(#"return {"protocol": 3}"#), ask: false)
        #expect(version.contains("speaks protocol 3"), "\(version)")
        #expect(await error(["command": .string("python3 x.py")], ask: false).contains("'command'"))
    }

    @Test func aPluginStudyRunsInParallelAndResumesWhereItStopped() async throws {
        // The plug-ins' stderr files: none may be left behind, however long the study keeps its strategy.
        let temporary = FileManager.default.temporaryDirectory.path
        func logs() throws -> Set<String> {
            Set(
                try FileManager.default.contentsOfDirectory(atPath: temporary).filter {
                    $0.hasPrefix("autotune-plugin-")
                })
        }
        let before = try logs()
        defer { #expect((try? logs().subtracting(before)) == [], "plug-in stderr files were left in \(temporary)") }
        var definition = definition(
            space: StrategyConformance.space(), objective: .minimize("f"), strategy: "plugin", maxTrials: 12,
            parallel: 3)
        definition.strategy.options = ["command": .array([.string("python3"), .string(reference)])]
        let experiment = ScriptedExperiment(delay: { _ in .milliseconds(30) }) { trial in
            .metrics(["f": trial.configuration["x"]?.numericValue ?? 0])
        }
        let trials = try await withTestStudy(definition) { study in
            #expect(try await study.run(stoppingAfter: 5, experiment: experiment).status == .interrupted)
            #expect(try await study.stored().checkpoint != nil)
            #expect(try await study.run(experiment: experiment).status == .completed)
            return try await study.trials()
        }
        #expect(trials.count == 12)
        #expect(trials.allSatisfy { $0.state == .completed })
        #expect(Set(trials.map(\.configuration)).count == 12)
    }
}

/// Optuna's samplers through `strategies/optuna/optuna_strategy.py`; `pip install optuna` (CI does).
enum OptunaPlugin {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../strategies/optuna/optuna_strategy.py").standardizedFileURL.path

    static let available: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import optuna"]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    static let inCI = ProcessInfo.processInfo.environment["CI"] == "true"

    static func options(sampler: String) -> [String: JSONValue] {
        [
            "command": .array([.string("python3"), .string(script)]), "sampler": .string(sampler),
            "startup_trials": .number(4),
        ]
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct OptunaPluginTests {
    @Test(
        .enabled(
            if: OptunaPlugin.available || OptunaPlugin.inCI, "optuna is not installed: pip install optuna (CI does)"),
        arguments: ["tpe", "cmaes"]
    )
    func optunaSamplersKeepTheContract(sampler: String) async throws {
        try #require(OptunaPlugin.available, "CI must install optuna")
        // Optuna's samplers draw from their own random state, which a replayed study does not restore: the
        // bridge does not claim determinism.
        let suite = StrategyConformance(
            registry: .standard, name: "plugin", options: OptunaPlugin.options(sampler: sampler), deterministic: false)
        let problems = await suite.run()
        #expect(problems.isEmpty, "\(sampler): \(problems)")
    }

    @Test(
        .enabled(
            if: OptunaPlugin.available || OptunaPlugin.inCI, "optuna is not installed: pip install optuna (CI does)"))
    func anOptunaStudyRunsInParallelAndResumesWhereItStopped() async throws {
        try #require(OptunaPlugin.available, "CI must install optuna")
        var definition = definition(
            space: StrategyConformance.space(), objective: .minimize("f"), strategy: "plugin", maxTrials: 16,
            parallel: 4)
        definition.strategy.options = OptunaPlugin.options(sampler: "tpe")
        let experiment = ScriptedExperiment(delay: { _ in .milliseconds(20) }) { trial in
            let x = trial.configuration["x"]?.numericValue ?? 0
            return .metrics(["f": x * x])
        }
        let trials = try await withTestStudy(definition) { study in
            #expect(try await study.run(stoppingAfter: 6, experiment: experiment).status == .interrupted)
            #expect(try await study.run(experiment: experiment).status == .completed)
            return try await study.trials()
        }
        #expect(trials.count == 16)
        #expect(trials.allSatisfy { $0.state == .completed })
        #expect(Set(trials.map(\.configuration)).count == 16)
    }
}
