import Autotune
import Foundation
import Logging

/// One of several workers, on one machine or many, sharing a study through a ``SharedStudyStore``.
///
/// For a free slot it first claims a pending trial (one re-queued after an interruption or a dead worker);
/// failing that, it asks under the study's lock on the latest checkpoint. It keeps a whole ``StudyBook`` of the
/// study, brought up to date under the lock with only the trials that changed since its last read, so every rule
/// of the book holds for workers as for a single runner (fail-fast included) and a read costs what changed, not
/// the study's size. A finished trial is told under the same lock. Its running trials are stamped every
/// heartbeat; trials whose stamp is older than `staleAfter` belong to a worker that died and are taken back.
actor SharedCoordinator: StudyCoordinator {
    nonisolated let study: StoredStudy
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
    /// The study as of change `sequence`, plus what this worker did since.
    private var book: StudyBook
    private var sequence: Int64?
    /// The trials this worker ran, to tell others' recent work from its own when it leaves.
    private var mine: Set<Int> = []
    nonisolated let heartbeatInterval: Duration

    nonisolated var storeLocation: String { store.location }

    nonisolated var waitsForOthers: Bool { true }

    private var definition: StudyDefinition { study.definition }

    private var view: CoordinatorView {
        book.view(strategyTotal: strategy?.proposalLimit, finished: experiment.usesNeighbour)
    }

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
        self.book = StudyBook(definition: study.definition, trials: [], constants: options.constants)
    }

    func begin(elapsed: Duration) async throws -> CoordinatorView {
        // The study runs as long as any worker works on it; no single worker is its runner.
        try await store.saveStatus(.running, studyID: study.id, runner: nil, elapsedSeconds: elapsed.seconds)
        book.absorb(try await store.trials(ofStudy: study.id))
        return view
    }

    func obtain(room: Int, elapsed: Duration) async throws -> (trials: [Trial], done: Bool, view: CoordinatorView) {
        var trials: [Trial] = []
        while trials.count < room, let claimed = try await store.claimPending(studyID: study.id, worker: me) {
            logger.info("Claimed a pending trial", metadata: ["trial.number": "\(claimed.number)"])
            book.absorb([claimed])
            mine.insert(claimed.number)
            trials.append(claimed)
        }
        if !trials.isEmpty { return (trials, false, view) }
        // Until the transaction commits, the strategy held may be ahead of the stored one.
        let held = (strategy: strategy, version: strategyVersion)
        strategyVersion = nil
        logger.debug("Asking under the study's lock", metadata: ["count": "\(room)"])
        // The store may run the decision again when PostgreSQL aborts its transaction: each attempt starts from
        // the book as it was, and only the last one's outcome is kept.
        let base = self.book
        var book = base
        var sequence = self.sequence
        var version: Int64?
        var strategy: (any Strategy)?
        var done = false
        let proposal = try await store.propose(studyID: study.id, worker: me, since: self.sequence) { state in
            book = base
            book.absorb(state.changes)
            sequence = state.sequence
            var asking = try await self.strategy(at: state, held: held)
            let plan = book.plan(
                room: room, elapsed: elapsed, strategyExhausted: asking.isExhausted, includeQueued: false)
            let proposals = plan.ask > 0 ? try await asking.ask(plan.ask, history: book.history) : []
            let trials: [Trial]
            do {
                trials = try book.start(plan, proposals: proposals, at: Date())
            } catch let error as AutotuneError {
                throw AutotuneError(.strategy, error.message, underlying: error)
            }
            done = book.isDone(afterStarting: trials.count)
            let checkpoint = plan.ask > 0 ? try asking.encodedState() : nil
            version = checkpoint == nil ? state.version : state.version + 1
            strategy = asking
            return SharedProposal(trials: trials, checkpoint: checkpoint)
        }
        self.book = book
        self.sequence = sequence
        self.strategy = strategy
        strategyVersion = version
        mine.formUnion(proposal.trials.map(\.number))
        logger.debug("Asked", metadata: ["trials": "\(proposal.trials.map(\Trial.number))"])
        return (proposal.trials, done, view)
    }

    /// The strategy as of the study's latest checkpoint: the one held if no other worker moved it since.
    private nonisolated func strategy(
        at state: SharedStudyState, held: (strategy: (any Strategy)?, version: Int64?)
    ) async throws -> any Strategy {
        if let strategy = held.strategy, held.version == state.version { return strategy }
        return try await registry.make(
            definition.strategy.name, context: definition.strategyContext(constants: constants), state: state.checkpoint
        )
    }

    func finish(_ trial: Trial, elapsed: Duration) async throws -> (finished: Bool, view: CoordinatorView) {
        switch book.finish(trial) {
        case .requeue(let trial):
            try await store.saveRequeued([trial], studyID: study.id)
            logger.info(
                "Trial interrupted; it goes back to pending", metadata: ["trial.number": "\(trial.number)"])
            return (false, view)
        case .record(let trial):
            try await record(trial, elapsed: elapsed)
            return (true, view)
        }
    }

    /// Tells the strategy under the study's lock and saves the trial with the checkpoint and the new best; the
    /// book has taken the trial already.
    private func record(_ trial: Trial, elapsed: Duration) async throws {
        let held = (strategy: strategy, version: strategyVersion)
        // Until the transaction commits, the strategy held may be ahead of the stored one.
        strategyVersion = nil
        logger.debug("Telling under the study's lock", metadata: ["trial.number": "\(trial.number)"])
        let base = self.book
        var book = base
        var sequence = self.sequence
        var version: Int64?
        var strategy: (any Strategy)?
        try await store.finish(trial, studyID: study.id, elapsedSeconds: elapsed.seconds, since: self.sequence) {
            state in
            book = base
            book.absorb(state.changes)
            sequence = state.sequence
            var telling = try await self.strategy(at: state, held: held)
            // The book has the trial finished already; other workers' changes may have come in since.
            book.absorb([trial])
            // ConfirmationPhase runs re-measure what the search found; the strategy has no use for them.
            if trial.confirms == nil { try await telling.tell(trial) }
            version = state.version + 1
            strategy = telling
            return SharedVerdict(checkpoint: try telling.encodedState(), best: book.best)
        }
        self.book = book
        self.sequence = sequence
        self.strategy = strategy
        strategyVersion = version
    }

    nonisolated func stampHeartbeat(elapsed: Duration) async throws {
        try await store.heartbeat(studyID: study.id, worker: me, elapsedSeconds: elapsed.seconds)
    }

    func reclaim(elapsed: Duration) async throws -> CoordinatorView? {
        let trialsDirectory = self.trialsDirectory
        let experiment = self.experiment
        let reclaimed = try await store.reclaimStale(studyID: study.id, olderThan: staleAfter, worker: me) { record in
            await experiment.recover(
                self.abandoned(
                    trial: record.trial.number, trialsDirectory: trialsDirectory, previousRunner: record.previousWorker)
            )
        }
        guard !reclaimed.isEmpty else { return nil }
        for taken in reclaimed {
            let previous = taken.previousWorker.map { "\($0.pid)@\($0.host)" } ?? "unknown"
            logger.notice(
                "Took back a trial whose worker stopped sending heartbeats",
                metadata: ["trial.number": "\(taken.trial.number)", "worker": "\(previous)"]
            )
            book.absorb([taken.trial])
            switch book.lose(
                taken.trial, reason: "worker \(previous) stopped sending heartbeats while this trial ran", at: Date())
            {
            case .requeue(let trial): try await store.saveRequeued([trial], studyID: study.id)
            case .record(let trial): try await record(trial, elapsed: elapsed)
            }
        }
        return view
    }

    func end(done: Bool, stopped: Bool, elapsed: Duration) async throws -> StudyStatus? {
        let trials = try await store.trials(ofStudy: study.id)
        // Another worker may have finished the study while this one drained.
        let finished =
            !trials.contains { !$0.isFinished } && definition.budget.maxTrials.map { trials.count >= $0 } ?? false
        let alreadyCompleted = try await store.study(named: definition.name)?.status == .completed
        // Another worker is at it when a trial runs, or one it ran finished within the time a live worker stamps
        // its heartbeat (it may be between two trials).
        let recently = Date().addingTimeInterval(-staleAfter.seconds)
        let othersAtIt = trials.contains { trial in
            trial.state == .running
                || (!mine.contains(trial.number) && (trial.finishedAt.map { $0 > recently } ?? false))
        }
        // The last worker out says how the study stands; one leaving while others run says nothing.
        let status: StudyStatus? =
            done || finished ? .completed : alreadyCompleted || othersAtIt ? nil : .interrupted
        if let status {
            try await store.saveStatus(status, studyID: study.id, runner: nil, elapsedSeconds: elapsed.seconds)
        }
        return status
    }

    func abort(elapsed: Duration) async {}
}
