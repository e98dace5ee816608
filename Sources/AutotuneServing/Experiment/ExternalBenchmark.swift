import Autotune
import AutotuneRunner
import Foundation

/// Runs an external benchmark command (e.g. `vllm bench serve … --save-result`) and reads named metrics
/// from its JSON by dotted key paths.
struct ExternalBenchmark {
    var spec: ExternalBenchmarkSpec

    func run(context: TrialContext, values: [String: String]) async throws -> [String: Double] {
        let arguments = try spec.command.map { template in
            do { return try template.render(values) } catch {
                throw ExperimentError(stage: .benchmark, message: "\(error)")
            }
        }
        let stdout = context.directory.appendingPathComponent("benchmark.stdout.log")
        let stderr = context.directory.appendingPathComponent("benchmark.stderr.log")
        let outcome: ProcessLauncher.Outcome
        do {
            outcome = try await ProcessLauncher.run(
                arguments,
                environment: ["AUTOTUNE_TRIAL_DIR": context.directory.path],
                workingDirectory: context.directory,
                standardOutput: stdout,
                standardError: stderr,
                killGrace: context.killGrace,
                token: context.token.map { TrialProcesses.value(trial: $0, program: "benchmark") }
            )
        } catch let error as LaunchError {
            throw ExperimentError(stage: .benchmark, message: error.description)
        }
        guard outcome.succeeded else {
            throw ExperimentError(
                stage: .benchmark,
                message: "the benchmark command failed (\(outcome.summary))",
                output: ExperimentError.tail(standardOutput: stdout, standardError: stderr)
            )
        }
        let document: JSONValue
        if let file = spec.resultFile {
            let path = try file.render(values)
            guard let data = FileManager.default.contents(atPath: path),
                let value = try? JSONDecoder().decode(JSONValue.self, from: data)
            else {
                throw ExperimentError(stage: .metrics, message: "the benchmark result \(path) is missing or not JSON")
            }
            document = value
        } else {
            let text = String(decoding: FileManager.default.contents(atPath: stdout.path) ?? Data(), as: UTF8.self)
            guard let line = text.split(whereSeparator: \.isNewline).last(where: { $0.hasPrefix("{") }),
                let value = try? JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))
            else {
                throw ExperimentError(stage: .metrics, message: "the benchmark printed no JSON object")
            }
            document = value
        }
        // No key map: a `vllm bench serve --save-result` document, read by its own field names.
        if spec.metrics.isEmpty {
            let metrics = VLLMResult.metrics(from: document)
            guard !metrics.isEmpty else {
                throw ExperimentError(
                    stage: .metrics,
                    message:
                        "the benchmark result has no numeric top-level field; give benchmark.metrics to map its keys")
            }
            return metrics
        }
        var metrics: [String: Double] = [:]
        for (name, path) in spec.metrics {
            guard let value = document.value(atPath: path)?.doubleValue else {
                throw ExperimentError(
                    stage: .metrics, message: "the benchmark result has no number at '\(path)' (metric \(name))")
            }
            metrics[name] = value
        }
        return metrics
    }
}
