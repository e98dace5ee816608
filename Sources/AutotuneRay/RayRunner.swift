public import Autotune
public import AutotuneRunner
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs each trial's program as a Ray job, through the Ray Jobs REST API: Ray, not Autotune, picks the node and
/// the GPUs.
///
/// The job's entrypoint is the trial's argv, each word single-quoted (no value, name or path reaches a shell
/// unquoted), behind a `cd` to the working directory and one line that reports the GPUs Ray gave it
/// (`CUDA_VISIBLE_DEVICES`); the trial's variables travel in `runtime_env.env_vars`, its GPU count as
/// `entrypoint_num_gpus`. The node is the job's `driver_node_id`, its address the host of the node's job agent.
/// The job's output (Ray keeps standard output and error together) is copied into the trial's standard output
/// file while it runs and when it ends, so nothing needs a file system shared with the nodes except a working
/// directory the program names itself.
///
/// The submission id is `autotune-STUDY-TRIAL-PROGRAM-XXXXXXXX` and the job's metadata carries the trial's token,
/// so a runner started after a crash finds the jobs of a trial, in the trial's directory or by asking Ray, and
/// stops them before the trial runs again. A job whose node Ray lost ends as ``ProcessLauncher/Outcome/nodeLost``.
public struct RayRunner: ProgramRunner {
    /// Where the cluster is and what every job gets.
    public struct Settings: Sendable, Hashable {
        /// The dashboard's address: `HOST:8265` or `http://HOST:8265`.
        public var address: String
        /// Ray's `runtime_env` for every job (e.g. `{"pip": […]}`, `{"working_dir": "s3://…"}`); the trial's
        /// variables are added to its `env_vars`.
        public var runtimeEnvironment: [String: JSONValue]
        /// CPUs reserved for each job's program (`entrypoint_num_cpus`); Ray's default (none) when `nil`.
        public var cpus: Double?
        /// Custom resources each job needs (`entrypoint_resources`), e.g. `{"h100": 1}`.
        public var resources: [String: Double]
        /// How often a job's state is read.
        public var pollInterval: Duration

        /// Creates settings.
        public init(
            address: String,
            runtimeEnvironment: [String: JSONValue] = [:],
            cpus: Double? = nil,
            resources: [String: Double] = [:],
            pollInterval: Duration = .milliseconds(500)
        ) {
            self.address = address
            self.runtimeEnvironment = runtimeEnvironment
            self.cpus = cpus
            self.resources = resources
            self.pollInterval = pollInterval
        }
    }

    /// The file in a trial's directory that lists the trial's Ray submission ids, one per line.
    public static let jobRecordName = "ray-jobs"
    /// The metadata key that carries the trial's token (``TrialProcesses``) on each job.
    static let tokenKey = "autotune_token"
    /// The first line the entrypoint prints: the GPUs Ray gave the job.
    static let placementMarker = "autotune-ray-placement"

    /// Where the cluster is and what every job gets.
    public var settings: Settings
    let client: RayJobsClient

    /// Creates a runner; throws when the address cannot be a Ray dashboard's.
    public init(settings: Settings) throws(AutotuneError) {
        self.settings = settings
        self.client = RayJobsClient(baseURL: try RayJobsClient.baseURL(for: settings.address))
    }

    /// Ray assigns the GPUs.
    public var assignsGPUs: Bool { true }

    /// Submits the program as a job and waits for its end; cancelling the task stops the job.
    public func run(_ request: ProgramRequest, onStart: (@Sendable (ProgramStart) -> Void)?) async throws
        -> ProcessLauncher.Outcome
    {
        guard let program = request.arguments.first, !program.isEmpty else {
            throw LaunchError(program: "", message: "the command is empty")
        }
        let directory = request.scheduling.trialDirectory
        let id = Self.submissionID(for: request.scheduling)
        let body = Self.submission(for: request, id: id, settings: settings)
        // Recorded before it exists: a runner killed during the request still leaves the id for `resume`.
        Self.record(id, in: directory)
        if let data = try? JSONEncoder.sorted.encode(JSONValue.object(body)) {
            try? data.write(to: directory.appendingPathComponent("ray-submission.json"))
        }
        try await request.scheduling.launches?.acquire()
        do {
            defer { request.scheduling.launches?.release() }
            _ = try await client.submit(body)
        } catch let error as RayError {
            throw LaunchError(program: program, message: error.message)
        }
        let start = ContinuousClock.now
        do {
            return try await watch(id, request: request, start: start, onStart: onStart)
        } catch {
            // Cancelled, or Ray stopped answering: the job must not outlive the trial either way.
            await Self.stop(id, client: client, grace: request.killGrace + .seconds(10), poll: settings.pollInterval)
            await copyLogs(of: id, to: request.standardOutput)
            throw error
        }
    }

    /// `autotune-STUDY-TRIAL-PROGRAM-XXXXXXXX`: the trial's job name and program, and a random part, since Ray keeps
    /// every submission id it has seen and a trial that runs again needs a new one.
    static func submissionID(for scheduling: SchedulingHints) -> String {
        let program = scheduling.token.flatMap { $0.split(separator: "/").last.map(String.init) } ?? "job"
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let padded = String(repeating: "0", count: 8 - suffix.count) + suffix
        return "\(scheduling.name)-\(program)-\(padded)"
    }

    /// The `POST /api/jobs/` body for a request.
    static func submission(for request: ProgramRequest, id: String, settings: Settings) -> [String: JSONValue] {
        var environment = settings.runtimeEnvironment
        var variables: [String: JSONValue] = [:]
        if case .object(let given)? = environment["env_vars"] { variables = given }
        for (name, value) in request.environment { variables[name] = .string(value) }
        if let token = request.scheduling.token { variables[TrialProcesses.variable] = .string(token) }
        environment["env_vars"] = .object(variables)
        var body: [String: JSONValue] = [
            "entrypoint": .string(entrypoint(for: request, ownWorkingDirectory: environment["working_dir"] != nil)),
            "submission_id": .string(id),
            "runtime_env": .object(environment),
            "metadata": .object([
                "autotune_job": .string(request.scheduling.name),
                tokenKey: .string(request.scheduling.token ?? ""),
            ]),
        ]
        if let count = request.scheduling.gpuCount, count > 0 { body["entrypoint_num_gpus"] = .number(Double(count)) }
        if let cpus = settings.cpus { body["entrypoint_num_cpus"] = .number(cpus) }
        if !settings.resources.isEmpty {
            body["entrypoint_resources"] = .object(settings.resources.mapValues { .number($0) })
        }
        return body
    }

    /// The shell command Ray runs: into the working directory (the trial's is created on the node, which may not
    /// share the runner's disk), the placement line, then the argv in place of the shell, so Ray's stop reaches
    /// the program itself. With a `working_dir` in the runtime environment, Ray's directory is kept.
    static func entrypoint(for request: ProgramRequest, ownWorkingDirectory: Bool) -> String {
        var parts: [String] = []
        if !ownWorkingDirectory {
            let directory = request.workingDirectory.path
            if request.workingDirectory.standardizedFileURL == request.scheduling.trialDirectory.standardizedFileURL {
                parts.append("mkdir -p \(quote(directory))")
            }
            parts.append("cd \(quote(directory))")
        }
        parts.append("printf '%s %s\\n' \(placementMarker) \"${CUDA_VISIBLE_DEVICES:-}\"")
        parts.append("exec " + request.arguments.map(quote).joined(separator: " "))
        return parts.joined(separator: " && ")
    }

    /// Single-quotes a word for the shell.
    static func quote(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    private func watch(
        _ id: String,
        request: ProgramRequest,
        start: ContinuousClock.Instant,
        onStart: (@Sendable (ProgramStart) -> Void)?
    ) async throws -> ProcessLauncher.Outcome {
        var announced = false
        var unanswered = 0
        var lastCopy = ContinuousClock.now
        while true {
            try await Task.sleep(for: settings.pollInterval)
            let details: RayJobsClient.Details?
            do {
                details = try await client.details(id)
                unanswered = 0
            } catch let error as RayError where error.isTransient && unanswered < Self.unansweredPolls {
                // A head restarting or a network blip: the job goes on regardless.
                unanswered += 1
                continue
            }
            guard let details else {
                // Deleted from outside: nothing more can be learnt of it.
                return ProcessLauncher.Outcome(
                    exitCode: nil, signal: SIGTERM, seconds: (ContinuousClock.now - start).seconds,
                    detail: "Ray job \(id) was deleted")
            }
            let ended = details.isFinished
            let finalLogs = ended ? await settledLogs(of: id) : nil
            if !announced, details.status == "RUNNING" || ended {
                let logs = ended ? finalLogs ?? "" : (try? await client.logs(id)) ?? ""
                let gpus = Self.placementGPUs(in: logs)
                // Ray sets the node when the job's supervisor starts; the GPUs once the program has printed them.
                guard (details.driver_node_id != nil && gpus != nil) || ended else { continue }
                announced = true
                onStart?(
                    ProgramStart(
                        node: details.driver_node_id.map(Self.shortNodeID), address: details.nodeAddress,
                        gpus: gpus.flatMap { $0.isEmpty ? nil : $0 }))
            }
            if ended {
                if let finalLogs { Self.writeProgramOutput(of: finalLogs, to: request.standardOutput) }
                let outcome = Self.outcome(of: id, details: details, seconds: (ContinuousClock.now - start).seconds)
                guard Self.mayHaveLostItsNode(details, outcome), let node = details.driver_node_id,
                    await nodeWasLost(node, agent: details.driver_agent_http_address)
                else { return outcome }
                return .init(
                    exitCode: nil, signal: nil, seconds: outcome.seconds,
                    detail: "Ray lost the node of job \(id) (the job ended first: \(outcome.summary))", nodeLost: true)
            }
            if ContinuousClock.now - lastCopy > .seconds(2) {
                // A live view of a long program (a server's log) for whoever tails the trial's directory.
                await copyLogs(of: id, to: request.standardOutput)
                lastCopy = ContinuousClock.now
            }
        }
    }

    /// Whether an ended job's ending could be its node's loss told first: the program killed by a signal, or the
    /// job failed with no status of the program's. When a node's raylet dies, its job's supervisor can outlive it
    /// for the seconds Ray takes to notice and report the program's end (its process group killed, −9), so Ray
    /// says `JOB_SUPERVISOR_ACTOR_DIED` only when nothing was reported first. An exit status the program chose
    /// is its own.
    static func mayHaveLostItsNode(_ details: RayJobsClient.Details, _ outcome: ProcessLauncher.Outcome) -> Bool {
        details.status == "FAILED" && !outcome.nodeLost && (outcome.signal != nil || details.driver_exit_code == nil)
    }

    /// Whether the node a job ran on is gone. Its own agent answering that its raylet is healthy settles it at
    /// once (the usual case: a program killed for running out of memory); otherwise Ray's control store decides,
    /// asked each second for at most ``nodeVerdictWait`` (it marks a node dead once its health checks have
    /// failed for about 15 seconds). A node the store still counts alive then was not lost.
    func nodeWasLost(_ node: String, agent: String?) async -> Bool {
        let deadline = ContinuousClock.now + Self.nodeVerdictWait
        while true {
            if let alive = try? await client.nodeIsAlive(node), !alive { return true }
            if let agent, await client.rayletIsHealthy(agent: agent) { return false }
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// How long a job that ended by a signal waits for Ray's verdict on its node: twice the time Ray's default
    /// health checks (five missed, three seconds apart) take to call a node dead.
    static let nodeVerdictWait: Duration = .seconds(30)

    /// Polls in a row that may go unanswered before the trial fails.
    static let unansweredPolls = 40

    /// Node ids are 56 hex digits; the first 12 tell a cluster's nodes apart, as Ray's dashboard shows them.
    static func shortNodeID(_ id: String) -> String { String(id.prefix(12)) }

    /// The GPUs in the placement line, `[]` for none, `nil` when the line has not been printed yet.
    static func placementGPUs(in logs: String) -> [Int]? {
        for line in logs.split(separator: "\n", omittingEmptySubsequences: false) where line.hasPrefix(placementMarker)
        {
            return line.dropFirst(placementMarker.count).split(separator: ",").compactMap {
                Int($0.trimmingCharacters(in: .whitespaces))
            }
        }
        return nil
    }

    /// How an ended job ended: the program's exit status; a signal when Ray reports a negative status (Python's
    /// way of saying a signal ended it) or stopped the job; ``ProcessLauncher/Outcome/nodeLost`` when the job's
    /// supervisor died with its node.
    static func outcome(of id: String, details: RayJobsClient.Details, seconds: Double) -> ProcessLauncher.Outcome {
        if details.status == "SUCCEEDED" { return .init(exitCode: 0, signal: nil, seconds: seconds) }
        if details.error_type == "JOB_SUPERVISOR_ACTOR_DIED" {
            return .init(
                exitCode: nil, signal: nil, seconds: seconds, detail: "Ray lost the node of job \(id)", nodeLost: true)
        }
        if let code = details.driver_exit_code {
            return code < 0
                ? .init(exitCode: nil, signal: -code, seconds: seconds)
                : .init(exitCode: code, signal: nil, seconds: seconds)
        }
        let reason = details.message.map { ": " + ($0.split(separator: "\n").first.map(String.init) ?? $0) } ?? ""
        let detail = "Ray job \(id) \(details.status)\(details.error_type.map { " (\($0))" } ?? "")\(reason)"
        // STOPPED without a status: stopped from outside before the program could answer.
        return .init(
            exitCode: details.status == "STOPPED" ? nil : 1, signal: details.status == "STOPPED" ? SIGTERM : nil,
            seconds: seconds, detail: detail)
    }

    /// An ended job's log, read until it holds the placement line the entrypoint prints before the program
    /// starts (at most ``settledLogAttempts`` reads, half a second apart); the last read when it never does (a
    /// job that failed before it), `nil` when none was answered. Under load Ray's log endpoint can fail or
    /// answer empty for a moment after a job ends (the dashboard's agent fetches the log from the job's node),
    /// and a trial whose output is lost fails for nothing: its metrics were in that output.
    func settledLogs(of id: String) async -> String? {
        var last: String?
        for attempt in 0..<Self.settledLogAttempts {
            if attempt > 0 { try? await Task.sleep(for: .milliseconds(500)) }
            guard let logs = try? await client.logs(id) else { continue }
            last = logs
            if Self.placementGPUs(in: logs) != nil { return logs }
        }
        return last
    }

    /// Reads of an ended job's log before its output is taken as it is.
    static let settledLogAttempts = 10

    /// Copies the job's output into `file`, without Ray's own lines and the placement line.
    func copyLogs(of id: String, to file: URL) async {
        guard let logs = try? await client.logs(id) else { return }
        Self.writeProgramOutput(of: logs, to: file)
    }

    /// Writes the program's own lines of a job's log (``programOutput(_:)``) into `file`.
    static func writeProgramOutput(of logs: String, to file: URL) {
        try? Data(programOutput(logs).utf8).write(to: file)
    }

    /// The program's own lines of a job's log: Ray adds its job manager's lines and the entrypoint it runs.
    static func programOutput(_ logs: String) -> String {
        var kept: [Substring] = []
        for line in logs.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(placementMarker) || line.hasPrefix("Running entrypoint for job ") { continue }
            if line.contains("\tINFO job_manager.py:") || line.contains("\tWARNING job_manager.py:") { continue }
            kept.append(line)
        }
        return kept.joined(separator: "\n")
    }

    /// Asks Ray to stop the job and waits, a bounded time, until it has ended.
    static func stop(_ id: String, client: RayJobsClient, grace: Duration, poll: Duration) async {
        // The trial's task is cancelled; this cleanup must still run to its end.
        await Task {
            try? await client.stop(id)
            let deadline = ContinuousClock.now + grace
            while ContinuousClock.now < deadline {
                guard let details = try? await client.details(id), !details.isFinished else { return }
                try? await Task.sleep(for: poll)
            }
        }.value
    }

    static func record(_ id: String, in directory: URL) {
        let file = directory.appendingPathComponent(jobRecordName)
        let previous = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        try? Data((previous + id + "\n").utf8).write(to: file)
    }

    /// Stops what is left of a trial's jobs, wherever its runner was: the ids in its directory, and any job whose
    /// metadata carries its token (found by asking Ray, for a directory that lost its record). Returns whether
    /// any job was still running.
    public func recover(_ trial: AbandonedTrial) async -> Bool {
        var ids = Set<String>()
        if let text = try? String(
            contentsOf: trial.directory.appendingPathComponent(Self.jobRecordName), encoding: .utf8)
        {
            ids.formUnion(text.split(separator: "\n").map(String.init))
        }
        if let jobs = try? await client.list() {
            for job in jobs where !job.isFinished {
                guard let token = job.metadata?[Self.tokenKey], token.hasPrefix(trial.token + "/"),
                    let id = job.submission_id
                else { continue }
                ids.insert(id)
            }
        }
        var stopped = false
        for id in ids.sorted() {
            guard let details = try? await client.details(id), !details.isFinished else { continue }
            await Self.stop(id, client: client, grace: .seconds(20), poll: settings.pollInterval)
            stopped = true
        }
        return stopped
    }
}

extension JSONEncoder {
    /// Keys sorted, for files a person reads and compares.
    fileprivate static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return encoder
    }
}
