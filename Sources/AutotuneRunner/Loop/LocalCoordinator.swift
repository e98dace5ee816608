import Autotune
import Foundation
import Logging

/// A study run by this process alone: the book and the strategy live here for the whole run, and every
/// decision is saved to the store as it is taken (the trials an ask starts with the checkpoint that proposed
/// them; each result with the checkpoint told of it and the new best, in one write).
actor LocalCoordinator: StudyCoordinator {
    nonisolated let study: StoredStudy
    private let store: any StudyStore
    private let experiment: any Experiment
    private let trialsDirectory: URL
    private let logger: Logger
    private var book: StudyBook
    private var strategy: any Strategy
    nonisolated let heartbeatInterval: Duration

    nonisolated var storeLocation: String { store.location }

    nonisolated var waitsForOthers: Bool { false }

    private var view: CoordinatorView {
        book.view(strategyTotal: strategy.proposalLimit, finished: experiment.usesNeighbour)
    }

    /// Restores the strategy from the study's checkpoint and the book from its trials.
    ///
    /// Throws ``AutotuneError`` (`studyBusy`) when another live process on this machine runs the study.
    init(
        study: StoredStudy,
        store: any StudyStore,
        registry: StrategyRegistry,
        experiment: any Experiment,
        options: StudyLoop.Options
    ) async throws {
        if study.status == .running, let runner = study.runner, runner != .current, runner.isAliveOnThisHost {
            throw AutotuneError(
                .studyBusy,
                "study '\(study.definition.name)' is being run by process \(runner.pid) on \(runner.host); stop it first"
            )
        }
        self.study = study
        self.store = store
        self.experiment = experiment
        self.trialsDirectory = options.trialsDirectory
        self.logger = options.logger
        self.heartbeatInterval = options.heartbeatInterval
        self.strategy = try await registry.make(
            study.definition.strategy.name, context: study.definition.strategyContext(constants: options.constants),
            state: study.checkpoint)
        self.book = StudyBook(
            definition: study.definition, trials: try await store.trials(ofStudy: study.id),
            constants: options.constants)
    }

    /// Marks the study as run by this process, after ending what the runner that died left running and
    /// re-queueing or failing its trials.
    func begin(elapsed: Duration) async throws -> CoordinatorView {
        let abandoned = book.history.runningTrials.filter { $0.state == .running }
        for trial in abandoned {
            let left = self.abandoned(
                trial: trial.number, trialsDirectory: trialsDirectory, previousRunner: study.runner)
            if await experiment.recover(left) {
                logger.notice(
                    "Ended what a trial whose runner died left running", metadata: ["trial.number": "\(trial.number)"])
            }
        }
        var requeued: [Trial] = []
        for outcome in book.loseRunning(reason: "the runner stopped while this trial was running", at: Date()) {
            switch outcome {
            case .requeue(let trial):
                requeued.append(trial)
                logger.info(
                    "Trial re-queued after the runner stopped", metadata: ["trial.number": "\(trial.number)"])
            case .record(let trial):
                try await record(trial, elapsed: elapsed)
            }
        }
        if !requeued.isEmpty { try await store.saveRequeued(requeued, studyID: study.id) }
        try await store.saveStatus(.running, studyID: study.id, runner: .current, elapsedSeconds: elapsed.seconds)
        return view
    }

    func obtain(room: Int, elapsed: Duration) async throws -> (trials: [Trial], done: Bool, view: CoordinatorView) {
        let plan = book.plan(room: room, elapsed: elapsed, strategyExhausted: strategy.isExhausted)
        guard !plan.isEmpty else { return ([], book.isDone(afterStarting: 0), view) }
        var strategy = self.strategy
        let proposals = plan.ask > 0 ? try await strategy.ask(plan.ask, history: book.history) : []
        self.strategy = strategy
        let trials: [Trial]
        do {
            trials = try book.start(plan, proposals: proposals, at: Date())
        } catch {
            throw AutotuneError(.strategy, error.message, underlying: error)
        }
        try await store.saveLaunched(
            trials, studyID: study.id, checkpoint: plan.ask > 0 ? try strategy.encodedState() : nil)
        return (trials, book.isDone(afterStarting: trials.count), view)
    }

    func finish(_ trial: Trial, elapsed: Duration) async throws -> (finished: Bool, view: CoordinatorView) {
        switch book.finish(trial) {
        case .requeue(let trial):
            try await store.saveRequeued([trial], studyID: study.id)
            logger.info("Trial interrupted; it runs again on resume", metadata: ["trial.number": "\(trial.number)"])
            return (false, view)
        case .record(let trial):
            try await record(trial, elapsed: elapsed)
            return (true, view)
        }
    }

    private func record(_ trial: Trial, elapsed: Duration) async throws {
        // ConfirmationPhase runs re-measure what the search found; the strategy has no use for them.
        if trial.confirms == nil {
            var strategy = self.strategy
            try await strategy.tell(trial)
            self.strategy = strategy
        }
        try await store.saveFinished(
            trial, studyID: study.id, checkpoint: try strategy.encodedState(), best: book.best,
            elapsedSeconds: elapsed.seconds)
    }

    nonisolated func stampHeartbeat(elapsed: Duration) async throws {
        try await store.saveHeartbeat(studyID: study.id, elapsedSeconds: elapsed.seconds)
    }

    func reclaim(elapsed: Duration) async throws -> CoordinatorView? { nil }

    func end(done: Bool, stopped: Bool, elapsed: Duration) async throws -> StudyStatus? {
        let status: StudyStatus = stopped ? .interrupted : .completed
        try await store.saveStatus(status, studyID: study.id, runner: nil, elapsedSeconds: elapsed.seconds)
        return status
    }

    func abort(elapsed: Duration) async {
        try? await store.saveStatus(.interrupted, studyID: study.id, runner: nil, elapsedSeconds: elapsed.seconds)
    }
}
