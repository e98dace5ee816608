public import Autotune
public import Foundation
public import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs a study: asks the strategy, runs up to `parallel` experiments at once, scores and records each
/// result, and stops when the budget is spent, the strategy is exhausted, or a stop is requested.
///
/// The actor owns everything that changes during a study: the strategy, the history, the best trial,
/// the queue of re-queued trials. Experiments run in child tasks of one task group, outside the actor;
/// each one's end is recorded as soon as it arrives and its slot refilled at once, without waiting for
/// the others. Every tell is written with the strategy's checkpoint and the new best in one transaction.
public actor StudyRunner: StudyLoop {
    /// How a stop request treats the trials that are running.
    public enum StopMode: Sendable, Hashable {
        /// Let them finish, ask for nothing new.
        case drain
        /// Stop them now; they go back to pending and run again on resume.
        case cancel
    }

    /// How a run ended.
    public struct Outcome: Sendable, Hashable {
        /// The study's status afterwards.
        public var status: StudyStatus
        /// The best trial, if any completed.
        public var best: BestTrial?
        /// Trials that finished during this run.
        public var finishedThisRun: Int
        /// Seconds this run took.
        public var seconds: Double
    }

    /// Settings of a run that are not part of the study's definition.
    public struct Options: Sendable {
        /// Overrides the definition's `parallel` for this run.
        public var parallel: Int?
        /// Where each trial's directory (`<study>/<number>`) is made.
        public var trialsDirectory: URL
        /// The directory commands run in when the task file names none.
        public var workingDirectory: URL
        /// Receives a line per finished trial.
        public var progress: any ProgressReporter
        /// The logger.
        public var logger: Logger
        /// Where GPU leases and port reservations are kept; required when the study uses GPUs or ports.
        public var ledger: (any ResourceLedger)?
        /// The GPUs trials may lease (discovered, declared in the task file, or given with `--gpus`).
        public var gpus: [GPU]
        /// How often running trials and the study are stamped as alive.
        public var heartbeatInterval: Duration = .seconds(5)

        /// Creates options.
        public init(
            parallel: Int? = nil,
            trialsDirectory: URL,
            workingDirectory: URL,
            progress: any ProgressReporter = SilentProgress(),
            logger: Logger = Logger(label: "autotune"),
            ledger: (any ResourceLedger)? = nil,
            gpus: [GPU] = []
        ) {
            self.parallel = parallel
            self.trialsDirectory = trialsDirectory
            self.workingDirectory = workingDirectory
            self.progress = progress
            self.logger = logger
            self.ledger = ledger
            self.gpus = gpus
        }
    }

    private let study: StoredStudy
    private let store: any StudyStore
    private let executor: TrialExecutor
    private let launches: LaunchLimiter
    private let options: Options
    private var strategy: any Strategy
    private var history: StudyHistory
    private var queue: [Trial]
    private var best: BestTrial?
    private var nextNumber: Int
    private var stopMode: StopMode?
    private var finishedThisRun = 0
    private var completedCount = 0
    private var failedCount = 0
    private var runStart = ContinuousClock.now
    private let stopSignals: AsyncStream<StopMode>
    private let stopContinuation: AsyncStream<StopMode>.Continuation

    private var definition: StudyDefinition { study.definition }

    /// Prepares a new or resumed study: restores the strategy from its checkpoint, and deals with trials
    /// left running by a runner that died (re-queued or failed, as the definition says).
    ///
    /// Throws ``RunnerError`` when another live process runs the study.
    public init(
        study: StoredStudy,
        store: any StudyStore,
        registry: StrategyRegistry = .builtIn,
        experiment: (any Experiment)? = nil,
        options: Options
    ) async throws {
        let me = RunnerIdentity.current
        if study.status == .running, let runner = study.runner, runner != me, runner.isAliveOnThisHost {
            throw RunnerError.studyBusy(study.definition.name, runner)
        }
        self.study = study
        self.store = store
        self.options = options
        self.executor = try TrialExecutor(
            definition: study.definition,
            experiment: experiment,
            options: options
        )
        self.launches = LaunchLimiter(limit: study.definition.resources.maxConcurrentLaunches)
        var strategy = try registry.make(
            study.definition.strategy.name,
            context: study.definition.strategyContext,
            state: study.checkpoint
        )
        var trials = try await store.trials(ofStudy: study.id)
        var requeued: [Trial] = []
        for index in trials.indices where trials[index].state == .running {
            var trial = trials[index]
            // Its runner died; its processes, in their own sessions, may not have.
            let directory = Self.trialDirectory(
                options.trialsDirectory, study: study.definition.name, trial: trial.number)
            if ProcessReaper.reap(in: directory) {
                options.logger.notice(
                    "Killed the processes of a trial whose runner died",
                    metadata: ["trial.number": "\(trial.number)"]
                )
            }
            if await SlurmRunner.cancelRecordedJob(in: directory) {
                options.logger.notice(
                    "Cancelled the Slurm job of a trial whose runner died",
                    metadata: ["trial.number": "\(trial.number)"]
                )
            }
            switch study.definition.lostTrials {
            case .requeue:
                trial.state = .pending
                requeued.append(trial)
            case .fail:
                trial.state = .failed
                trial.finishedAt = Date()
                trial.error = TrialError(
                    stage: .lost,
                    message: "the runner stopped while this trial was running (attempt \(trial.attempt))"
                )
                try strategy.tell(trial)
                try await store.saveFinished(
                    trial,
                    studyID: study.id,
                    checkpoint: try strategy.encodedState(),
                    best: study.best,
                    elapsedSeconds: study.elapsedSeconds
                )
            }
            trials[index] = trial
        }
        if !requeued.isEmpty { try await store.saveRequeued(requeued, studyID: study.id) }
        self.strategy = strategy
        self.history = StudyHistory(trials: trials)
        var queue = trials.filter { $0.state == .pending }
        if trials.isEmpty, let baseline = study.definition.baseline {
            queue.append(Trial(number: 0, configuration: baseline))
        }
        self.queue = queue
        self.nextNumber = max((trials.map(\.number).max() ?? -1) + 1, queue.count)
        self.best = Self.best(of: trials, objective: study.definition.objective)
        self.completedCount = trials.filter { $0.state == .completed }.count
        self.failedCount = trials.filter { $0.state == .failed }.count
        (stopSignals, stopContinuation) = AsyncStream.makeStream(of: StopMode.self)
        for trial in requeued {
            options.logger.info(
                "Trial re-queued after the runner stopped", metadata: ["trial.number": "\(trial.number)"])
        }
    }

    /// Asks the run to stop: the first request drains, a `.cancel` stops running trials.
    ///
    /// Safe to call from a signal handler's task at any time, also before ``run()`` started.
    nonisolated public func requestStop(_ mode: StopMode) {
        stopContinuation.yield(mode)
    }

    /// Runs until the budget is spent, the strategy is exhausted, or a stop request ends it.
    public func run() async throws -> Outcome {
        runStart = ContinuousClock.now
        defer { options.progress.studyFinished() }
        try await store.saveStatus(.running, studyID: study.id, runner: .current, elapsedSeconds: elapsed)
        do {
            try await loop()
        } catch {
            try? await store.saveStatus(.interrupted, studyID: study.id, runner: nil, elapsedSeconds: elapsed)
            throw error
        }
        let status: StudyStatus = stopMode == nil ? .completed : .interrupted
        try await store.saveStatus(status, studyID: study.id, runner: nil, elapsedSeconds: elapsed)
        return Outcome(
            status: status,
            best: best,
            finishedThisRun: finishedThisRun,
            seconds: (ContinuousClock.now - runStart).seconds
        )
    }

    private func loop() async throws {
        let parallel = max(1, options.parallel ?? definition.parallel)
        let signals = stopSignals
        try await withThrowingTaskGroup(of: LoopEvent.self) { group in
            group.addTask { await LoopEvent.nextStop(signals) }
            let interval = options.heartbeatInterval
            group.addTask { await LoopEvent.after(interval, .heartbeat) }
            var inFlight = 0
            while true {
                if inFlight < parallel {
                    for trial in try await launch(count: parallel - inFlight) {
                        inFlight += 1
                        let context = makeContext(for: trial)
                        let executor = self.executor
                        group.addTask { .finished(await executor.execute(trial, context: context)) }
                    }
                }
                if inFlight == 0 { break }
                switch try await group.next() {
                case .finished(let trial):
                    inFlight -= 1
                    try await record(trial)
                case .stop(let mode):
                    stopMode = LoopEvent.stop(
                        mode, current: stopMode, running: inFlight, logger: options.logger, group: &group,
                        signals: signals)
                case .heartbeat:
                    try await store.saveHeartbeat(studyID: study.id, elapsedSeconds: elapsed)
                    if stopMode != .cancel { group.addTask { await LoopEvent.after(interval, .heartbeat) } }
                case .poll:
                    break
                case nil:
                    inFlight = 0
                }
            }
            group.cancelAll()
        }
    }

    /// Picks up to `count` trials to start, re-queued ones first, and saves them as running together with
    /// the checkpoint of the strategy that proposed them.
    private func launch(count: Int) async throws -> [Trial] {
        guard stopMode == nil, !budgetSpent else { return [] }
        var launching: [Trial] = []
        while launching.count < count, !queue.isEmpty {
            launching.append(queue.removeFirst())
        }
        var asked = false
        let room = min(count - launching.count, remainingTrials)
        if room > 0, !strategy.isExhausted {
            let proposals = try strategy.ask(room, history: history)
            asked = true
            for configuration in try admit(
                proposals, room: room, definition: definition, history: history, launching: launching)
            {
                launching.append(Trial(number: nextNumber, configuration: configuration))
                nextNumber += 1
            }
        }
        guard !launching.isEmpty || asked else { return [] }
        let now = Date()
        for index in launching.indices {
            launching[index].state = .running
            launching[index].attempt += 1
            launching[index].startedAt = now
            launching[index].error = nil
            history.record(launching[index])
        }
        try await store.saveLaunched(
            launching,
            studyID: study.id,
            checkpoint: asked ? try strategy.encodedState() : nil
        )
        if let last = launching.last { options.progress.trialsStarted(progressEvent(for: last)) }
        return launching
    }

    /// Records a finished trial: tells the strategy and saves trial, checkpoint and best in one write. An
    /// interrupted trial goes back to pending instead, unseen by the strategy.
    private func record(_ finished: Trial) async throws {
        var trial = finished
        if trial.error?.stage == .interrupted {
            trial.returnToPending()
            history.record(trial)
            try await store.saveRequeued([trial], studyID: study.id)
            options.logger.info(
                "Trial interrupted; it runs again on resume", metadata: ["trial.number": "\(trial.number)"])
            return
        }
        history.record(trial)
        try strategy.tell(trial)
        best = definition.objective.best(best, after: trial)
        try await store.saveFinished(
            trial,
            studyID: study.id,
            checkpoint: try strategy.encodedState(),
            best: best,
            elapsedSeconds: elapsed
        )
        finishedThisRun += 1
        if trial.state == .completed { completedCount += 1 } else { failedCount += 1 }
        options.progress.trialFinished(progressEvent(for: trial))
    }

    private func progressEvent(for trial: Trial) -> ProgressEvent {
        ProgressEvent(
            trial: trial,
            space: definition.space,
            objective: definition.objective,
            best: best,
            finishedCount: history.finished.count,
            expectedCount: expectedCount,
            runningCount: history.running.count,
            completedCount: completedCount,
            failedCount: failedCount,
            elapsedSeconds: elapsed,
            finishedThisRun: finishedThisRun,
            runSeconds: (ContinuousClock.now - runStart).seconds
        )
    }

    private func makeContext(for trial: Trial) -> TrialContext {
        Self.context(for: trial, definition: definition, options: options, launches: launches)
    }

    /// The context a trial of `definition` runs in: its directory, logger and the shared launch limiter.
    static func context(
        for trial: Trial,
        definition: StudyDefinition,
        options: Options,
        launches: LaunchLimiter
    ) -> TrialContext {
        var logger = options.logger
        logger[metadataKey: "trial.number"] = "\(trial.number)"
        return TrialContext(
            study: definition.name,
            trial: trial,
            space: definition.space,
            seed: definition.seed,
            directory: Self.trialDirectory(options.trialsDirectory, study: definition.name, trial: trial.number),
            killGrace: definition.timeouts.killGrace,
            logger: logger,
            launches: launches
        )
    }

    /// The directory of a trial's logs and outputs.
    static func trialDirectory(_ root: URL, study: String, trial: Int) -> URL {
        root.appendingPathComponent(study, isDirectory: true).appendingPathComponent(String(trial), isDirectory: true)
    }

    private var elapsed: Double {
        study.elapsedSeconds + (ContinuousClock.now - runStart).seconds
    }

    private var remainingTrials: Int {
        guard let maxTrials = definition.budget.maxTrials else { return .max }
        return max(0, maxTrials - nextNumber)
    }

    private var budgetSpent: Bool { definition.budget.timeIsUp(after: elapsed) }

    /// The number of trials the study will have when done, when known.
    private var expectedCount: Int? {
        let grid = (strategy as? GridSearch)?.pointCount
        switch (definition.budget.maxTrials, grid) {
        case (let trials?, let points?): return min(trials, points)
        case (let trials?, nil): return trials
        case (nil, let points?): return points
        case (nil, nil): return nil
        }
    }

    private static func best(of trials: [Trial], objective: Objective) -> BestTrial? {
        trials.reduce(nil) { objective.best($0, after: $1) }
    }
}

/// A study's loop as its caller drives it: run it, and ask it to stop from a signal handler.
public protocol StudyLoop: Actor {
    /// Asks the run to stop: the first request drains, a `.cancel` stops running trials.
    nonisolated func requestStop(_ mode: StudyRunner.StopMode)

    /// Runs until the study is done or a stop request ends the run.
    func run() async throws -> StudyRunner.Outcome
}

/// Runs `operation`, cancelling it and throwing `timeoutError()` after `seconds` (no limit when `nil`).
///
/// Returns or throws only once the operation has wound down, so the processes it started are gone.
public func withTimeout<T: Sendable>(
    _ seconds: Double?,
    error timeoutError: @escaping @Sendable () -> any Error,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    guard let seconds else { return try await operation() }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw timeoutError()
        }
        return value
    }
}

/// A run that cannot go on.
public enum RunnerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Another live process is running the study.
    case studyBusy(String, RunnerIdentity)
    /// The strategy broke its contract.
    case strategy(String)
    /// The runner was set up without something the study needs.
    case configuration(String)

    /// A message for a person.
    public var description: String {
        switch self {
        case .studyBusy(let name, let runner):
            "study '\(name)' is being run by process \(runner.pid) on \(runner.host); stop it first"
        case .strategy(let message), .configuration(let message):
            message
        }
    }
}

extension RunnerIdentity {
    /// This process.
    public static var current: Self {
        Self(host: ProcessInfo.processInfo.hostName, pid: getpid())
    }

    /// Whether this identity is a live process on this host (a stale one after a crash is not).
    public var isAliveOnThisHost: Bool {
        host == ProcessInfo.processInfo.hostName && processIsAlive(pid)
    }
}
