public import Autotune
public import Foundation

/// Where an experiment's program (a command, a model server) runs: here, as a process group of the runner's,
/// or on a cluster, as a job its scheduler places.
///
/// Either way the program runs until it exits or the calling task is cancelled, which stops it; its output
/// goes to the request's files. What a runner that died left behind is ended with ``recover(trialDirectory:)``.
public protocol ProgramRunner: Sendable {
    /// Runs the program to its end; `onStart` hears where it started once it is running.
    ///
    /// Throws ``LaunchError`` when it cannot be started, `CancellationError` once a cancelled program is
    /// stopped.
    func run(_ request: ProgramRequest, onStart: (@Sendable (ProgramStart) -> Void)?) async throws
        -> ProcessLauncher.Outcome

    /// Ends what the programs a dead runner started for `trial` left running; returns whether it found anything.
    func recover(_ trial: AbandonedTrial) async -> Bool

    /// Whether the scheduler behind it gives the program its GPUs (so the runner leases none).
    var assignsGPUs: Bool { get }
}

/// A program to run for a trial, and what a scheduler needs to know to place it.
public struct ProgramRequest: Sendable {
    /// The argv; the first element is a path (with a `/`) or a name looked up in `PATH`.
    public var arguments: [String]
    /// Variables added to the inherited environment.
    public var environment: [String: String]
    /// Where it runs.
    public var workingDirectory: URL
    /// Where its standard output goes.
    public var standardOutput: URL
    /// Where its standard error goes.
    public var standardError: URL
    /// Time between SIGTERM and SIGKILL when it is stopped.
    public var killGrace: Duration
    /// Where and how the program is placed, beyond the program itself.
    public var scheduling: SchedulingHints

    /// Creates a request for a rendered program.
    public init(
        _ program: RenderedProgram,
        standardOutput: URL,
        standardError: URL,
        killGrace: Duration,
        scheduling: SchedulingHints
    ) {
        self.arguments = program.arguments
        self.environment = program.environment
        self.workingDirectory = URL(fileURLWithPath: program.workingDirectory ?? scheduling.trialDirectory.path)
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.killGrace = killGrace
        self.scheduling = scheduling
    }
}

/// What a program runner needs to know of a trial besides its program.
public struct SchedulingHints: Sendable {
    /// The trial's directory, for the records that let a later run clean up after a crash.
    public var trialDirectory: URL
    /// A name for schedulers' listings, e.g. `autotune-study-12`.
    public var name: String
    /// GPUs to ask the scheduler for, when it assigns them.
    public var gpuCount: Int?
    /// The most the program may run, when the trial has a deadline.
    public var timeLimit: Duration?
    /// Bounds concurrent starts.
    public var launches: LaunchLimiter?
    /// The value of ``TrialProcesses/variable`` the program and its children carry, when the trial has a token.
    public var token: String?

    /// Creates hints.
    public init(
        trialDirectory: URL,
        name: String,
        gpuCount: Int? = nil,
        timeLimit: Duration? = nil,
        launches: LaunchLimiter? = nil,
        token: String? = nil
    ) {
        self.trialDirectory = trialDirectory
        self.name = name
        self.gpuCount = gpuCount
        self.timeLimit = timeLimit
        self.launches = launches
        self.token = token
    }
}

/// Where a program started.
public struct ProgramStart: Sendable, Hashable {
    /// The machine's name as the scheduler calls it (recorded with the trial); `nil` for this machine.
    public var node: String?
    /// The address to reach it on (a server's host); `nil` for this machine.
    public var address: String?
    /// The GPUs the scheduler gave it, when it assigns them.
    public var gpus: [Int]?

    /// Creates a record.
    public init(node: String? = nil, address: String? = nil, gpus: [Int]? = nil) {
        self.node = node
        self.address = address
        self.gpus = gpus
    }
}

/// Runs programs on this machine through ``ProcessLauncher``, recording each process group in the trial's
/// directory so a resume after a crash can end it.
public struct LocalProgramRunner: ProgramRunner {
    /// Creates the runner.
    public init() {}

    /// The runner leases GPUs itself.
    public var assignsGPUs: Bool { false }

    /// Kills the trial's processes (every one carrying its token, and the process group recorded in its
    /// directory) when its runner was a process of this machine that is gone: a live runner's processes, or
    /// another machine's, are not this one's to end.
    public func recover(_ trial: AbandonedTrial) async -> Bool {
        if let previous = trial.previousRunner {
            guard previous.host == RunnerIdentity.current.host, !previous.isAliveOnThisHost else { return false }
        }
        let group = ProcessReaper.reap(in: trial.directory)
        let tokened = TrialProcesses.kill(token: trial.token)
        return group || tokened
    }

    /// Runs the program as a process group of its own.
    public func run(_ request: ProgramRequest, onStart: (@Sendable (ProgramStart) -> Void)?) async throws
        -> ProcessLauncher.Outcome
    {
        try await ProcessLauncher.run(
            request.arguments,
            environment: request.environment,
            workingDirectory: request.workingDirectory,
            standardOutput: request.standardOutput,
            standardError: request.standardError,
            killGrace: request.killGrace,
            launches: request.scheduling.launches,
            token: request.scheduling.token,
            onStart: { [directory = request.scheduling.trialDirectory] pid in
                ProcessReaper.record(pid: pid, in: directory)
                onStart?(ProgramStart())
            }
        )
    }
}
