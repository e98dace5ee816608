public import Autotune
public import AutotuneRunner
public import Foundation
public import Logging

/// How a run of a study is set up beyond its definition: what the command line or an embedding program says.
public struct RunSettings: Sendable {
    /// Experiments at once, overriding the definition's `parallel`.
    public var parallel: Int?
    /// Where trial directories go, overriding the store's default.
    public var trialsDirectory: URL?
    /// GPU indexes trials may lease (`--gpus`), overriding the task file and nvidia-smi.
    public var gpus: [Int]?
    /// Where programs run, overriding the task file's `execution:`; `nil` keeps the task file's (else here).
    public var execution: Execution?
    /// Where the pool's GPUs are found when the task file declares none.
    public var inventory: any GPUInventory
    /// Receives the run's progress.
    public var progress: any ProgressReporter
    /// The logger.
    public var logger: Logger
    /// For a worker of a shared study: how long without a heartbeat before another worker's trial is taken back.
    public var staleAfter: Duration
    /// The directory commands and servers run in when the task file names none.
    public var workingDirectory: URL

    /// Creates settings; by default programs run here, GPUs come from nvidia-smi, and nothing is printed.
    public init(
        parallel: Int? = nil,
        trialsDirectory: URL? = nil,
        gpus: [Int]? = nil,
        execution: Execution? = nil,
        inventory: any GPUInventory = NvidiaSMIInventory(),
        progress: any ProgressReporter = SilentProgress(),
        logger: Logger = Logger(label: "autotune"),
        staleAfter: Duration = .seconds(30),
        workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    ) {
        self.parallel = parallel
        self.trialsDirectory = trialsDirectory
        self.gpus = gpus
        self.execution = execution
        self.inventory = inventory
        self.progress = progress
        self.logger = logger
        self.staleAfter = staleAfter
        self.workingDirectory = workingDirectory
    }
}

/// One run of a study, from its stored definition to its summary: resources resolved once, the loop built over
/// the right coordinator (alone over SQLite, or as one of a shared study's workers), and what it found.
public struct StudySession: Sendable {
    /// The study as it was when the session began.
    public let study: StoredStudy
    /// Where it is kept.
    public let store: any StudyStore & ResourceLedger
    /// The database as the person named it, for hints.
    public let location: StoreLocation
    /// How the run is set up.
    public let settings: RunSettings
    /// The GPUs trials lease.
    public let gpus: GPUResolution
    /// Where the programs run: the command line's choice, else the task file's, else here.
    public let execution: Execution

    /// Resolves what the run needs (its GPU pool).
    public init(
        study: StoredStudy, store: any StudyStore & ResourceLedger, location: StoreLocation, settings: RunSettings
    ) async {
        self.study = study
        self.store = store
        self.location = location
        self.settings = settings
        let execution = settings.execution ?? study.definition.execution.map(Execution.init) ?? .local
        self.execution = execution
        gpus = await GPUResolution.resolve(
            for: study.definition, override: settings.gpus,
            schedulerAssignsGPUs: execution.schedulerAssignsGPUs, inventory: settings.inventory)
    }

    /// What a person should know before the run starts: GPUs the study needs but none were found, OpenBLAS
    /// running generic kernels under a Bayesian search.
    public var notes: [String] {
        var notes: [String] = []
        if let note = gpus.note {
            notes.append("no GPUs found: \(note); declare them with --gpus or resources.gpus")
        }
        if study.definition.strategy.name == "bayesian", BLAS.coreName == "Prescott" {
            // OpenBLAS picks its kernels before main runs, so only the environment can fix this.
            notes.append(
                "OpenBLAS did not recognise this CPU and uses generic kernels (4-6x slower); set OPENBLAS_CORETYPE=Haswell (AVX2) or SkylakeX (AVX-512)"
            )
        }
        return notes
    }

    /// The line a run starts with.
    public var heading: String {
        "Study '\(study.definition.name)': \(study.definition.strategy.name) search, parallel \(settings.parallel ?? study.definition.parallel), database \(location.displayPath)"
    }

    /// The loop's options.
    public var loopOptions: StudyLoop.Options {
        StudyLoop.Options(
            parallel: settings.parallel,
            trialsDirectory: settings.trialsDirectory ?? location.trialsDirectory,
            progress: settings.progress,
            logger: settings.logger,
            ledger: store,
            gpus: gpus.gpus
        )
    }

    /// The loop: one of a shared study's workers when the store is shared (PostgreSQL), else the study's one
    /// runner; ``AutotuneError/Code/studyBusy`` when another live process runs it.
    public func makeLoop() async throws -> StudyLoop {
        try study.definition.checkWorkloadFiles()
        let experiment = try study.definition.makeExperiment(
            workingDirectory: settings.workingDirectory, execution: execution)
        if let shared = store as? any SharedStudyStore {
            return try StudyLoop(
                study: study, sharedStore: shared, experiment: experiment, options: loopOptions,
                staleAfter: settings.staleAfter)
        }
        return try await StudyLoop(study: study, store: store, experiment: experiment, options: loopOptions)
    }

    /// Runs `loop` (made by ``makeLoop()``) to its end or to a stop, and says what it found.
    public func run(_ loop: StudyLoop) async throws -> RunSummary {
        let outcome = try await loop.run()
        let trials = try await store.trials(ofStudy: study.id)
        var stored = try await store.study(named: study.definition.name) ?? study
        stored.best = outcome.best
        let result = await stored.result(trials: trials, constants: loopOptions.constants)
        return RunSummary(
            study: study.definition.name,
            status: outcome.status,
            completed: trials.count { $0.state == .completed },
            failed: trials.count { $0.state == .failed },
            pending: trials.count { !$0.isFinished },
            seconds: outcome.seconds,
            result: result,
            gaveUp: outcome.gaveUp,
            trials: trials,
            definition: study.definition,
            continueCommand: location.command(
                store is any SharedStudyStore ? "worker" : "resume", study.definition.name),
            trialsCommand: location.command("trials", study.definition.name),
            bestCommand: location.command("best", study.definition.name)
        )
    }
}

/// What one run of a study did and found.
public struct RunSummary: Sendable {
    /// The study's name.
    public var study: String
    /// Its status afterwards (`running` when other workers go on with it).
    public var status: StudyStatus
    /// Trials completed, failed and not finished, over the whole study.
    public var completed: Int
    /// Trials that failed.
    public var failed: Int
    /// Trials not finished.
    public var pending: Int
    /// Seconds this run took.
    public var seconds: Double
    /// What the study found.
    public var result: StudyResult
    /// Why the run gave up early, when it did.
    public var gaveUp: String?
    /// Every trial of the study.
    public var trials: [Trial]
    /// The study's definition.
    public var definition: StudyDefinition
    /// The command that continues the study: `resume`, or `worker` for a shared one.
    public var continueCommand: String
    /// The command that lists the trials.
    public var trialsCommand: String
    /// The command that shows the best.
    public var bestCommand: String

    /// Whether no trial completed although the study is over: nothing to recommend.
    public var completedNothing: Bool { result.searchBest == nil && status == .completed }
}

extension RunSummary {
    /// The lines a run ends with: the counts, then the front or the recommended configuration with the gain over
    /// the baseline and the confirmation table.
    public var text: String {
        var lines = [
            "Study '\(study)' \(status.rawValue): \(completed) completed, \(failed) failed, \(pending) pending, \(String(format: "%.1f", seconds)) s this run"
        ]
        let objective = definition.objective
        if objective.isMultiObjective {
            if result.searchBest != nil {
                let front = result.front
                let names = objective.goals.map(\.label).joined(separator: " against ")
                lines.append(
                    "Pareto front of \(names): \(front.count) trial\(front.count == 1 ? "" : "s") (\(front.map { "#\($0.number)" }.joined(separator: " "))); see them with: \(bestCommand)"
                )
            }
        } else if let best = result.recommended, let trial = trials.first(where: { $0.number == best.number }) {
            if let gain = result.gain { lines.append(gain.sentence) }
            let label =
                result.isConfirmed
                ? "Best (confirmed, the \(definition.confirm?.rankBy == .worst ? "worst" : "mean") of its repeats)"
                : "Best"
            lines.append(
                "\(label): trial \(best.number) \(objective.label)=\(HumanNumber.format(best.score))  \(trial.configuration.display(in: definition.space))"
            )
            if let confirm = definition.confirm, !result.confirmation.isEmpty {
                lines.append(
                    ConfirmationTable(ranking: result.confirmation, confirm: confirm, objective: objective).text)
            }
        }
        return lines.joined(separator: "\n")
    }
}
