public import Autotune
public import AutotuneRay
public import AutotuneReport
public import AutotuneRunner
import AutotuneServing
import AutotuneTask
public import Foundation
import Logging

/// A task file read and validated, with its text as the study keeps it.
public struct LoadedTask: Sendable {
    /// The study it defines.
    public var definition: StudyDefinition
    /// The file's text.
    public var source: String
}

extension LoadedTask {
    /// Reads and validates the task file at `path` (relative to `workingDirectory`), the strategy's options
    /// included; an invalid file is ``AutotuneError/Code/invalidTask`` with its file:line:field message, the
    /// ``TaskFileError`` underneath.
    ///
    /// With `checkPrograms`, a command whose program cannot be run here is refused too; not when a scheduler
    /// (Slurm, Ray) runs the programs on nodes that have programs of their own.
    public static func load(
        _ path: String,
        workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
        registry: StrategyRegistry = .standard,
        checkPrograms: Bool = true
    ) throws -> Self {
        do {
            let programs: TaskFile.ProgramCheck? = checkPrograms ? { Self.programProblem($0) } : nil
            let (definition, source) = try TaskFile.load(
                path: path, workingDirectory: workingDirectory,
                strategies: { spec, context in try registry.check(spec.name, context: context) },
                programs: programs)
            return Self(definition: definition, source: source)
        } catch {
            throw AutotuneError(.invalidTask, error.description, underlying: error)
        }
    }

    /// Why `program` cannot be run here, or `nil` when it can.
    static func programProblem(_ program: String) -> String? {
        guard ProcessLauncher.executable(program) == nil else { return nil }
        return program.contains("/")
            ? "\(program) does not exist or is not executable"
            : "'\(program)' is not found on PATH (install it, or give its full path)"
    }
}

/// Where a study's programs run.
public enum Execution: Sendable, Hashable {
    /// On this machine, in process groups of their own.
    case local
    /// As Slurm jobs: Slurm picks the node and gives the GPUs.
    case slurm(SlurmRunner.Settings)
    /// As Ray jobs: Ray picks the node and gives the GPUs.
    case ray(RayRunner.Settings)

    /// Whether a scheduler, not the runner, places trials and gives them GPUs.
    public var schedulerAssignsGPUs: Bool { spec.schedulerAssignsGPUs }

    /// The execution a task file's `execution:` section describes.
    public init(_ spec: ExecutionSpec) {
        switch spec {
        case .local: self = .local
        case .slurm(let partition, let arguments):
            self = .slurm(SlurmRunner.Settings(partition: partition, extraArguments: arguments))
        case .ray(let ray):
            self = .ray(
                RayRunner.Settings(
                    address: ray.address, runtimeEnvironment: ray.runtimeEnvironment, cpus: ray.cpus,
                    resources: ray.resources))
        }
    }

    /// The execution as a study records it, so a resume runs (and recovers) its trials where they ran.
    public var spec: ExecutionSpec {
        switch self {
        case .local: .local
        case .slurm(let settings): .slurm(partition: settings.partition, arguments: settings.extraArguments)
        case .ray(let settings):
            .ray(
                RayExecution(
                    address: settings.address, runtimeEnvironment: settings.runtimeEnvironment, cpus: settings.cpus,
                    resources: settings.resources))
        }
    }

    /// The program runner for this execution; a Ray address that cannot be one is refused here.
    public func makeRunner() throws(AutotuneError) -> any ProgramRunner {
        switch self {
        case .local: LocalProgramRunner()
        case .slurm(let settings): SlurmRunner(settings: settings)
        case .ray(let settings): try RayRunner(settings: settings)
        }
    }
}

extension StudyDefinition {
    /// The experiment this study runs, its programs started as `execution` says; `{autotune}` in templates is
    /// `executable`.
    public func makeExperiment(
        workingDirectory: URL, execution: Execution = .local, executable: String = AutotuneExecutable.path
    ) throws(AutotuneError) -> any Experiment {
        experiment.makeExperiment(
            workingDirectory: workingDirectory, runner: try execution.makeRunner(),
            extraPlaceholders: ["autotune": executable])
    }

    /// A trial's argv, rendered exactly as the runner rendered it (the server's, for a serving study).
    public func launchCommand(for trial: Trial, trialsDirectory: URL) throws -> [String] {
        let context = TrialContext(
            study: name,
            trial: trial,
            space: space,
            seed: seed,
            directory: trialsDirectory.appendingPathComponent(name).appendingPathComponent(String(trial.number)),
            logger: .init(label: "autotune"),
            gpus: trial.gpus,
            port: trial.port
        )
        return try makeExperiment(workingDirectory: URL(fileURLWithPath: ".")).commandLine(for: context)
    }

    /// The launch commands of the trials a report names: the recommended one, the search's best and the front.
    public func launchCommands(of trials: [Trial], result: StudyResult, trialsDirectory: URL) -> [Int: [String]] {
        var named = Set(result.front.map(\.number))
        if let number = result.recommended?.number { named.insert(number) }
        if let number = result.searchBest?.number { named.insert(number) }
        var commands: [Int: [String]] = [:]
        for trial in trials where named.contains(trial.number) {
            commands[trial.number] = try? launchCommand(for: trial, trialsDirectory: trialsDirectory)
        }
        return commands
    }
}

/// This executable, for the `{autotune}` placeholder (`autotune simulate` in task files).
public enum AutotuneExecutable {
    /// Its absolute path.
    public static let path: String = {
        let link = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        if link != "/proc/self/exe" { return link }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    }()
}

extension ReportInput {
    /// The report of `study` and its `trials`, with the launch commands of the trials it names rendered as the
    /// runner would (trial directories under `trialsDirectory`); trial numbers linked by `trialLink`.
    public init(
        study: StoredStudy, trials: [Trial], trialsDirectory: URL, result: StudyResult? = nil,
        trialLink: (@Sendable (Int) -> String)? = nil
    ) {
        self.init(study: study, trials: trials, trialLink: trialLink)
        if let result { self.result = result }
        commands = study.definition.launchCommands(of: trials, result: self.result, trialsDirectory: trialsDirectory)
        func sample(_ number: Int) -> RequestSample? {
            RequestSample.read(
                benchmarkFile: trialsDirectory.appendingPathComponent(study.definition.name)
                    .appendingPathComponent(String(number)).appendingPathComponent("benchmark.json").path,
                trial: number)
        }
        if let number = self.result.recommended?.number {
            requests = sample(number)
            // Trial 0 runs the baseline when the study has one.
            if study.definition.baseline != nil, number != 0 { baselineRequests = sample(0) }
        }
    }
}
