public import Autotune
public import AutotuneRunner
public import AutotuneStore
public import Foundation
import Logging
import Synchronization

/// A scratch directory with a real SQLite file, for tests that run studies; see ``withTestScratch(_:)``.
public struct TestScratch: Sendable {
    /// The directory; removed when the scope ends.
    public let directory: URL
    /// The store, a real file in ``directory``.
    public let store: SQLiteStudyStore

    /// Creates `definition`'s study in the store.
    public func study(_ definition: StudyDefinition) async throws -> TestStudy {
        TestStudy(scratch: self, id: try await store.createStudy(definition, taskSource: nil).id, name: definition.name)
    }
}

/// A study in a ``TestScratch``, with what tests do to it: run it (to its end, or until some trials finished),
/// resume it, read its trials.
public struct TestStudy: Sendable {
    /// Where the study lives.
    public let scratch: TestScratch
    /// The study's row id.
    public let id: Int64
    /// The study's name.
    public let name: String

    /// The store.
    public var store: SQLiteStudyStore { scratch.store }

    /// Where the study's trial directories go.
    public var trialsDirectory: URL { scratch.directory.appendingPathComponent("trials") }

    /// The directory of trial `number`.
    public func trialDirectory(_ number: Int) -> URL {
        trialsDirectory.appendingPathComponent(name).appendingPathComponent(String(number))
    }

    /// The study as stored now.
    public func stored() async throws -> StoredStudy {
        guard let study = try await store.study(named: name) else {
            throw AutotuneError(.configuration, "the test study '\(name)' is gone")
        }
        return study
    }

    /// The study's trials now, in number order.
    public func trials() async throws -> [Trial] {
        try await store.trials(ofStudy: id)
    }

    /// Loop options for the study: its trial directories, a logger that only reports errors, the store as the
    /// ledger, and host locks of its own (in its scratch directory), so that tests running side by side with
    /// the same made-up GPU indexes do not wait on each other.
    public func options(
        parallel: Int? = nil,
        progress: any ProgressReporter = SilentProgress(),
        gpus: [GPU] = []
    ) -> StudyLoop.Options {
        var logger = Logger(label: "autotune.test")
        logger.logLevel = .error
        var options = StudyLoop.Options(
            parallel: parallel, trialsDirectory: trialsDirectory, progress: progress, logger: logger, ledger: store,
            gpus: gpus)
        options.hostLocks = HostLocks(directory: scratch.directory.appendingPathComponent("host-locks"))
        return options
    }

    /// A loop over the study as stored now (so a second call resumes it), running `experiment`; by default the
    /// study's own command, in the scratch directory.
    public func loop(
        experiment: (any Experiment)? = nil,
        registry: StrategyRegistry = .standard,
        options: StudyLoop.Options? = nil
    ) async throws -> StudyLoop {
        let study = try await stored()
        return try await StudyLoop(
            study: study, store: store, registry: registry, experiment: try experiment ?? commandExperiment(study),
            options: options ?? self.options())
    }

    /// Runs (or resumes) the study until it ends.
    public func run(
        experiment: (any Experiment)? = nil,
        registry: StrategyRegistry = .standard,
        options: StudyLoop.Options? = nil
    ) async throws -> StudyLoop.Outcome {
        try await loop(experiment: experiment, registry: registry, options: options).run()
    }

    /// Runs (or resumes) the study until `count` trials finished in this run, then asks the loop to stop with
    /// `mode`, and returns once the run ended.
    public func run(
        stoppingAfter count: Int,
        mode: StudyLoop.StopMode = .cancel,
        experiment: (any Experiment)? = nil,
        registry: StrategyRegistry = .standard,
        parallel: Int? = nil
    ) async throws -> StudyLoop.Outcome {
        let stopper = StopAfter(count: count, mode: mode)
        let loop = try await loop(
            experiment: experiment, registry: registry, options: options(parallel: parallel, progress: stopper))
        stopper.loop.withLock { $0 = loop }
        return try await loop.run()
    }

    private func commandExperiment(_ study: StoredStudy) throws -> any Experiment {
        guard case .command(let spec) = study.definition.experiment else {
            throw AutotuneError(.configuration, "a serving test study needs its experiment passed in")
        }
        return CommandExperiment(spec: spec, defaultWorkingDirectory: scratch.directory)
    }
}

/// Asks a loop to stop once `count` trials have finished in its run.
private final class StopAfter: ProgressReporter {
    let count: Int
    let mode: StudyLoop.StopMode
    let loop = Mutex<StudyLoop?>(nil)

    init(count: Int, mode: StudyLoop.StopMode) {
        self.count = count
        self.mode = mode
    }

    func trialFinished(_ event: ProgressEvent) {
        if event.finishedThisRun == count { loop.withLock { $0 }?.requestStop(mode) }
    }
}

/// Runs `body` with a fresh scratch directory and SQLite store, removed afterwards however `body` ends.
public func withTestScratch<Result>(_ body: (TestScratch) async throws -> Result) async throws -> Result {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let scratch = TestScratch(
        directory: directory, store: try SQLiteStudyStore(path: directory.appendingPathComponent("studies.sqlite").path)
    )
    return try await body(scratch)
}

/// Runs `body` with `definition`'s study in a fresh scratch store, removed afterwards.
public func withTestStudy<Result>(
    _ definition: StudyDefinition,
    _ body: (TestStudy) async throws -> Result
) async throws -> Result {
    try await withTestScratch { scratch in try await body(try await scratch.study(definition)) }
}
