import Autotune
public import Foundation
import Subprocess
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Starts programs the way an experiment needs them: from an argv (never a shell), in a session and
/// process group of their own, with output going to files, and killed as a whole group.
///
/// When the calling task is cancelled the group gets SIGTERM, then SIGKILL after the grace period; and
/// whatever the outcome, a final SIGKILL sweeps the group, so children that outlive the leader (daemons,
/// grandchildren that ignore SIGTERM) do not outlive the trial.
public enum ProcessLauncher {
    /// How a launched program ended.
    public struct Outcome: Sendable, Hashable {
        /// The exit code, or `nil` when a signal ended it.
        public var exitCode: Int32?
        /// The signal that ended it, if one did.
        public var signal: Int32?
        /// Seconds from launch to exit.
        public var seconds: Double
        /// What a scheduler said of the end, e.g. `Slurm job 42 TIMEOUT`, when it said more than a status.
        public var detail: String?
        /// Whether the scheduler lost the machine it ran on (a Ray node gone), so the program's end says nothing
        /// of its configuration.
        public var nodeLost: Bool

        /// `exit status N` or `killed by signal N`, after the scheduler's word if any.
        public var summary: String {
            if nodeLost, exitCode == nil, signal == nil { return detail ?? "its node was lost" }
            let status = exitCode.map { "exit status \($0)" } ?? "killed by signal \(signal ?? 0)"
            return detail.map { "\($0), \(status)" } ?? status
        }

        /// Whether it exited with status 0.
        public var succeeded: Bool { exitCode == 0 && detail == nil }

        /// Creates an outcome.
        public init(exitCode: Int32?, signal: Int32?, seconds: Double, detail: String? = nil, nodeLost: Bool = false) {
            self.exitCode = exitCode
            self.signal = signal
            self.seconds = seconds
            self.detail = detail
            self.nodeLost = nodeLost
        }
    }

    /// Runs `arguments[0]` with the rest as its arguments until it exits or the task is cancelled.
    ///
    /// A first argument with a `/` is a path (relative to `workingDirectory`); otherwise it is looked up
    /// in `PATH`. Standard output and error are written to the given files, created or truncated.
    /// Throws ``LaunchError`` when the program cannot be started, and `CancellationError` when the task was
    /// cancelled (after the group was stopped).
    ///
    /// With a `token` the program gets it as ``TrialProcesses/variable``, and the final sweep also kills every
    /// process carrying it, so a descendant that left the group (`setsid`) does not outlive the run either.
    public static func run(
        _ arguments: [String],
        environment: [String: String] = [:],
        workingDirectory: URL,
        standardOutput: URL,
        standardError: URL,
        killGrace: Duration = .seconds(5),
        launches: LaunchLimiter? = nil,
        token: String? = nil,
        onStart: (@Sendable (Int32) -> Void)? = nil
    ) async throws -> Outcome {
        guard let program = arguments.first, !program.isEmpty else {
            throw LaunchError(program: "", message: "the command is empty")
        }
        let executable: Executable
        if program.contains("/") {
            let url = URL(fileURLWithPath: program, relativeTo: workingDirectory).standardizedFileURL
            guard FileManager.default.isExecutableFile(atPath: url.path) else {
                throw LaunchError(program: program, message: "\(url.path) does not exist or is not executable")
            }
            executable = .path(FilePath(url.path))
        } else {
            executable = .name(program)
        }
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: killGrace)]

        // The permit covers the spawn only: it is returned as soon as the process exists.
        try await launches?.acquire()
        let permit = Mutex(launches)
        let returnPermit = { permit.withLock { limiter in limiter.take()?.release() } }
        defer { returnPermit() }
        let output = try open(standardOutput)
        let error: FileDescriptor
        do {
            error = try open(standardError)
        } catch {
            try? output.close()
            throw error
        }
        let leader = Mutex<pid_t?>(nil)
        let start = ContinuousClock.now
        defer {
            if let pid = leader.withLock({ $0 }) { sweep(processGroup: pid) }
            if let token { TrialProcesses.kill(token: token, exact: true) }
        }
        var environment = environment
        if let token { environment[TrialProcesses.variable] = token }
        let result: ExecutionResult<Void, FileDescriptorOutput, FileDescriptorOutput>
        do {
            result = try await Subprocess.run(
                executable,
                arguments: Arguments(Array(arguments.dropFirst())),
                environment: .inherit.updating(
                    Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(rawValue: $0.key)!, $0.value) })
                ),
                workingDirectory: FilePath(workingDirectory.path),
                platformOptions: options,
                input: .none,
                output: .fileDescriptor(output, closeAfterSpawningProcess: true),
                error: .fileDescriptor(error, closeAfterSpawningProcess: true)
            ) { execution in
                leader.withLock { $0 = execution.processIdentifier.value }
                returnPermit()
                onStart?(execution.processIdentifier.value)
            }
        } catch let failure as SubprocessError {
            try Task.checkCancellation()
            throw LaunchError(program: program, message: "\(failure)")
        }
        try Task.checkCancellation()
        let seconds = (ContinuousClock.now - start).seconds
        switch result.terminationStatus {
        case .exited(let code): return Outcome(exitCode: Int32(code), signal: nil, seconds: seconds)
        case .signaled(let signal): return Outcome(exitCode: nil, signal: Int32(signal), seconds: seconds)
        }
    }

    /// The path `program` runs as: itself when it holds a `/` and is executable, else the first executable of
    /// that name on `PATH`; `nil` when there is none.
    public static func executable(_ program: String) -> String? {
        let files = FileManager.default
        if program.contains("/") { return files.isExecutableFile(atPath: program) ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if files.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Sends SIGKILL to every process left in the group `pid` leads.
    public static func sweep(processGroup pid: Int32) {
        guard pid > 1 else { return }
        _ = kill(-pid, SIGKILL)
    }

    private static func open(_ url: URL) throws -> FileDescriptor {
        try FileDescriptor.open(
            FilePath(url.path),
            .writeOnly,
            options: [.create, .truncate],
            permissions: [.ownerReadWrite, .groupRead, .otherRead]
        )
    }
}

/// A program that could not be started.
public struct LaunchError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The program as given.
    public var program: String
    /// Why it did not start.
    public var message: String

    /// `cannot start 'program': message`.
    public var description: String { "cannot start '\(program)': \(message)" }

    /// Creates an error, for runners outside this module (a cluster's).
    public init(program: String, message: String) {
        self.program = program
        self.message = message
    }
}
