import Autotune
import Foundation
import Logging

/// One of several workers, on one machine or many, sharing a study through a ``SharedStudyStore``.
///
/// For a free slot it first claims a pending trial (one re-queued after an interruption or a dead worker);
/// failing that, it asks under the study's lock, on the latest checkpoint and a book built from every trial, so
/// every worker's ask sees every other worker's running trials. A finished trial is told under the same lock.
/// Its running trials are stamped every heartbeat; trials whose stamp is older than `staleAfter` belong to a
/// worker that died and are taken back.
final class SharedCoordinator: StudyCoordinator {
    let study: StoredStudy
    private let store: any SharedStudyStore
    private let registry: StrategyRegistry
    private let experiment: any Experiment
    private let trialsDirectory: URL
    private let logger: Logger
    private let staleAfter: Duration
    private let constants: [String: Double]
    private let me = RunnerIdentity.current
    /// The strategy as of checkpoint `strategyVersion`; rebuilt from the store when another worker moved it.
    private var strategy: (any Strategy)?
    private var strategyVersion: Int64?
    private(set) var standing: StudyStanding
    let heartbeatInterval: Duration

    var storeLocation: String { store.location }

    var waitsForOthers: Bool { true }

    /// Workers do not give up on their own: another may run where this one cannot.
    var failFastReason: String? { nil }
    private(set) var finishedTrials: [Trial] = []

    private var definition: StudyDefinition { study.definition }

    init(
        study: StoredStudy,
        store: any SharedStudyStore,
        registry: StrategyRegistry,
        experiment: any Experiment,
        options: StudyLoop.Options,
        staleAfter: Duration
    ) {
        self.study = study
        self.store = store
        self.registry = registry
        self.experiment = experiment
        self.trialsDirectory = options.trialsDirectory
        self.logger = options.logger
        self.staleAfter = staleAfter
        self.constants = options.constants
        // A dead worker is noticed after `staleAfter`; stamping three times as often survives a late beat.
        self.heartbeatInterval = min(options.heartbeatInterval, staleAfter / 3)
        self.standing = StudyStanding(best: study.best, expected: study.definition.budget.maxTrials)
    }

    func begin(elapsed: Duration) async throws {
        // The study runs as long as any worker works on it; no single worker is its runner.
        try await store.saveStatus(.running, studyID: study.id, runner: nil, elapsedSeconds: elapsed.seconds)
    }

    func obtain(room: Int, elapsed: Duration) async throws -> (trials: [Trial], done: Bool) {
        var trials: [Trial] = []
        while trials.count < room, let claimed = try await store.claimPending(studyID: study.id, worker: me) {
            logger.info("Claimed a pending trial", metadata: ["trial.number": "\(claimed.number)"])
            trials.append(claimed)
        }
        if !trials.isEmpty { return (trials, false) }
        // Until the transaction commits, the strategy held may be ahead of the stored one.
        strategyVersion = nil
        logger.debug("Asking under the study's lock", metadata: ["count": "\(room)"])
        var version: Int64?
        var done = false
        let proposal = try await store.propose(studyID: study.id, worker: me) { state in
            var strategy = try self.strategy(at: state)
            var book = StudyBook(
                definition: definition, trials: state.trials, counts: state.counts, best: state.best,
                constants: constants)
            self.finishedTrials = state.trials.filter(\.isFinished)
            let plan = book.plan(
                room: room, elapsed: elapsed, strategyExhausted: strategy.isExhausted, includeQueued: false)
            let proposals = plan.ask > 0 ? try strategy.ask(plan.ask, history: book.history) : []
            let trials: [Trial]
            do {
                trials = try book.start(plan, proposals: proposals, at: Date())
            } catch let error as AutotuneError {
                throw AutotuneError(.strategy, error.message)
            }
            done = book.isDone(afterStarting: trials.count)
            let checkpoint = plan.ask > 0 ? try strategy.encodedState() : nil
            version = checkpoint == nil ? state.version : state.version + 1
            self.strategy = strategy
            self.standing = book.standing(strategyTotal: strategy.proposalLimit)
            return SharedProposal(trials: trials, checkpoint: checkpoint)
        }
        strategyVersion = version
        logger.debug("Asked", metadata: ["trials": "\(proposal.trials.map(\Trial.number))"])
        return (proposal.trials, done)
    }

    /// The strategy as of the study's latest checkpoint: the one held if no other worker moved it since.
    private func strategy(at state: SharedStudyState) throws -> any Strategy {
        if let strategy, strategyVersion == state.version { return strategy }
        return try registry.make(
            definition.strategy.name, context: definition.strategyContext(constants: constants), state: state.checkpoint
        )
    }

    func finish(_ trial: Trial, elapsed: Duration) async throws -> Bool {
        var book = StudyBook(definition: definition, trials: [], counts: standing.counts, best: standing.best)
        switch book.finish(trial) {
        case .requeue(let trial):
            try await store.saveRequeued([trial], studyID: study.id)
            logger.info(
                "Trial interrupted; it goes back to pending", metadata: ["trial.number": "\(trial.number)"])
            return false
        case .record(let trial):
            try await record(trial, elapsed: elapsed)
            return true
        }
    }

    /// Tells the strategy under the study's lock and saves the trial with the checkpoint and the new best.
    private func record(_ trial: Trial, elapsed: Duration) async throws {
        // Until the transaction commits, the strategy held may be ahead of the stored one.
        strategyVersion = nil
        logger.debug("Telling under the study's lock", metadata: ["trial.number": "\(trial.number)"])
        var version: Int64?
        try await store.finish(trial, studyID: study.id, elapsedSeconds: elapsed.seconds) { state in
            var strategy = try self.strategy(at: state)
            // The counts were read before this trial's result is saved: the book moves it out of running.
            var book = StudyBook(definition: definition, trials: [], counts: state.counts, best: state.best)
            _ = book.finish(trial)
            // ConfirmationPhase runs re-measure what the search found; the strategy has no use for them.
            if trial.confirms == nil { try strategy.tell(trial) }
            version = state.version + 1
            self.strategy = strategy
            self.standing = book.standing(strategyTotal: strategy.proposalLimit)
            return SharedVerdict(checkpoint: try strategy.encodedState(), best: book.best)
        }
        strategyVersion = version
    }

    func heartbeat(elapsed: Duration) async throws {
        try await store.heartbeat(studyID: study.id, worker: me, elapsedSeconds: elapsed.seconds)
        let reclaimed = try await store.reclaimStale(studyID: study.id, olderThan: staleAfter, worker: me) { record in
            await experiment.recover(
                abandoned(
                    trial: record.trial.number, trialsDirectory: trialsDirectory, previousRunner: record.previousWorker)
            )
        }
        for taken in reclaimed {
            let previous = taken.previousWorker.map { "\($0.pid)@\($0.host)" } ?? "unknown"
            logger.notice(
                "Took back a trial whose worker stopped sending heartbeats",
                metadata: ["trial.number": "\(taken.trial.number)", "worker": "\(previous)"]
            )
            var book = StudyBook(definition: definition, trials: [], counts: standing.counts, best: standing.best)
            switch book.lose(
                taken.trial, reason: "worker \(previous) stopped sending heartbeats while this trial ran", at: Date())
            {
            case .requeue(let trial): try await store.saveRequeued([trial], studyID: study.id)
            case .record(let trial): try await record(trial, elapsed: elapsed)
            }
        }
    }

    func end(done: Bool, stopped: Bool, elapsed: Duration) async throws -> StudyStatus? {
        let trials = try await store.trials(ofStudy: study.id)
        // Another worker may have finished the study while this one drained.
        let finished =
            !trials.contains { !$0.isFinished } && definition.budget.maxTrials.map { trials.count >= $0 } ?? false
        let alreadyCompleted = try await store.study(named: definition.name)?.status == .completed
        // The last worker out says how the study stands; one leaving while others run says nothing.
        let status: StudyStatus? =
            done || finished
            ? .completed : alreadyCompleted || trials.contains(where: { $0.state == .running }) ? nil : .interrupted
        if let status {
            try await store.saveStatus(status, studyID: study.id, runner: nil, elapsedSeconds: elapsed.seconds)
        }
        return status
    }

    func abort(elapsed: Duration) async {}
}
