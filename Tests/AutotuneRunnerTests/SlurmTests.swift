import Autotune
import Foundation
import Testing

@testable import AutotuneRunner

/// The parts of the Slurm runner that need no cluster: what it submits and how it reads Slurm's answers.
/// The cluster itself is exercised by the CLI's scale-out tests.
@Suite(.timeLimit(.minutes(5))) struct SlurmTests {
    private func request(in directory: URL, arguments: [String], environment: [String: String] = [:]) -> ProgramRequest
    {
        ProgramRequest(
            RenderedProgram(arguments: arguments, environment: environment, workingDirectory: directory.path),
            standardOutput: directory.appendingPathComponent("stdout.log"),
            standardError: directory.appendingPathComponent("stderr.log"),
            killGrace: .seconds(5),
            scheduling: SchedulingHints(
                trialDirectory: directory, name: "autotune-s-3", gpuCount: 2, timeLimit: .seconds(61))
        )
    }

    @Test func aRunningJobLineIsRead() throws {
        // As printed by Slurm 22.05 (`scontrol show job -o 2`), shortened.
        let line =
            "JobId=2 JobName=j.sh UserId=root(0) JobState=RUNNING Reason=None Dependency=(null) ExitCode=0:0 "
            + "RunTime=00:00:01 NodeList=n1 BatchHost=n1 NumNodes=1 Command=/tmp/j.sh WorkDir=/tmp TresPerNode=gres:gpu:2"
        let state = try SlurmJobState(scontrolLine: line)
        #expect(state.state == "RUNNING")
        #expect(state.isRunning && !state.isFinished)
        #expect(state.reason == nil)
        #expect(state.nodes == "n1")
    }

    @Test func aFailedJobsExitCodeAndSignalAreRead() throws {
        let failed = try SlurmJobState(
            scontrolLine: "JobId=2 JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0 NodeList=n2")
        #expect(failed.isFinished)
        #expect(failed.exitCode == 3 && failed.signal == 0)
        #expect(failed.reason == "NonZeroExitCode")
        let killed = try SlurmJobState(scontrolLine: "JobId=5 JobState=CANCELLED Reason=None ExitCode=0:15 NodeList=n1")
        #expect(killed.isFinished && killed.signal == 15)
        let pending = try SlurmJobState(
            scontrolLine: "JobId=6 JobState=PENDING Reason=Resources ExitCode=0:0 NodeList=(null)")
        #expect(!pending.isRunning && !pending.isFinished && pending.nodes == nil && pending.reason == "Resources")
        #expect(throws: SlurmError.self) { try SlurmJobState(scontrolLine: "slurm_load_jobs error: Invalid job id") }
    }

    /// A job caught while Slurm cleans up after it (COMPLETING) ended as its script did; one Slurm ended
    /// says so; one Slurm forgot is judged by the script's record.
    @Test func anEndedJobsOutcomeComesFromTheScriptThenFromSlurm() throws {
        let completing = try SlurmJobState(scontrolLine: "JobId=9 JobState=COMPLETING Reason=None ExitCode=0:0")
        #expect(SlurmRunner.outcome(of: "9", state: completing, recorded: 0, seconds: 1).succeeded)
        #expect(SlurmRunner.outcome(of: "9", state: completing, recorded: 3, seconds: 1).summary == "exit status 3")
        let timeout = try SlurmJobState(scontrolLine: "JobId=9 JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15")
        let timedOut = SlurmRunner.outcome(of: "9", state: timeout, recorded: nil, seconds: 60)
        #expect(!timedOut.succeeded)
        #expect(timedOut.summary == "Slurm job 9 TIMEOUT (TimeLimit), killed by signal 15")
        #expect(SlurmRunner.outcome(of: "9", state: nil, recorded: 0, seconds: 1).succeeded)
        #expect(SlurmRunner.outcome(of: "9", state: nil, recorded: nil, seconds: 1).detail?.contains("without") == true)
    }

    @Test func sbatchAsksForTheTrialsGPUsAndAWholeMinuteLimit() {
        let directory = URL(fileURLWithPath: "/tmp/trial")
        let runner = SlurmRunner(settings: .init(partition: "gpu", extraArguments: ["--account=ml"]))
        let arguments = runner.sbatchArguments(
            for: request(in: directory, arguments: ["true"]), script: directory.appendingPathComponent("job.sh"))
        #expect(arguments.first == "--parsable")
        #expect(arguments.contains("--gres=gpu:2"))
        #expect(arguments.contains("--time=2"))
        #expect(arguments.contains("--job-name=autotune-s-3"))
        #expect(arguments.contains("--output=/tmp/trial/stdout.log"))
        #expect(arguments.contains("--partition=gpu"))
        #expect(arguments.suffix(2) == ["--account=ml", "/tmp/trial/job.sh"])
    }

    /// The job script runs the argv word for word (quotes, spaces, `$` and all), exports the trial's
    /// variables, and records the placement and the exit status; run here with `sh` as Slurm would.
    @Test func theJobScriptRunsTheArgvVerbatimAndRecordsItsEnd() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("slurm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = SlurmRunner.jobScript(
            for: request(
                in: directory,
                arguments: ["sh", "-c", "printf '%s|' \"$0\" \"$1\" \"$GREETING\"; exit 7", "it's", "$HOME a"],
                environment: ["GREETING": "hello 'world'"]
            )
        )
        let file = directory.appendingPathComponent("job.sh")
        try script.write(to: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [file.path]
        process.environment = ["SLURMD_NODENAME": "n2", "SLURM_JOB_GPUS": "2,3", "PATH": "/usr/bin:/bin"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 7)
        #expect(output == "it's|$HOME a|hello 'world'|")
        let placement = try #require(SlurmRunner.placement(in: directory))
        #expect(placement.node == "n2" && placement.gpus == [2, 3])
        #expect(SlurmRunner.exitStatus(in: directory) == 7)
    }
}
