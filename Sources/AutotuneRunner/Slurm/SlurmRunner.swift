import Autotune
import Foundation
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Runs each trial's program as a Slurm batch job: Slurm, not Autotune, picks the node and the GPUs.
///
/// The job is submitted with `sbatch --parsable`, `--gres=gpu:N` for the trial's GPU count and `--time` from
/// its deadline; its state is read with `scontrol show job -o` until it ends, and a cancelled trial is ended
/// with `scancel`. The job script (`job.sh` in the trial's directory) records the node and the GPUs Slurm gave
/// it (`SLURM_JOB_GPUS`, else `CUDA_VISIBLE_DEVICES`) and the program's exit status next to it, so the trial's
/// directory must be on a file system the nodes share, as home and project directories on clusters are.
public struct SlurmRunner: ProgramRunner {
    /// How jobs are submitted and watched.
    public struct Settings: Sendable, Hashable {
        /// The partition (`--partition`); the cluster's default when `nil`.
        public var partition: String?
        /// More `sbatch` arguments, e.g. `--account=ml` or `--constraint=h100`.
        public var extraArguments: [String]
        /// How often a job's state is read.
        public var pollInterval: Duration

        /// Creates settings.
        public init(
            partition: String? = nil, extraArguments: [String] = [], pollInterval: Duration = .milliseconds(500)
        ) {
            self.partition = partition
            self.extraArguments = extraArguments
            self.pollInterval = pollInterval
        }
    }

    /// The file in a trial's directory that names its Slurm job, for `resume` to cancel a job left behind.
    public static let jobRecordName = "slurm-job"
    static let placementName = "slurm-placement"
    static let exitName = "slurm-exit"

    /// How jobs are submitted and watched.
    public var settings: Settings

    /// Creates a runner.
    public init(settings: Settings = Settings()) {
        self.settings = settings
    }

    /// Slurm assigns the GPUs.
    public var assignsGPUs: Bool { true }

    /// Submits the program as a job and waits for its end; cancelling the task cancels the job.
    public func run(_ request: ProgramRequest, onStart: (@Sendable (ProgramStart) -> Void)?) async throws
        -> ProcessLauncher.Outcome
    {
        guard let program = request.arguments.first, !program.isEmpty else {
            throw LaunchError(program: "", message: "the command is empty")
        }
        // Names reach the job script's `export` lines; values are quoted there, names cannot be.
        if let name = request.environment.keys.first(where: { !$0.isEnvironmentVariableName }) {
            throw LaunchError(program: program, message: "'\(name)' is not an environment variable name")
        }
        let directory = request.scheduling.trialDirectory
        for name in [Self.placementName, Self.exitName, Self.jobRecordName] {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
        let script = directory.appendingPathComponent("job.sh")
        do {
            try Self.jobScript(for: request).write(to: script, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        } catch {
            throw LaunchError(program: program, message: "cannot write the job script \(script.path): \(error)")
        }
        let arguments = sbatchArguments(for: request, script: script)
        try? Data((["sbatch"] + arguments).joined(separator: " ").utf8 + [10]).write(
            to: directory.appendingPathComponent("sbatch.txt"))

        try await request.scheduling.launches?.acquire()
        let submitted: String
        do {
            defer { request.scheduling.launches?.release() }
            submitted = try await Self.retryingBusyController { try await Self.command("sbatch", arguments) }
        } catch let error as SlurmError {
            throw LaunchError(program: program, message: "sbatch refused the job: \(error.message)")
        }
        // `--parsable` prints `ID` or `ID;CLUSTER`.
        guard let job = submitted.split(separator: ";").first.map(String.init), Int(job) != nil else {
            throw LaunchError(program: program, message: "sbatch printed no job id: \(submitted)")
        }
        try? Data((job + "\n").utf8).write(to: directory.appendingPathComponent(Self.jobRecordName))
        let start = ContinuousClock.now
        do {
            return try await watch(job, directory: directory, start: start, onStart: onStart)
        } catch {
            // Cancelled, or Slurm stopped answering: the job must not outlive the trial either way.
            await Self.cancel(job, grace: request.killGrace + .seconds(5), poll: settings.pollInterval)
            throw error
        }
    }

    /// The `sbatch` arguments for a request.
    func sbatchArguments(for request: ProgramRequest, script: URL) -> [String] {
        var arguments = [
            "--parsable",
            "--job-name=\(request.scheduling.name)",
            "--output=\(request.standardOutput.path)",
            "--error=\(request.standardError.path)",
            "--chdir=\(request.workingDirectory.path)",
            "--export=ALL",
        ]
        if let count = request.scheduling.gpuCount, count > 0 { arguments.append("--gres=gpu:\(count)") }
        if let limit = request.scheduling.timeLimit {
            // Slurm's limit is in whole minutes; the trial's own deadline stays the exact one.
            arguments.append("--time=\(max(1, Int((limit.seconds / 60).rounded(.up))))")
        }
        if let partition = settings.partition { arguments.append("--partition=\(partition)") }
        return arguments + settings.extraArguments + [script.path]
    }

    /// A POSIX shell script that records the placement, sets the trial's variables and runs the argv.
    static func jobScript(for request: ProgramRequest) -> String {
        let directory = request.scheduling.trialDirectory.path
        var lines = [
            "#!/bin/sh",
            "# Autotune trial job: records where Slurm placed it, runs the program, records its exit status.",
            "printf '%s\\n%s\\n' \"${SLURMD_NODENAME:-$(hostname)}\" \"${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-}}\" > "
                + quote(directory + "/" + placementName),
        ]
        for (name, value) in request.environment.sorted(by: { $0.key < $1.key }) {
            lines.append("export \(name)=\(quote(value))")
        }
        lines.append(request.arguments.map(quote).joined(separator: " "))
        lines.append("status=$?")
        lines.append("echo \"$status\" > " + quote(directory + "/" + exitName))
        lines.append("exit \"$status\"")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Single-quotes a word for the shell.
    static func quote(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    private func watch(
        _ job: String,
        directory: URL,
        start: ContinuousClock.Instant,
        onStart: (@Sendable (ProgramStart) -> Void)?
    ) async throws -> ProcessLauncher.Outcome {
        var announced = false
        var unanswered = 0
        while true {
            try await Task.sleep(for: settings.pollInterval)
            let state: SlurmJobState?
            do {
                state = try await Self.state(of: job)
                unanswered = 0
            } catch is SlurmError where unanswered < Self.unansweredPolls {
                // A busy controller times out now and then; the job goes on regardless.
                unanswered += 1
                continue
            }
            let recorded = Self.exitStatus(in: directory)
            // A job Slurm has forgotten has ended too.
            let ended = state.map { $0.isFinished || ($0.state == "COMPLETING" && recorded != nil) } ?? true
            if !announced, state?.isRunning == true || ended {
                let placement = Self.placement(in: directory)
                guard placement != nil || ended else { continue }
                // The host to reach the program on is the node's address, as Slurm knows it.
                let node = placement?.node ?? state?.nodes
                let address: String? =
                    if let node, !node.isEmpty { (try? await Self.address(ofNode: node)) ?? node } else { nil }
                announced = true
                onStart?(ProgramStart(node: node, address: address, gpus: placement?.gpus))
            }
            guard ended else { continue }
            return Self.outcome(
                of: job, state: state, recorded: recorded, seconds: (ContinuousClock.now - start).seconds)
        }
    }

    /// How an ended job ended: the script's recorded exit status first, then Slurm's; Slurm's word when it
    /// ended the job itself (`TIMEOUT`, `CANCELLED`, `NODE_FAIL`, …).
    static func outcome(of job: String, state: SlurmJobState?, recorded: Int32?, seconds: Double)
        -> ProcessLauncher.Outcome
    {
        guard let state else {
            // Slurm has forgotten the job (MinJobAge passed): the script's own record is all there is.
            return ProcessLauncher.Outcome(
                exitCode: recorded ?? 1, signal: nil, seconds: seconds,
                detail: recorded == nil ? "Slurm job \(job) left the queue without an exit status" : nil)
        }
        // COMPLETING: the script has ended (its exit status is recorded) and Slurm is cleaning up.
        let normal = ["COMPLETED", "FAILED", "COMPLETING"].contains(state.state)
        return ProcessLauncher.Outcome(
            exitCode: state.signal == 0 ? (recorded ?? state.exitCode) : nil,
            signal: state.signal == 0 ? nil : state.signal,
            seconds: seconds,
            detail: normal ? nil : "Slurm job \(job) \(state.state)\(state.reason.map { " (\($0))" } ?? "")"
        )
    }

    /// Polls in a row that may go unanswered (a controller busy or restarting) before the trial fails.
    static let unansweredPolls = 40

    /// Runs a Slurm command again, up to three times in all, when the controller says it is busy.
    static func retryingBusyController(_ body: () async throws -> String) async throws -> String {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch let error as SlurmError where attempt < 3 && error.isTransient {
                attempt += 1
                try await Task.sleep(for: .seconds(attempt))
            }
        }
    }

    /// The job's state, or `nil` when Slurm no longer knows it.
    static func state(of job: String) async throws -> SlurmJobState? {
        do {
            return try SlurmJobState(scontrolLine: try await command("scontrol", ["show", "job", "-o", job]))
        } catch let error as SlurmError where error.isUnknownJob {
            return nil
        }
    }

    /// A node's address (`NodeAddr`), or `nil` when Slurm does not say.
    static func address(ofNode node: String) async throws -> String? {
        let line = try await command("scontrol", ["show", "node", "-o", node])
        return SlurmJobState.fields(line)["NodeAddr"]
    }

    /// Cancels the job and waits, a bounded time, until it has left the running states.
    static func cancel(_ job: String, grace: Duration, poll: Duration) async {
        // The trial's task is cancelled; this cleanup must still run to its end.
        await Task {
            _ = try? await command("scancel", [job])
            let deadline = ContinuousClock.now + grace
            while ContinuousClock.now < deadline {
                guard let state = try? await state(of: job), !state.isFinished else { return }
                try? await Task.sleep(for: poll)
            }
        }.value
    }

    /// Where the job script says it ran.
    static func placement(in directory: URL) -> (node: String, gpus: [Int]?)? {
        guard let text = try? String(contentsOf: directory.appendingPathComponent(placementName), encoding: .utf8)
        else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let node = lines.first, !node.isEmpty else { return nil }
        let gpuText = lines.count > 1 ? lines[1] : ""
        let gpus = gpuText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return (node, gpus.isEmpty ? nil : gpus)
    }

    static func exitStatus(in directory: URL) -> Int32? {
        guard let text = try? String(contentsOf: directory.appendingPathComponent(exitName), encoding: .utf8) else {
            return nil
        }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Runs a Slurm command and returns its trimmed standard output; throws ``SlurmError`` when it fails.
    static func command(_ name: String, _ arguments: [String]) async throws -> String {
        let output: String?
        let errorOutput: String?
        let status: TerminationStatus
        do {
            let result = try await Subprocess.run(
                .name(name),
                arguments: Arguments(arguments),
                output: .string(limit: 1 << 20),
                error: .string(limit: 1 << 16)
            )
            output = result.standardOutput
            errorOutput = result.standardError
            status = result.terminationStatus
        } catch {
            throw SlurmError(message: "cannot run \(name): \(error)")
        }
        guard status.isSuccess else {
            let message = (errorOutput ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            throw SlurmError(message: "\(name) failed (\(status)): \(message)")
        }
        return (output ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Cancels the job recorded in a trial's directory, if any, wherever its runner was: the job runs on the
    /// cluster, not on the runner's machine.
    public func recover(_ trial: AbandonedTrial) async -> Bool {
        await Self.cancelRecordedJob(in: trial.directory)
    }

    /// Cancels the job recorded in a trial's directory if it has not ended; returns whether it did.
    static func cancelRecordedJob(in directory: URL) async -> Bool {
        guard let text = try? String(contentsOf: directory.appendingPathComponent(jobRecordName), encoding: .utf8),
            case let job = text.trimmingCharacters(in: .whitespacesAndNewlines), Int(job) != nil,
            let state = try? await state(of: job), !state.isFinished
        else { return false }
        await cancel(job, grace: .seconds(10), poll: .milliseconds(500))
        return true
    }
}

/// A Slurm command that failed.
public struct SlurmError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What it printed.
    public var message: String
    /// The message.
    public var description: String { message }

    /// Whether Slurm no longer knows the job (it ended and was purged), in Slurm's own wording: its commands say
    /// so only in text.
    var isUnknownJob: Bool { message.contains("Invalid job id") }

    /// Whether the controller was only busy or unreachable for a moment (Slurm's own wording).
    var isTransient: Bool {
        ["timed out", "Socket", "try again", "temporarily", "Unable to contact slurm controller"].contains {
            message.localizedCaseInsensitiveContains($0)
        }
    }
}

/// A job's state as `scontrol show job -o` prints it.
public struct SlurmJobState: Sendable, Hashable {
    /// `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`, `TIMEOUT`, ….
    public var state: String
    /// Why it is in that state, when Slurm says (`Resources`, `NonZeroExitCode`, …).
    public var reason: String?
    /// The exit code of the batch script.
    public var exitCode: Int32
    /// The signal that ended it, 0 for none.
    public var signal: Int32
    /// The nodes it runs or ran on.
    public var nodes: String?

    /// Reads `JobState`, `Reason`, `ExitCode=CODE:SIGNAL` and `NodeList` from one `-o` line.
    public init(scontrolLine line: String) throws {
        let fields = Self.fields(line)
        guard let state = fields["JobState"] else {
            throw SlurmError(message: "scontrol printed no JobState: \(line.prefix(200))")
        }
        self.state = state
        reason = fields["Reason"].flatMap { $0 == "None" || $0 == "(null)" ? nil : $0 }
        let exit = (fields["ExitCode"] ?? "0:0").split(separator: ":").map { Int32($0) ?? 0 }
        exitCode = exit.first ?? 0
        signal = exit.count > 1 ? exit[1] : 0
        nodes = fields["NodeList"].flatMap { $0 == "(null)" || $0.isEmpty ? nil : $0 }
    }

    /// Whether the job has ended, one way or another.
    public var isFinished: Bool {
        [
            "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL",
            "DEADLINE",
        ].contains(state)
    }

    /// Whether the program is running.
    public var isRunning: Bool { state == "RUNNING" || state == "COMPLETING" }

    /// `Key=Value` pairs of a one-line listing; values with spaces (commands, paths) are cut, which the keys
    /// read here never have.
    static func fields(_ line: String) -> [String: String] {
        var fields: [String: String] = [:]
        for token in line.split(whereSeparator: \.isWhitespace) {
            guard let equals = token.firstIndex(of: "=") else { continue }
            let key = String(token[..<equals])
            if fields[key] == nil { fields[key] = String(token[token.index(after: equals)...]) }
        }
        return fields
    }
}
