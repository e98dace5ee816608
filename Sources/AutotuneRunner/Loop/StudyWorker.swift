public import Autotune
import Foundation
import Logging

/// One of several processes, on one machine or many, that work on a study kept in a ``SharedStudyStore``.
///
/// Each worker runs up to `parallel` trials. For a free slot it first claims a pending trial (one re-queued
/// after an interruption or a dead worker); failing that, it asks the strategy under the study's lock, on the
/// latest checkpoint, so every worker's ask sees every other worker's running trials. A finished trial is told
/// to the strategy under the same lock. Its running trials are stamped every heartbeat; trials whose stamp is
/// older than ``Settings/staleAfter`` belong to a worker that died and are taken back.
///
/// The worker ends when the study can produce no more trials and none is running or pending anywhere, or on
/// a stop request (drain or cancel, as ``StudyRunner``).
public actor StudyWorker: StudyLoop {
    /// How the worker paces itself.
    public struct Settings: Sendable {
        /// Seconds without a heartbeat after which another worker's trial counts as lost.
        public var staleAfter: Double
        /// How long to wait before looking again when there is nothing to claim or ask for yet.
        public var pollInterval: Duration

        /// Creates settings.
        public init(staleAfter: Double = 30, pollInterval: Duration = .milliseconds(500)) {
            self.staleAfter = staleAfter
            self.pollInterval = pollInterval
        }
    }

    private let study: StoredStudy
    private let store: any SharedStudyStore
    private let registry: StrategyRegistry
    private let executor: TrialExecutor
    private let launches: LaunchLimiter
    private let options: StudyRunner.Options
    private let settings: Settings
    private let me = RunnerIdentity.current
    /// The strategy as of checkpoint `strategyVersion`; rebuilt from the store when another worker moved it.
    private var strategy: (any Strategy)?
    private var strategyVersion: Int64?
    private var best: BestTrial?
    private var stopMode: StudyRunner.StopMode?
    private var finishedThisRun = 0
    private var runStart = ContinuousClock.now
    private let stopSignals: AsyncStream<StudyRunner.StopMode>
    private let stopContinuation: AsyncStream<StudyRunner.StopMode>.Continuation

    private var definition: StudyDefinition { study.definition }

    /// Prepares a worker for `study`.
    public init(
        study: StoredStudy,
        store: any SharedStudyStore,
        registry: StrategyRegistry = .builtIn,
        experiment: (any Experiment)? = nil,
        options: StudyRunner.Options,
        settings: Settings = Settings()
    ) throws {
        self.study = study
        self.store = store
        self.registry = registry
        self.options = options
        self.settings = settings
        self.executor = try TrialExecutor(definition: study.definition, experiment: experiment, options: options)
        self.launches = LaunchLimiter(limit: study.definition.resources.maxConcurrentLaunches)
        self.best = study.best
        (stopSignals, stopContinuation) = AsyncStream.makeStream(of: StudyRunner.StopMode.self)
    }

    /// Asks the worker to stop: the first request drains, a `.cancel` stops its running trials.
    nonisolated public func requestStop(_ mode: StudyRunner.StopMode) {
        stopContinuation.yield(mode)
    }

    /// Works on the study until it is done or a stop request ends this worker's part.
    public func run() async throws -> StudyRunner.Outcome {
        runStart = ContinuousClock.now
        defer { options.progress.studyFinished() }
        let done = try await loop()
        let trials = try await store.trials(ofStudy: study.id)
        let unfinished = trials.contains { !$0.isFinished }
        // Another worker may have finished the study while this one drained.
        let finished = !unfinished && definition.budget.maxTrials.map { trials.count >= $0 } ?? false
        let alreadyCompleted = try await store.study(named: definition.name)?.status == .completed
        // The last worker out says how the study stands; one leaving while others run says nothing.
        let status: StudyStatus? =
            done || finished
            ? .completed : alreadyCompleted || trials.contains(where: { $0.state == .running }) ? nil : .interrupted
        if let status {
            try await store.saveStatus(status, studyID: study.id, runner: nil, elapsedSeconds: elapsed)
        }
        return StudyRunner.Outcome(
            status: status ?? .running,
            best: best,
            finishedThisRun: finishedThisRun,
            seconds: (ContinuousClock.now - runStart).seconds
        )
    }

    /// Runs trials until the study is done (returns true) or a stop request ends this worker (false).
    private func loop() async throws -> Bool {
        let parallel = max(1, options.parallel ?? definition.parallel)
        let signals = stopSignals
        let interval = options.heartbeatInterval
        let poll = settings.pollInterval
        return try await withThrowingTaskGroup(of: LoopEvent.self) { group in
            group.addTask { await LoopEvent.nextStop(signals) }
            group.addTask { await LoopEvent.after(interval, .heartbeat) }
            var inFlight = 0
            var polling = false
            var done = false
            while true {
                // A cancelled worker (its caller gave up) stops like a second Ctrl-C.
                if Task.isCancelled, stopMode != .cancel {
                    stopMode = .cancel
                    group.cancelAll()
                }
                if stopMode == nil, !done, inFlight < parallel {
                    let (trials, finished) = try await obtain(parallel - inFlight, running: inFlight)
                    done = finished
                    for trial in trials {
                        inFlight += 1
                        let context = StudyRunner.context(
                            for: trial, definition: definition, options: options, launches: launches)
                        let executor = self.executor
                        group.addTask { .finished(await executor.execute(trial, context: context)) }
                    }
                    if trials.isEmpty, !done, !polling {
                        polling = true
                        group.addTask { await LoopEvent.after(poll, .poll) }
                    }
                }
                if inFlight == 0, done || stopMode != nil { break }
                switch try await group.next() {
                case .finished(let trial):
                    inFlight -= 1
                    try await record(trial)
                case .stop(let mode):
                    stopMode = LoopEvent.stop(
                        mode, current: stopMode, running: inFlight, logger: options.logger, group: &group,
                        signals: signals)
                case .heartbeat:
                    try await beat()
                    if stopMode != .cancel { group.addTask { await LoopEvent.after(interval, .heartbeat) } }
                case .poll:
                    polling = false
                case nil:
                    inFlight = 0
                }
            }
            group.cancelAll()
            return done
        }
    }

    /// Up to `room` trials to start: claimed pending ones first, else new ones from the strategy. Also says
    /// whether the study is done: nothing more to propose, and nothing running or pending anywhere.
    private func obtain(_ room: Int, running: Int) async throws -> ([Trial], Bool) {
        var trials: [Trial] = []
        while trials.count < room, let claimed = try await store.claimPending(studyID: study.id, worker: me) {
            options.logger.info("Claimed a pending trial", metadata: ["trial.number": "\(claimed.number)"])
            trials.append(claimed)
        }
        if !trials.isEmpty { return (trials, false) }
        if budgetSpent {
            let unfinished = try await unfinishedElsewhere()
            return ([], running == 0 && unfinished == 0)
        }
        // Until the transaction commits, the strategy held may be ahead of the stored one.
        strategyVersion = nil
        options.logger.debug("Asking under the study's lock", metadata: ["count": "\(room)"])
        var version: Int64?
        var counts: [TrialState: Int] = [:]
        let proposal = try await store.propose(studyID: study.id, worker: me) { state in
            counts = state.counts
            let proposal = try self.propose(room, state: state)
            version = proposal.checkpoint == nil ? state.version : state.version + 1
            return proposal
        }
        options.logger.debug("Asked", metadata: ["trials": "\(proposal.trials.map(\.number))"])
        strategyVersion = version
        if let last = proposal.trials.last {
            counts[.running, default: 0] += proposal.trials.count
            options.progress.trialsStarted(progressEvent(for: last, counts: counts))
        }
        let done = proposal.trials.isEmpty && proposal.exhausted && proposal.unfinished == 0 && running == 0
        return (proposal.trials, done)
    }

    /// Runs under the study's lock: asks the strategy (restored from the latest checkpoint if another
    /// worker moved it) for up to `count` configurations and numbers them after every trial in the study.
    private func propose(_ count: Int, state: SharedStudyState) throws -> SharedProposal {
        var strategy = try strategy(at: state)
        let trials = state.trials
        var nextNumber = (trials.map(\.number).max() ?? -1) + 1
        let unfinished = trials.filter { !$0.isFinished }.count
        var launching: [Trial] = []
        if trials.isEmpty, let baseline = definition.baseline {
            launching.append(Trial(number: 0, configuration: baseline))
            nextNumber = 1
        }
        let remaining = definition.budget.maxTrials.map { max(0, $0 - nextNumber) } ?? .max
        let room = min(count - launching.count, remaining)
        var asked = false
        if room > 0, !strategy.isExhausted {
            let history = StudyHistory(trials: trials)
            let proposals = try strategy.ask(room, history: history)
            asked = true
            for configuration in try admit(
                proposals, room: room, definition: definition, history: history, launching: launching)
            {
                launching.append(Trial(number: nextNumber, configuration: configuration))
                nextNumber += 1
            }
        }
        let now = Date()
        for index in launching.indices {
            launching[index].state = .running
            launching[index].attempt = 1
            launching[index].startedAt = now
        }
        let exhausted =
            strategy.isExhausted || definition.budget.maxTrials.map { nextNumber >= $0 } ?? false
        let checkpoint = asked ? try strategy.encodedState() : nil
        self.strategy = strategy
        return SharedProposal(trials: launching, checkpoint: checkpoint, exhausted: exhausted, unfinished: unfinished)
    }

    /// The strategy as of the study's latest checkpoint: the one held if no other worker moved it since.
    private func strategy(at state: SharedStudyState) throws -> any Strategy {
        if let strategy, strategyVersion == state.version { return strategy }
        return try registry.make(definition.strategy.name, context: definition.strategyContext, state: state.checkpoint)
    }

    /// Records a finished trial: tells the strategy under the study's lock and saves both. An interrupted
    /// trial goes back to pending, unseen by the strategy, for any worker to claim.
    private func record(_ finished: Trial) async throws {
        var trial = finished
        if trial.error?.stage == .interrupted {
            trial.returnToPending()
            try await store.saveRequeued([trial], studyID: study.id)
            options.logger.info(
                "Trial interrupted; it goes back to pending", metadata: ["trial.number": "\(trial.number)"])
            return
        }
        var counts = try await tell(trial)
        finishedThisRun += 1
        // The counts were read before this trial's result was saved.
        counts[.running, default: 1] -= 1
        counts[trial.state, default: 0] += 1
        options.progress.trialFinished(progressEvent(for: trial, counts: counts))
    }

    /// Tells the strategy under the study's lock; returns the study's trial counts as the lock saw them.
    @discardableResult
    private func tell(_ trial: Trial) async throws -> [TrialState: Int] {
        // Until the transaction commits, the strategy held may be ahead of the stored one.
        strategyVersion = nil
        options.logger.debug("Telling under the study's lock", metadata: ["trial.number": "\(trial.number)"])
        defer { options.logger.debug("Told", metadata: ["trial.number": "\(trial.number)"]) }
        var version: Int64?
        var counts: [TrialState: Int] = [:]
        try await store.finish(trial, studyID: study.id, elapsedSeconds: elapsed) { state in
            counts = state.counts
            version = state.version + 1
            return try self.tell(trial, state: state)
        }
        strategyVersion = version
        return counts
    }

    /// Runs under the study's lock: tells the strategy of the trial and works out the new best.
    private func tell(_ trial: Trial, state: SharedStudyState) throws -> SharedVerdict {
        var strategy = try strategy(at: state)
        try strategy.tell(trial)
        let best = definition.objective.best(state.best, after: trial)
        self.best = best
        self.strategy = strategy
        return SharedVerdict(checkpoint: try strategy.encodedState(), best: best)
    }

    /// Stamps this worker's trials and takes back those of workers that stopped stamping theirs.
    private func beat() async throws {
        try await store.heartbeat(studyID: self.study.id, worker: me, elapsedSeconds: elapsed)
        let here = me
        let trialsDirectory = options.trialsDirectory
        let study = definition.name
        let reclaimed = try await store.reclaimStale(
            studyID: self.study.id, olderThan: settings.staleAfter, policy: definition.lostTrials, worker: me
        ) { record in
            // A dead worker on this machine may have left its trial's processes behind; a Slurm job it
            // submitted can be cancelled from anywhere that shares the trial's directory.
            let directory = StudyRunner.trialDirectory(trialsDirectory, study: study, trial: record.trial.number)
            if let worker = record.previousWorker, worker.host == here.host, !processIsAlive(worker.pid) {
                ProcessReaper.reap(in: directory)
            }
            await SlurmRunner.cancelRecordedJob(in: directory)
        }
        for record in reclaimed {
            var trial = record.trial
            let previous = record.previousWorker.map { "\($0.pid)@\($0.host)" } ?? "unknown"
            options.logger.notice(
                "Took back a trial whose worker stopped sending heartbeats",
                metadata: ["trial.number": "\(trial.number)", "worker": "\(previous)"]
            )
            if definition.lostTrials == .fail {
                trial.state = .failed
                trial.finishedAt = Date()
                trial.error = TrialError(
                    stage: .lost,
                    message:
                        "worker \(previous) stopped sending heartbeats while this trial ran (attempt \(trial.attempt))"
                )
                try await tell(trial)
            }
        }
    }

    private func unfinishedElsewhere() async throws -> Int {
        try await store.trials(ofStudy: study.id).filter { !$0.isFinished }.count
    }

    /// A progress event with the whole study's counts, every worker's trials included.
    private func progressEvent(for trial: Trial, counts: [TrialState: Int]) -> ProgressEvent {
        ProgressEvent(
            trial: trial,
            space: definition.space,
            objective: definition.objective,
            best: best,
            finishedCount: counts.filter { $0.key.isFinished }.map(\.value).reduce(0, +),
            expectedCount: definition.budget.maxTrials,
            runningCount: counts[.running] ?? 0,
            completedCount: counts[.completed] ?? 0,
            failedCount: counts[.failed] ?? 0,
            elapsedSeconds: elapsed,
            finishedThisRun: finishedThisRun,
            runSeconds: (ContinuousClock.now - runStart).seconds
        )
    }

    private var elapsed: Double {
        study.elapsedSeconds + (ContinuousClock.now - runStart).seconds
    }

    private var budgetSpent: Bool { definition.budget.timeIsUp(after: elapsed) }
}
