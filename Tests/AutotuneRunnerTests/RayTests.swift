import Autotune
import AutotuneTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

@testable import AutotuneRay
@testable import AutotuneRunner

/// The parts of the Ray runner that need no cluster: what it submits, how the entrypoint quotes, and how it reads
/// Ray's answers (as Ray 2.60 gave them). The cluster itself is exercised by the CLI's scale-out tests.
@Suite(.timeLimit(.minutes(5))) struct RayTests {
    private func request(
        in directory: URL, arguments: [String], environment: [String: String] = [:], workingDirectory: URL? = nil
    ) -> ProgramRequest {
        ProgramRequest(
            RenderedProgram(
                arguments: arguments, environment: environment,
                workingDirectory: (workingDirectory ?? directory).path),
            standardOutput: directory.appendingPathComponent("stdout.log"),
            standardError: directory.appendingPathComponent("stderr.log"),
            killGrace: .seconds(5),
            scheduling: SchedulingHints(
                trialDirectory: directory, name: "autotune-s-3", gpuCount: 2, timeLimit: .seconds(61),
                token: "attoken/server")
        )
    }

    /// Values reach the program as words, whatever they hold: the entrypoint run by a real shell gives the program
    /// exactly its argv, and nothing in a value runs.
    @Test func theEntrypointGivesTheProgramItsExactArgvWhateverTheValuesHold() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ray-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let canary = directory.appendingPathComponent("pwned")
        let words = [
            "it's", "$(touch \(canary.path))", "`touch \(canary.path)`", "a b", "; touch \(canary.path)", "\"q\"",
            "$HOME", "",
        ]
        let entrypoint = RayRunner.entrypoint(
            for: request(in: directory, arguments: ["/usr/bin/printf", "[%s]\\n"] + words), ownWorkingDirectory: false)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", entrypoint]
        process.environment = ["CUDA_VISIBLE_DEVICES": "1,3"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // The trial's directory is made on the node, the placement line comes first, then the program's own words.
        #expect(lines.first == "autotune-ray-placement 1,3")
        #expect(RayRunner.placementGPUs(in: output) == [1, 3])
        #expect(Array(lines.dropFirst().prefix(words.count)) == words.map { "[\($0)]" })
        #expect(!FileManager.default.fileExists(atPath: canary.path))
        #expect(FileManager.default.fileExists(atPath: directory.path))
    }

    @Test func aProgramsOwnWorkingDirectoryIsEnteredNotCreatedAndRaysWorkingDirIsKept() {
        let directory = URL(fileURLWithPath: "/tmp/trial")
        let elsewhere = request(
            in: directory, arguments: ["vllm"], workingDirectory: URL(fileURLWithPath: "/models/it's here"))
        let entrypoint = RayRunner.entrypoint(for: elsewhere, ownWorkingDirectory: false)
        #expect(entrypoint.hasPrefix("cd '/models/it'\\''s here' && "))
        #expect(!entrypoint.contains("mkdir"))
        #expect(!RayRunner.entrypoint(for: elsewhere, ownWorkingDirectory: true).contains("cd "))
    }

    @Test func theSubmissionCarriesTheTrialsVariablesGPUsAndToken() throws {
        let directory = URL(fileURLWithPath: "/tmp/trial")
        let settings = RayRunner.Settings(
            address: "head:8265",
            runtimeEnvironment: ["env_vars": .object(["HF_HOME": .string("/cache"), "MODE": .string("cluster")])],
            cpus: 2, resources: ["h100": 1])
        let id = RayRunner.submissionID(for: request(in: directory, arguments: ["x"]).scheduling)
        #expect(id.hasPrefix("autotune-s-3-server-") && id.count == "autotune-s-3-server-".count + 8)
        #expect(id != RayRunner.submissionID(for: request(in: directory, arguments: ["x"]).scheduling))
        let body = RayRunner.submission(
            for: request(in: directory, arguments: ["x"], environment: ["MODE": "trial", "AUTOTUNE_TRIAL": "3"]),
            id: id, settings: settings)
        #expect(body["submission_id"] == .string(id))
        #expect(body["entrypoint_num_gpus"] == .number(2))
        #expect(body["entrypoint_num_cpus"] == .number(2))
        #expect(body["entrypoint_resources"] == .object(["h100": .number(1)]))
        guard case .object(let environment)? = body["runtime_env"],
            case .object(let variables)? = environment["env_vars"]
        else {
            Issue.record("no runtime_env.env_vars in \(body)")
            return
        }
        // The trial's own value wins over the cluster-wide one; the cluster's other variables stay.
        #expect(variables["MODE"] == .string("trial"))
        #expect(variables["HF_HOME"] == .string("/cache"))
        #expect(variables["AUTOTUNE_TRIAL_TOKEN"] == .string("attoken/server"))
        guard case .object(let metadata)? = body["metadata"] else {
            Issue.record("no metadata")
            return
        }
        #expect(metadata["autotune_token"] == .string("attoken/server"))
    }

    @Test func raysAnswersBecomeOutcomes() throws {
        func details(_ json: String) throws -> RayJobsClient.Details {
            try JSONDecoder().decode(RayJobsClient.Details.self, from: Data(json.utf8))
        }
        let succeeded = try details(#"{"status": "SUCCEEDED", "driver_exit_code": 0, "submission_id": "a"}"#)
        #expect(RayRunner.outcome(of: "a", details: succeeded, seconds: 1).succeeded)
        let failed = try details(
            #"{"status": "FAILED", "driver_exit_code": 3, "error_type": "JOB_ENTRYPOINT_COMMAND_ERROR", "message": "Job entrypoint command failed with exit code 3"}"#
        )
        let exit3 = RayRunner.outcome(of: "a", details: failed, seconds: 1)
        #expect(exit3.exitCode == 3 && exit3.signal == nil && !exit3.nodeLost)
        let killed = try details(#"{"status": "FAILED", "driver_exit_code": -9}"#)
        #expect(RayRunner.outcome(of: "a", details: killed, seconds: 1).signal == 9)
        // What Ray 2.60 answered for a job whose node's raylet was killed mid-job.
        let lost = try details(
            #"{"status": "FAILED", "driver_exit_code": null, "error_type": "JOB_SUPERVISOR_ACTOR_DIED", "message": "Job supervisor actor died: The actor died unexpectedly before finishing this task.", "driver_node_id": "9c24d90f6fcecb2e31d758d8e3746779dc4b8d7a8ab53abbdb826c8b", "driver_agent_http_address": "http://192.0.2.2:52367"}"#
        )
        let lostOutcome = RayRunner.outcome(of: "a", details: lost, seconds: 1)
        #expect(lostOutcome.nodeLost && !lostOutcome.succeeded)
        #expect(lostOutcome.summary.contains("lost the node"))
        #expect(lost.nodeAddress == "192.0.2.2")
        let stopped = try details(#"{"status": "STOPPED", "message": "Job was intentionally stopped."}"#)
        let stoppedOutcome = RayRunner.outcome(of: "a", details: stopped, seconds: 1)
        #expect(stoppedOutcome.signal == SIGTERM && stoppedOutcome.exitCode == nil)
        #expect(RayRunner.shortNodeID("9c24d90f6fcecb2e31d758d8e3746779dc4b8d7a8ab53abbdb826c8b") == "9c24d90f6fce")
        // Which endings have their node checked: a signal or a failure with no exit status may be a lost node
        // told first; an exit status the program chose, a success, a stop and a reported loss are what they say.
        func checked(_ job: RayJobsClient.Details) -> Bool {
            RayRunner.mayHaveLostItsNode(job, RayRunner.outcome(of: "a", details: job, seconds: 1))
        }
        let setup = try details(#"{"status": "FAILED", "error_type": "RUNTIME_ENV_SETUP_FAILURE"}"#)
        #expect(checked(killed) && checked(setup))
        #expect(!checked(failed) && !checked(succeeded) && !checked(stopped) && !checked(lost))
    }

    /// Under load Ray's log endpoint can fail, or answer empty, for a moment after a job ends: the ended job's log
    /// is read again until it holds the placement line the entrypoint prints first, so the program's output (the
    /// trial's metrics) is not lost; a log that never holds it is taken as it is after a bounded number of reads.
    @Test func anEndedJobsLogIsReadAgainUntilItHoldsTheProgramsOutput() async throws {
        let reads = Atomic<Int>(0)
        let router = Router()
        router.get("/api/jobs/:id/logs") { _, context -> Response in
            let read = reads.add(1, ordering: .relaxed).newValue
            let body: String
            switch (context.parameters.get("id") ?? "", read) {
            case ("settles", 1): return Response(status: .internalServerError)
            case ("settles", 2): body = #"{"logs": ""}"#
            case ("settles", _): body = #"{"logs": "autotune-ray-placement 0\n{\"y\": 2}\n"}"#
            default: body = #"{"logs": "sh: cd: /missing: No such file or directory\n"}"#
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let runner = try RayRunner(settings: .init(address: "127.0.0.1:\(try #require(client.port))"))
            let logs = try #require(await runner.settledLogs(of: "settles"))
            #expect(RayRunner.programOutput(logs) == "{\"y\": 2}\n")
            #expect(reads.load(ordering: .relaxed) == 3)
            reads.store(0, ordering: .relaxed)
            let failed = await runner.settledLogs(of: "failed-before-the-program")
            #expect(failed == "sh: cd: /missing: No such file or directory\n")
            #expect(reads.load(ordering: .relaxed) == RayRunner.settledLogAttempts)
        }
    }

    @Test func raysOwnLinesAreLeftOutOfTheProgramsOutput() {
        let logs =
            "2026-12-06 03:33:25,638\tINFO job_manager.py:581 -- Runtime env is setting up.\n"
            + "autotune-ray-placement 0\nRunning entrypoint for job t-2: cd '/x' && exec ./run\n"
            + "{\"y\": 1}\nINFO job_manager.py is a word a program may print\n"
        #expect(RayRunner.programOutput(logs) == "{\"y\": 1}\nINFO job_manager.py is a word a program may print\n")
        #expect(RayRunner.placementGPUs(in: "Running entrypoint\nautotune-ray-placement \n") == [])
        #expect(RayRunner.placementGPUs(in: "Running entrypoint\n") == nil)
    }

    @Test func addressesAreReadOrRefusedWithTheFormThatWorks() throws {
        #expect(try RayJobsClient.baseURL(for: "head") == "http://head:8265")
        #expect(try RayJobsClient.baseURL(for: "10.0.0.5:8266") == "http://10.0.0.5:8266")
        #expect(try RayJobsClient.baseURL(for: "https://ray.example.com:443/") == "https://ray.example.com:443")
        #expect(throws: AutotuneError.self) { try RayJobsClient.baseURL(for: "ray://head:10001") }
        #expect(throws: AutotuneError.self) { try RayJobsClient.baseURL(for: "http://head:8265/api/jobs") }
    }

    /// A cluster that lost the trial's node (as Ray reports it) is not the configuration's fault: the trial runs
    /// again, and is recorded from its second attempt.
    @Test func aTrialWhoseNodeWasLostRunsAgain() async throws {
        final class LosesFirstAttempt: ProgramRunner {
            let lost = Mutex(false)
            var assignsGPUs: Bool { false }
            func recover(_ trial: AbandonedTrial) async -> Bool { false }
            func run(_ request: ProgramRequest, onStart: (@Sendable (ProgramStart) -> Void)?) async throws
                -> ProcessLauncher.Outcome
            {
                let first = lost.withLock { was in
                    defer { was = true }
                    return !was
                }
                if first {
                    onStart?(ProgramStart(node: "gone"))
                    return .init(exitCode: nil, signal: nil, seconds: 0, detail: "Ray lost the node", nodeLost: true)
                }
                return try await LocalProgramRunner().run(request, onStart: onStart)
            }
        }
        let space = try SearchSpace([Parameter("x", .categorical([.int(1)]))])
        let trials = try await withTestStudy(
            definition(space: space, maxTrials: 1, parallel: 1, command: ["/bin/sh", "-c", "echo '{{\"score\": 1}}'"])
        ) { study in
            guard case .command(let spec) = try await study.stored().definition.experiment else {
                throw AutotuneError(.configuration, "a command study")
            }
            let experiment = CommandExperiment(
                spec: spec, defaultWorkingDirectory: FileManager.default.temporaryDirectory,
                runner: LosesFirstAttempt())
            #expect(try await study.run(experiment: experiment).status == .completed)
            return try await study.trials()
        }
        let trial = try #require(trials.first)
        #expect(trial.state == .completed && trial.attempt == 2, "\(trial)")
    }
}
