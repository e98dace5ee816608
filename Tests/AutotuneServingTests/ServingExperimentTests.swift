import Autotune
import AutotuneRunner
import AutotuneServing
import Foundation
import Logging
import Testing

private func context(port: Int? = 30005, gpus: [Int]? = [2, 3]) throws -> TrialContext {
    let space = try SearchSpace([
        Parameter("max_num_seqs", .int(lower: 1, upper: 512)), Parameter("enforce_eager", .bool),
        Parameter("tensor_parallel_size", .int(lower: 1, upper: 8)),
    ])
    return TrialContext(
        study: "vllm study",
        trial: Trial(
            number: 7,
            configuration: Configuration([
                "max_num_seqs": .int(64), "enforce_eager": .bool(true), "tensor_parallel_size": .int(2),
            ])
        ),
        space: space,
        seed: 1,
        directory: URL(fileURLWithPath: "/tmp/t7"),
        logger: Logger(label: "test"),
        gpus: gpus,
        port: port
    )
}

@Suite(.timeLimit(.minutes(5))) struct ServingExperimentTests {
    @Test func aLocalServerGetsItsPlaceholdersAndTheUnplacedParametersAsFlags() throws {
        let spec = ServingSpec(
            server: ServerSpec(
                command: [
                    "vllm", "serve", "{model}", "--port", "{port}", "--tensor-parallel-size", "{tensor_parallel_size}",
                ].map(Template.init),
                model: "meta-llama/Llama-3.1-8B-Instruct"
            ),
            benchmark: .load(LoadSpec())
        )
        let arguments = try ServingExperiment(spec: spec, defaultWorkingDirectory: URL(fileURLWithPath: "/"))
            .commandLine(for: context())
        #expect(
            arguments == [
                "vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct", "--port", "30005", "--tensor-parallel-size", "2",
                "--max-num-seqs", "64", "--enforce-eager",
            ]
        )
    }

    @Test func dockerRunPublishesThePortPassesTheGPUsAndMounts() throws {
        let spec = ServingSpec(
            server: ServerSpec(
                command: ["--model", "{model}"].map(Template.init),
                environment: ["HF_TOKEN": Template("{env.HOME}")],
                model: "m",
                launcher: .docker(
                    DockerSpec(
                        image: "vllm/vllm-openai:v0.11.0",
                        containerPort: 8000,
                        mounts: ["/models:/models:ro"],
                        extraArguments: ["--ipc=host"]
                    )
                )
            ),
            benchmark: .load(LoadSpec())
        )
        let arguments = try ServingExperiment(spec: spec, defaultWorkingDirectory: URL(fileURLWithPath: "/"))
            .commandLine(for: context())
        let home = ProcessInfo.processInfo.environment["HOME"] ?? ""
        #expect(
            arguments == [
                "docker", "run", "--rm", "--name", "autotune-vllm-study-7", "--gpus", "\"device=2,3\"",
                "-p", "127.0.0.1:30005:8000", "-v", "/models:/models:ro", "-e", "HF_TOKEN=\(home)", "--ipc=host",
                "vllm/vllm-openai:v0.11.0", "--model", "m", "--max-num-seqs", "64", "--enforce-eager",
                "--tensor-parallel-size", "2",
            ]
        )
    }

    @Test func aServingTrialWithoutAPortIsAClearError() async throws {
        let spec = ServingSpec(server: ServerSpec(command: [Template("true")]), benchmark: .load(LoadSpec()))
        let experiment = ServingExperiment(spec: spec, defaultWorkingDirectory: URL(fileURLWithPath: "/"))
        let error = await #expect(throws: ExperimentError.self) { try await experiment.run(try context(port: nil)) }
        #expect(error?.stage == .deploy)
        #expect(error?.message.contains("needs a reserved port") == true, "\(String(describing: error))")
    }
}
