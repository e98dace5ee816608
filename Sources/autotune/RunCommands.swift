import ArgumentParser
import Autotune
import AutotuneApp
import AutotuneRay
import AutotuneRunner
import AutotuneTask
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Options shared by `run`, `resume` and `worker`.
struct LoopOptions: ParsableArguments {
    @Option(name: .long, help: "Experiments at once (overrides the task file's parallel).")
    var parallel: Int?

    @Option(name: .long, help: "Where trial directories go. Default: autotune-trials beside the database.")
    var trialsDir: String?

    @Option(name: .long, help: "GPU indexes trials may lease, e.g. 0,1,2,3 (overrides the task file and nvidia-smi).")
    var gpus: String?

    @Flag(name: .long, help: "Run each trial as a Slurm job (sbatch): Slurm picks the node and gives the GPUs.")
    var slurm = false

    @Option(name: .long, help: "The Slurm partition for trial jobs (default: the cluster's default).")
    var slurmPartition: String?

    @Option(name: .long, help: "One more sbatch argument for trial jobs, e.g. --slurm-arg=--account=ml (repeatable).")
    var slurmArg: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Run each trial as a Ray job on the cluster whose dashboard is at ADDRESS (e.g. http://head:8265).",
            valueName: "address"))
    var ray: String?

    @Flag(name: .long, help: "Print only the summary, not a line per trial.")
    var quiet = false

    @Flag(name: .long, help: "Log debug details (commands, timings) to standard error.")
    var verbose = false

    func validate() throws {
        if let parallel, parallel < 1 { throw ValidationError("--parallel must be at least 1") }
        if !slurm, slurmPartition != nil || !slurmArg.isEmpty {
            throw ValidationError("--slurm-partition and --slurm-arg need --slurm")
        }
        if slurm, gpus != nil { throw ValidationError("--gpus and --slurm exclude each other: Slurm gives the GPUs") }
        if ray != nil, gpus != nil { throw ValidationError("--gpus and --ray exclude each other: Ray gives the GPUs") }
        if ray != nil, slurm { throw ValidationError("--ray and --slurm exclude each other: pick one scheduler") }
        if let ray {
            do {
                _ = try RayRunner(settings: .init(address: ray))
            } catch {
                throw ValidationError("--ray: \(error.message)")
            }
        }
        _ = try gpuIndexes()
    }

    /// The indexes given with `--gpus`, if any.
    func gpuIndexes() throws -> [Int]? {
        guard let gpus else { return nil }
        let indexes = gpus.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !indexes.isEmpty, indexes.allSatisfy({ ($0 ?? -1) >= 0 }) else {
            throw ValidationError("--gpus must list GPU indexes like 0,1,2,3")
        }
        return indexes.compactMap { $0 }
    }

    /// Where programs run, when the command line says; `nil` leaves it to the task file.
    var execution: Execution? {
        if slurm { return .slurm(SlurmRunner.Settings(partition: slurmPartition, extraArguments: slurmArg)) }
        if let ray { return .ray(RayRunner.Settings(address: ray)) }
        return nil
    }

    /// Whether the command line sends the programs to a scheduler, whose nodes have programs of their own.
    var scheduled: Bool { execution?.schedulerAssignsGPUs == true }

    /// Silent with `--quiet`; a live bar on a terminal; plain lines when standard error is a file or a pipe.
    private var progress: any ProgressReporter {
        if quiet { return SilentProgress() }
        return isatty(STDERR_FILENO) == 1 ? TerminalProgress() : LineProgress()
    }

    /// The run's settings.
    func settings(staleAfter: Duration = .seconds(30)) throws -> RunSettings {
        RunSettings(
            parallel: parallel,
            trialsDirectory: trialsDir.map { URL(fileURLWithPath: $0) },
            gpus: try gpuIndexes(),
            execution: execution,
            progress: progress,
            logger: cliLogger(verbose: verbose),
            staleAfter: staleAfter
        )
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Start a study from a task file (YAML or JSON)."
    )

    @Argument(help: "The task file.")
    var task: String

    @Option(name: .long, help: "The study's name (default: the task file's name field, else its file name).")
    var study: String?

    @Option(name: .long, help: "The seed every random choice derives from (overrides the task file's seed).")
    var seed: UInt64?

    @OptionGroup var store: StoreOptions
    @OptionGroup var loop: LoopOptions

    func validate() throws {
        if let study, let problem = TaskFile.studyNameProblem(study) { throw ValidationError("--study: \(problem)") }
    }

    func run() async throws {
        StopSignals.shared.install()
        try await reportingErrors {
            var task = try LoadedTask.load(self.task, checkPrograms: !loop.scheduled)
            if let study { task.definition.name = study }
            if let seed { task.definition.seed = seed }
            // Kept with the study: `resume` finds (and stops) the jobs a crashed run left where they ran.
            if let execution = loop.execution { task.definition.execution = execution.spec }
            try await store.location.withStore(.create, logger: cliLogger()) { database in
                let stored = try await database.createStudy(task.definition, taskSource: task.source)
                try await runStudy(stored, store: database, location: store.location, settings: try loop.settings())
            }
        }
    }
}

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Work on a study shared through PostgreSQL, beside other workers on this or other machines.",
        discussion: """
            Start as many workers as you like, on any machines that reach the database; each runs up to --parallel \
            trials. Given a task file, the first worker creates the study and the others join it; given a study's \
            name, the worker joins that study. A worker whose heartbeats stop (killed, machine lost) has its \
            trials taken back by the others after --stale-after seconds.
            """
    )

    @Argument(help: "A task file (creates the study or joins it), or the name of a study in the database.")
    var taskOrStudy: String

    @Option(name: .long, help: "The study's name when a task file is given (default: the task file's name).")
    var study: String?

    @Option(name: .long, help: "Seconds without a heartbeat after which another worker's trial is taken back.")
    var staleAfter: Double = 30

    @OptionGroup var store: StoreOptions
    @OptionGroup var loop: LoopOptions

    func validate() throws {
        if staleAfter < 1 { throw ValidationError("--stale-after must be at least 1 second") }
        if staleAfter > Duration.longestLimit.seconds { throw ValidationError("--stale-after is at most a year") }
        if let study, let problem = TaskFile.studyNameProblem(study) { throw ValidationError("--study: \(problem)") }
    }

    func run() async throws {
        StopSignals.shared.install()
        try await reportingErrors {
            let location = store.location
            guard location.isPostgres else {
                throw AutotuneError(
                    .invalidArgument,
                    "autotune worker needs a database that workers share: --db postgres://user@host/database (a SQLite file serves one machine: use autotune run)"
                )
            }
            try await location.withStore(.create, logger: cliLogger()) { database in
                let stored: StoredStudy
                if FileManager.default.fileExists(atPath: taskOrStudy) {
                    var task = try LoadedTask.load(taskOrStudy, checkPrograms: !loop.scheduled)
                    if let study { task.definition.name = study }
                    stored = try await SharedStudy.join(task, in: database, taskPath: taskOrStudy)
                } else {
                    stored = try await location.study(taskOrStudy, in: database)
                }
                if stored.status == .completed {
                    print("Study '\(stored.definition.name)' is already complete.")
                    return
                }
                try await runStudy(
                    stored, store: database, location: location,
                    settings: try loop.settings(staleAfter: .seconds(staleAfter)))
            }
        }
    }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Continue a stopped or crashed study where it left off."
    )

    @Argument(help: "The study's name.")
    var study: String

    @Option(
        name: .long,
        help:
            "A changed task file to go on with: its budget, parallel, time limits, command or server flags, resources and confirm may change; not its parameters, objective, strategy, seed or baseline."
    )
    var task: String?

    @OptionGroup var store: StoreOptions
    @OptionGroup var loop: LoopOptions

    func run() async throws {
        StopSignals.shared.install()
        try await reportingErrors {
            try await store.location.withStudy(study, .existing, logger: cliLogger()) { database, stored in
                var stored = stored
                if let task {
                    stored = try await StudyAmendment.apply(
                        task, to: stored, in: database, checkPrograms: !loop.scheduled)
                }
                if stored.status == .completed {
                    print("Study '\(study)' is already complete.")
                    return
                }
                try await runStudy(stored, store: database, location: store.location, settings: try loop.settings())
            }
        }
    }
}

/// Runs a study to its end or to a signal, printing progress and a summary: alone with a SQLite file, as one of
/// its workers with PostgreSQL.
///
/// The first SIGINT or SIGTERM drains (no new trials, running ones finish), a second one cancels the running
/// trials, which go back to pending. The exit code is then 130 or 143 and `resume` continues.
func runStudy(
    _ study: StoredStudy, store: any StudyStore & ResourceLedger, location: StoreLocation, settings: RunSettings
) async throws {
    let session = await StudySession(study: study, store: store, location: location, settings: settings)
    let loop = try await session.makeLoop()
    let signals = StopSignals.shared
    signals.attach(loop) { first in
        TerminalScreen.standardError.lineAfterBreak(
            first
                ? "autotune: stopping after the running trials finish (again to cancel them)"
                : "autotune: cancelling the running trials")
    }
    defer { signals.detach() }
    for note in session.notes { printError("autotune: " + note) }
    printError(session.heading)
    let summary = try await session.run(loop)
    print(summary.text)
    // A worker stopped while others go on leaves the study running; it was still stopped by the signal.
    if let signal = signals.firstReceived, summary.status != .completed {
        print("\(location.isPostgres ? "Rejoin" : "Resume") with: \(summary.continueCommand)")
        throw ExitCode(128 + signal)
    }
    if let reason = summary.gaveUp {
        throw AutotuneError(
            .noCompletedTrial,
            "stopped early: \(reason); fix what it runs and `\(summary.continueCommand)`, or fix the task file and `\(summary.continueCommand) --task FILE` (or set fail_fast: false)"
        )
    }
    if summary.completedNothing {
        throw AutotuneError(.noCompletedTrial, "no trial completed; see `\(summary.trialsCommand)` for the errors")
    }
}
