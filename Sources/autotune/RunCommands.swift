import ArgumentParser
import Autotune
import AutotuneRunner
import AutotuneStore
import AutotuneTask
import Dispatch
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Options shared by `run` and `resume`.
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
        try await reportingErrors {
            var (definition, source) = try loadTask(task, checkPrograms: !loop.slurm)
            if let study { definition.name = study }
            if let seed { definition.seed = seed }
            try await store.withStore { database in
                let stored: StoredStudy
                do {
                    stored = try await database.createStudy(definition, taskSource: source)
                } catch let error as StoreError {
                    throw CLIError(.notFound, error.description)
                }
                try await runStudy(stored, store: database, storeOptions: store, options: loop)
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
        try await reportingErrors {
            guard store.isPostgres else {
                throw CLIError(
                    .runtime,
                    "autotune worker needs a database that workers share: --db postgres://user@host/database (a SQLite file serves one machine: use autotune run)"
                )
            }
            try await store.withStore { database in
                let stored: StoredStudy
                if FileManager.default.fileExists(atPath: taskOrStudy) {
                    var (definition, source) = try loadTask(taskOrStudy, checkPrograms: !loop.slurm)
                    if let study { definition.name = study }
                    do {
                        stored = try await database.createStudy(definition, taskSource: source)
                    } catch let error as StoreError where error.code == .studyExists {
                        guard let existing = try await database.study(named: definition.name) else {
                            throw CLIError(.runtime, "study '\(definition.name)' vanished while joining it")
                        }
                        guard existing.definition == definition else {
                            throw CLIError(
                                .invalidTask,
                                "study '\(definition.name)' exists with a different definition than \(taskOrStudy); join it by name (autotune worker \(definition.name)) or choose another with --study"
                            )
                        }
                        stored = existing
                    }
                } else {
                    stored = try await store.study(taskOrStudy, in: database)
                }
                if stored.status == .completed {
                    print("Study '\(stored.definition.name)' is already complete.")
                    return
                }
                try await runStudy(
                    stored, store: database, storeOptions: store, options: loop, staleAfter: .seconds(staleAfter))
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

    @OptionGroup var store: StoreOptions
    @OptionGroup var loop: LoopOptions

    func run() async throws {
        try await reportingErrors {
            try await store.withStudy(study, .existing) { database, stored in
                if stored.status == .completed {
                    print("Study '\(study)' is already complete.")
                    return
                }
                try await runStudy(stored, store: database, storeOptions: store, options: loop)
            }
        }
    }
}

/// Runs a study to its end or to a signal, printing progress and a summary: alone with a SQLite file, as
/// one of its workers with PostgreSQL.
///
/// The first SIGINT or SIGTERM drains (no new trials, running ones finish), a second one cancels the running
/// trials, which go back to pending. The exit code is then 130 or 143 and `resume` continues.
func runStudy(
    _ study: StoredStudy,
    store: any StudyStore & ResourceLedger,
    storeOptions: StoreOptions,
    options: LoopOptions,
    staleAfter: Duration = .seconds(30)
) async throws {
    let logger = cliLogger(verbose: options.verbose)
    let storePath = storeOptions.displayPath
    let trialsDirectory =
        options.trialsDir.map { URL(fileURLWithPath: $0) }
        ?? storeOptions.trialsDirectory
    let gpus = try await gpuPool(for: study.definition, options: options, logger: logger)
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    let loopOptions = StudyLoop.Options(
        parallel: options.parallel,
        trialsDirectory: trialsDirectory,
        progress: progressReporter(quiet: options.quiet),
        logger: logger,
        ledger: store,
        gpus: gpus
    )
    let experiment = makeExperiment(for: study.definition, workingDirectory: cwd, options: options)
    let runner: StudyLoop
    do {
        if let shared = store as? any SharedStudyStore {
            runner = try StudyLoop(
                study: study, sharedStore: shared, experiment: experiment, options: loopOptions,
                staleAfter: staleAfter)
        } else {
            runner = try await StudyLoop(study: study, store: store, experiment: experiment, options: loopOptions)
        }
    } catch let error as RunnerError {
        throw CLIError(.runtime, error.description)
    }
    let received = Mutex<Int32?>(nil)
    let sources = [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            let first = received.withLock { value in
                defer { if value == nil { value = number } }
                return value == nil
            }
            TerminalScreen.standardError.lineAfterBreak(
                first
                    ? "autotune: stopping after the running trials finish (again to cancel them)"
                    : "autotune: cancelling the running trials")
            runner.requestStop(first ? .drain : .cancel)
        }
        source.resume()
        return source
    }
    defer { sources.forEach { $0.cancel() } }

    if study.definition.strategy.name == "bayesian", BLAS.coreName == "Prescott" {
        // OpenBLAS picks its kernels before main runs, so only the environment can fix this.
        FileHandle.standardError.write(
            Data(
                ("autotune: OpenBLAS did not recognise this CPU and uses generic kernels (4-6x slower); "
                    + "set OPENBLAS_CORETYPE=Haswell (AVX2) or SkylakeX (AVX-512)\n").utf8
            )
        )
    }
    FileHandle.standardError.write(
        Data(
            "Study '\(study.definition.name)': \(study.definition.strategy.name) search, parallel \(options.parallel ?? study.definition.parallel), database \(storePath)\n"
                .utf8)
    )
    let outcome = try await runner.run()
    let trials = try await store.trials(ofStudy: study.id)
    let completed = trials.filter { $0.state == .completed }.count
    let failed = trials.filter { $0.state == .failed }.count
    let pending = trials.filter { !$0.isFinished }.count
    print(
        "Study '\(study.definition.name)' \(outcome.status.rawValue): \(completed) completed, \(failed) failed, \(pending) pending, \(String(format: "%.1f", outcome.seconds)) s this run"
    )
    let objective = study.definition.objective
    if objective.isMultiObjective, let best = outcome.best {
        let names = objective.goals.map(\.label).joined(separator: " against ")
        print(
            "Pareto front of \(names): \(best.front.count) trial\(best.front.count == 1 ? "" : "s") (\(best.front.map { "#\($0.number)" }.joined(separator: " "))); see them with: \(storeOptions.command("best", study.definition.name))"
        )
    } else if var best = outcome.best, var trial = trials.first(where: { $0.number == best.number }) {
        let confirm = study.definition.confirm
        let ranking = confirm?.ranking(of: trials, objective: objective) ?? []
        var label = "Best"
        if let confirm, let confirmed = confirm.best(of: ranking),
            let winner = trials.first(where: { $0.number == confirmed.number })
        {
            (best, trial) = (confirmed, winner)
            label = "Best (confirmed, the \(confirm.rankBy.rawValue) of its repeats)"
        }
        if study.definition.baseline != nil, let baseline = trials.first(where: { $0.number == 0 }) {
            print(baselineComparison(baseline, best: best, objective: study.definition.objective))
        }
        print(
            "\(label): trial \(best.number) \(study.definition.objective.label)=\(HumanNumber.format(best.score))  \(trial.configuration.display(in: study.definition.space))"
        )
        if let confirm, !ranking.isEmpty {
            print(BestCommand.confirmation(ranking, confirm: confirm, objective: objective))
        }
    }
    // A worker stopped while others go on leaves the study running; it was still stopped by the signal.
    if let signal = received.withLock({ $0 }), outcome.status != .completed {
        if storeOptions.isPostgres {
            print("Rejoin with: \(storeOptions.command("worker", study.definition.name))")
        } else {
            print("Resume with: \(storeOptions.command("resume", study.definition.name))")
        }
        throw ExitCode(128 + signal)
    }
    if let reason = outcome.gaveUp {
        throw CLIError(
            .noCompletedTrial,
            "stopped early: \(reason); fix it and `\(storeOptions.command("resume", study.definition.name))` (or set fail_fast: false)"
        )
    }
    if outcome.best == nil, outcome.status == .completed {
        throw CLIError(
            .noCompletedTrial,
            "no trial completed; see `\(storeOptions.command("trials", study.definition.name))` for the errors")
    }
}

/// The GPUs a study's trials may lease: `--gpus`, else the task file's list, else what nvidia-smi finds.
private func gpuPool(for definition: StudyDefinition, options: LoopOptions, logger: Logger) async throws -> [GPU] {
    // The pool is also what `gpus` means in a constraint between parameters.
    let constrainsGPUs = definition.space.constraints.contains { $0.names.contains("gpus") }
    guard definition.resources.gpusPerTrial != nil || constrainsGPUs, !options.slurm else { return [] }
    if let indexes = try options.gpuIndexes() { return indexes.map { GPU(index: $0) } }
    switch definition.resources.gpus {
    case .declared(let indexes):
        return indexes.map { GPU(index: $0) }
    case .discover:
        let found = await NvidiaSMIInventory().discover()
        if let note = found.note {
            FileHandle.standardError.write(
                Data("autotune: no GPUs found: \(note); declare them with --gpus or resources.gpus\n".utf8))
        }
        return found.gpus
    }
}

/// Silent with `--quiet`; a live bar on a terminal; plain lines when standard error is a file or a pipe.
private func progressReporter(quiet: Bool) -> any ProgressReporter {
    if quiet { return SilentProgress() }
    return isatty(STDERR_FILENO) == 1 ? TerminalProgress() : LineProgress()
}

/// `Baseline (trial 0): 4120; the best is 61.3% better.`, or why the baseline has no score.
func baselineComparison(_ baseline: Trial, best: BestTrial, objective: Objective) -> String {
    guard let score = baseline.score else {
        return "Baseline (trial 0): \(baseline.error?.summary ?? "no score")"
    }
    let gain = gainFraction(best.score, over: score, objective: objective)
    return
        "Baseline (trial 0): \(HumanNumber.format(score)); the best is \(String(format: "%.1f", gain * 100))% better."
}

/// How much better `score` is than `baseline`, as a fraction of the baseline (in the objective's direction).
func gainFraction(_ score: Double, over baseline: Double, objective: Objective) -> Double {
    guard baseline != 0 else { return 0 }
    return objective.direction == .maximize ? (score - baseline) / abs(baseline) : (baseline - score) / abs(baseline)
}
