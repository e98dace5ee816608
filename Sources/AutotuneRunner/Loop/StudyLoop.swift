public import Autotune
public import Foundation
public import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs a study: obtains trials to start, runs up to `parallel` experiments at once, records each result as
/// it arrives, and stops when the study is done or a stop is requested.
///
/// There is one loop for a study run by one process over a ``StudyStore`` and for one of several workers
/// sharing a study through a ``SharedStudyStore``: what differs (where trials come from, under which lock the
/// strategy is asked and told) is the coordinator's; drain and cancel, progress, heartbeats and the time budget
/// are the loop's. Experiments run in child tasks of one task group, outside the actor; each one's end is
/// recorded as soon as it arrives and its slot refilled at once, without waiting for the others.
public actor StudyLoop {
    /// How a stop request treats the trials that are running.
    public enum StopMode: Sendable, Hashable {
        /// Let them finish, ask for nothing new.
        case drain
        /// Stop them now; they go back to pending and run again on resume.
        case cancel
    }

    /// How a run ended.
    public struct Outcome: Sendable, Hashable {
        /// The study's status afterwards (`running` when other workers go on with it).
        public var status: StudyStatus
        /// The best trial, if any completed.
        public var best: BestTrial?
        /// Trials that finished during this run.
        public var finishedThisRun: Int
        /// Seconds this run took.
        public var seconds: Double
        /// Why the run gave up early (``StudyDefinition/failFast``), when it did.
        public var gaveUp: String?
    }

    /// Settings of a run that are not part of the study's definition.
    public struct Options: Sendable {
        /// Overrides the definition's `parallel` for this run.
        public var parallel: Int?
        /// Where each trial's directory (`<study>/<number>`) is made.
        public var trialsDirectory: URL
        /// Receives a line per finished trial.
        public var progress: any ProgressReporter
        /// The logger.
        public var logger: Logger
        /// Where GPU leases and port reservations are kept; required when the study uses GPUs or ports.
        public var ledger: (any ResourceLedger)?
        /// The GPUs trials may lease (discovered, declared in the task file, or given with `--gpus`).
        public var gpus: [GPU]
        /// The host's locks on GPUs and ports, which keep studies with separate databases apart (``HostLocks``);
        /// `nil` leaves it to the ledger alone.
        public var hostLocks: HostLocks? = .host
        /// How often running trials and the study are stamped as alive.
        public var heartbeatInterval: Duration = .seconds(5)
        /// The bytes left on the file system holding a path (``DiskSpace/free(at:)``; tests give their own).
        public var freeSpace: @Sendable (URL) -> Int64? = { DiskSpace.free(at: $0) }

        /// The values known constraints may read besides parameters: `gpus`, the size of the GPU pool, when there
        /// is one.
        public var constants: [String: Double] { gpus.isEmpty ? [:] : ["gpus": Double(gpus.count)] }

        /// Creates options.
        public init(
            parallel: Int? = nil,
            trialsDirectory: URL,
            progress: any ProgressReporter = SilentProgress(),
            logger: Logger,
            ledger: (any ResourceLedger)? = nil,
            gpus: [GPU] = []
        ) {
            self.parallel = parallel
            self.trialsDirectory = trialsDirectory
            self.progress = progress
            self.logger = logger
            self.ledger = ledger
            self.gpus = gpus
        }
    }

    private let coordinator: any StudyCoordinator
    private let executor: TrialExecutor
    private let launches: LaunchLimiter
    private let options: Options
    /// Whether the experiment reads the nearest finished trial's metrics.
    private let usesNeighbour: Bool
    private var stopMode: StopMode?
    private var gaveUp: String?
    private var finishedThisRun = 0
    private var runStart = ContinuousClock.now
    private let stopSignals: AsyncStream<StopMode>
    /// What the coordinator last said of the study.
    private var view = CoordinatorView(standing: StudyStanding(), failFastReason: nil, finishedTrials: [])
    private let stopContinuation: AsyncStream<StopMode>.Continuation

    private var definition: StudyDefinition { coordinator.study.definition }

    private init(coordinator: any StudyCoordinator, experiment: any Experiment, options: Options) throws {
        self.coordinator = coordinator
        self.options = options
        self.usesNeighbour = experiment.usesNeighbour
        self.executor = try TrialExecutor(
            definition: coordinator.study.definition, experiment: experiment, options: options,
            storeLocation: coordinator.storeLocation)
        self.launches = LaunchLimiter(limit: coordinator.study.definition.resources.maxConcurrentLaunches)
        (stopSignals, stopContinuation) = AsyncStream.makeStream(of: StopMode.self)
    }

    /// A loop for a study this process runs alone: the strategy is restored from its checkpoint, and trials a
    /// runner that died left running are dealt with when the run begins (re-queued or failed, as the
    /// definition says, once what they left running is ended).
    ///
    /// Throws ``AutotuneError`` when another live process runs the study.
    public init(
        study: StoredStudy,
        store: any StudyStore,
        registry: StrategyRegistry = .standard,
        experiment: any Experiment,
        options: Options
    ) async throws {
        let coordinator = try await LocalCoordinator(
            study: study, store: store, registry: registry, experiment: experiment, options: options)
        try self.init(coordinator: coordinator, experiment: experiment, options: options)
    }

    /// A loop for one of several workers sharing `study` through `store`; a trial whose heartbeat is older
    /// than `staleAfter` belongs to a worker that died and is taken back.
    public init(
        study: StoredStudy,
        sharedStore store: any SharedStudyStore,
        registry: StrategyRegistry = .standard,
        experiment: any Experiment,
        options: Options,
        staleAfter: Duration = .seconds(30)
    ) throws {
        let coordinator = SharedCoordinator(
            study: study, store: store, registry: registry, experiment: experiment, options: options,
            staleAfter: staleAfter)
        try self.init(coordinator: coordinator, experiment: experiment, options: options)
    }

    /// Asks the run to stop: the first request drains, a `.cancel` stops running trials.
    ///
    /// Safe to call from a signal handler's task at any time, also before ``run()`` started.
    nonisolated public func requestStop(_ mode: StopMode) {
        pendingStops.withLock { $0.append(mode) }
        stopContinuation.yield(mode)
    }

    /// Stops requested and not yet applied. The stream only wakes the loop: a stop requested before the loop
    /// runs (a Ctrl-C while the database opens) sits in the stream until a child task reads it, and the loop's
    /// first ask would start trials in the meantime; the loop takes these before every decision instead.
    private nonisolated let pendingStops = Mutex<[StopMode]>([])

    /// Runs until the study is done or a stop request ends this run.
    public func run() async throws -> Outcome {
        runStart = ContinuousClock.now
        defer { options.progress.studyFinished() }
        let done: Bool
        do {
            let coordinator = self.coordinator
            let elapsed = self.elapsed
            view = try await Self.shielded { try await coordinator.begin(elapsed: elapsed) }
            done = try await loop()
        } catch {
            await coordinator.abort(elapsed: elapsed)
            throw error
        }
        let status = try await coordinator.end(done: done, stopped: stopMode != nil, elapsed: elapsed)
        return Outcome(
            status: status ?? .running,
            best: view.standing.best,
            finishedThisRun: finishedThisRun,
            seconds: (ContinuousClock.now - runStart).seconds,
            gaveUp: gaveUp
        )
    }

    /// Runs `operation` to its end even when the calling task is cancelled: what the coordinator decides and
    /// saves (trials started with their checkpoint, a result with the strategy told of it) must not be cut in
    /// half by a second Ctrl-C, which cancels the loop's child tasks.
    private static func shielded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        // A detached task is not cancelled with its awaiter; awaiting its value waits for it to finish.
        try await Task.detached { try await operation() }.value
    }

    /// Runs trials until the study is done (returns true) or this run has nothing left to do.
    ///
    /// The coordinator's work (asking, telling, recording, taking back) runs in child tasks, one at a time: its
    /// "lane". Finished trials wait for the lane in the order they finished; meanwhile the loop keeps handling
    /// stop requests, heartbeats and progress refreshes.
    private func loop() async throws -> Bool {
        let parallel = max(1, options.parallel ?? definition.parallel)
        let signals = stopSignals
        let coordinator = self.coordinator
        let interval = coordinator.heartbeatInterval
        let poll = Self.pollInterval
        let refresh = options.progress.refreshInterval
        return try await withThrowingTaskGroup(of: LoopEvent.self) { group in
            group.addTask { await LoopEvent.nextStop(signals) }
            group.addTask { await LoopEvent.after(interval, .heartbeat) }
            if let refresh { group.addTask { await LoopEvent.after(refresh, .refresh) } }
            var inFlight = 0
            var fatal: AutotuneError?
            var laneBusy = false
            var finishing: [Trial] = []
            var reclaimWanted = false
            var mayObtain = true
            var polling = false
            var done = false
            var latest: Trial?
            func applyPendingStops() {
                for mode in pendingStops.withLock({ queue in
                    defer { queue.removeAll() }
                    return queue
                }) {
                    stopMode = LoopEvent.stop(
                        mode, current: stopMode, running: inFlight, logger: options.logger, group: &group,
                        signals: signals, listen: false)
                }
            }
            while true {
                // A cancelled loop (its caller gave up) stops like a second Ctrl-C.
                if Task.isCancelled, stopMode != .cancel {
                    stopMode = .cancel
                    group.cancelAll()
                }
                applyPendingStops()
                if !laneBusy {
                    let elapsed = self.elapsed
                    if !finishing.isEmpty {
                        let trial = finishing.removeFirst()
                        laneBusy = true
                        group.addTask {
                            let (finished, view) = try await Self.shielded {
                                try await coordinator.finish(trial, elapsed: elapsed)
                            }
                            return .recorded(trial, finished: finished, view: view)
                        }
                    } else if reclaimWanted {
                        reclaimWanted = false
                        laneBusy = true
                        group.addTask {
                            .reclaimed(try await Self.shielded { try await coordinator.reclaim(elapsed: elapsed) })
                        }
                    } else if stopMode == nil, !done, mayObtain, inFlight < parallel {
                        let room = parallel - inFlight
                        laneBusy = true
                        mayObtain = false
                        group.addTask {
                            let (trials, done, view) = try await Self.shielded {
                                try await coordinator.obtain(room: room, elapsed: elapsed)
                            }
                            return .obtained(trials, done: done, view: view)
                        }
                    }
                }
                if !laneBusy, inFlight == 0, finishing.isEmpty,
                    done || stopMode != nil || (!coordinator.waitsForOthers && !mayObtain)
                {
                    break
                }
                switch try await group.next() {
                case .finished(var trial):
                    inFlight -= 1
                    if fatal == nil, let full = diskFull(trial) {
                        // Not the configuration's fault: the trial goes back to pending and the study stops, as
                        // it does when its database cannot be written, rather than fail every trial that follows.
                        trial.error = TrialError(stage: .interrupted, message: full.message)
                        fatal = full
                        stopMode = LoopEvent.stop(
                            .cancel, current: stopMode, running: inFlight, logger: options.logger, group: &group,
                            signals: signals)
                    }
                    finishing.append(trial)
                case .obtained(let trials, let finished, let view):
                    laneBusy = false
                    self.view = view
                    done = finished
                    for trial in trials {
                        inFlight += 1
                        let context = makeContext(for: trial)
                        let executor = self.executor
                        group.addTask { .finished(await executor.execute(trial, context: context)) }
                    }
                    if let last = trials.last {
                        latest = last
                        options.progress.trialsStarted(progressEvent(for: last))
                    }
                    if trials.isEmpty, !done, coordinator.waitsForOthers, !polling {
                        polling = true
                        group.addTask { await LoopEvent.after(poll, .poll) }
                    }
                case .recorded(let trial, let finished, let view):
                    laneBusy = false
                    mayObtain = true
                    self.view = view
                    guard finished else { break }
                    finishedThisRun += 1
                    latest = trial
                    options.progress.trialFinished(progressEvent(for: trial))
                    if gaveUp == nil, let reason = view.failFastReason {
                        // Running trials would only fail the same way: stop them (they go back to pending).
                        gaveUp = reason
                        stopMode = LoopEvent.stop(
                            .cancel, current: stopMode, running: inFlight, logger: options.logger, group: &group,
                            signals: signals)
                    }
                case .reclaimed(let view):
                    laneBusy = false
                    if let view {
                        self.view = view
                        mayObtain = true
                    }
                case .stop:
                    applyPendingStops()
                    // Still listening for the next request, unless everything is already cancelled (a cancelled
                    // listener would only wake the loop again at once).
                    if stopMode != .cancel { group.addTask { await LoopEvent.nextStop(signals) } }
                case .heartbeat:
                    let elapsed = self.elapsed
                    group.addTask {
                        try await Self.shielded { try await coordinator.stampHeartbeat(elapsed: elapsed) }
                        return .stamped
                    }
                case .stamped:
                    if coordinator.waitsForOthers { reclaimWanted = true }
                    if stopMode != .cancel { group.addTask { await LoopEvent.after(interval, .heartbeat) } }
                case .poll:
                    polling = false
                    mayObtain = true
                case .refresh:
                    if let latest { options.progress.refresh(progressEvent(for: latest)) }
                    if let refresh, stopMode != .cancel { group.addTask { await LoopEvent.after(refresh, .refresh) } }
                case nil:
                    inFlight = 0
                    laneBusy = false
                }
            }
            group.cancelAll()
            if let fatal { throw fatal }
            return done
        }
    }

    /// When `trial` failed while the disk holding its directory is full, the error that stops the study.
    private func diskFull(_ trial: Trial) -> AutotuneError? {
        guard trial.state == .failed, trial.error?.stage != .interrupted else { return nil }
        let directory = Self.trialDirectory(options.trialsDirectory, study: definition.name, trial: trial.number)
        guard let free = options.freeSpace(directory), free < DiskSpace.fullBelow else { return nil }
        let cause = trial.error.map { " (it said: \($0.summary))" } ?? ""
        return AutotuneError(
            .diskFull,
            "the disk holding \(options.trialsDirectory.path) is full (\(free / 1024) KiB free): trial \(trial.number) failed\(cause); it goes back to pending and the study stops: free some space and `autotune resume`"
        )
    }

    /// How long a worker waits before looking again for work another worker may have made.
    static let pollInterval: Duration = .milliseconds(500)

    private func progressEvent(for trial: Trial) -> ProgressEvent {
        let standing = view.standing
        return ProgressEvent(
            trial: trial,
            space: definition.space,
            objective: definition.objective,
            best: standing.best,
            finishedCount: standing.counts.filter { $0.key.isFinished }.map(\.value).reduce(0, +),
            expectedCount: standing.expected,
            runningCount: standing.counts[.running] ?? 0,
            completedCount: standing.counts[.completed] ?? 0,
            failedCount: standing.counts[.failed] ?? 0,
            elapsedSeconds: elapsed.seconds,
            finishedThisRun: finishedThisRun,
            runSeconds: (ContinuousClock.now - runStart).seconds
        )
    }

    private func makeContext(for trial: Trial) -> TrialContext {
        var logger = options.logger
        logger[metadataKey: "trial.number"] = "\(trial.number)"
        var context = TrialContext(
            study: definition.name,
            trial: trial,
            space: definition.space,
            seed: definition.seed,
            directory: Self.trialDirectory(options.trialsDirectory, study: definition.name, trial: trial.number),
            killGrace: definition.timeouts.killGrace,
            logger: logger,
            launches: launches
        )
        context.token = coordinator.token(trial: trial.number)
        context.constraints = definition.objective.constraints
        if usesNeighbour { context.neighbour = nearest(to: trial.configuration) }
        return context
    }

    /// The metrics of the finished trial nearest `configuration` in the unit cube, among those that measured
    /// something.
    private func nearest(to configuration: Configuration) -> [String: Double]? {
        guard let point = try? definition.space.unitPoint(of: configuration) else { return nil }
        var best: (distance: Double, metrics: [String: Double])?
        for trial in view.finishedTrials where !trial.metrics.isEmpty {
            guard let other = try? definition.space.unitPoint(of: trial.configuration) else { continue }
            let distance = zip(point, other).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            if distance < best?.distance ?? .infinity { best = (distance, trial.metrics) }
        }
        return best?.metrics
    }

    /// The directory of a trial's logs and outputs.
    static func trialDirectory(_ root: URL, study: String, trial: Int) -> URL {
        root.appendingPathComponent(study, isDirectory: true).appendingPathComponent(String(trial), isDirectory: true)
    }

    /// The study's running time over every run, this one included.
    private var elapsed: Duration {
        .seconds(coordinator.study.elapsedSeconds) + (ContinuousClock.now - runStart)
    }
}

/// Runs `operation`, cancelling it and throwing `timeoutError()` after `limit` (no limit when `nil`).
///
/// Returns or throws only once the operation has wound down, so the processes it started are gone.
public func withTimeout<T: Sendable>(
    _ limit: Duration?,
    error timeoutError: @escaping @Sendable () -> any Error,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    guard let limit else { return try await operation() }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw timeoutError()
        }
        return value
    }
}

/// This process's start mark, read once: it does not change while the process lives.
private let ownStartMark = processStartMark(getpid())

extension RunnerIdentity {
    /// This process.
    public static var current: Self {
        Self(host: ProcessInfo.processInfo.hostName, pid: getpid(), started: ownStartMark)
    }

    /// Whether this identity is a live process on this host: a stale one after a crash is not, nor is its pid
    /// given to a later process.
    public var isAliveOnThisHost: Bool {
        host == ProcessInfo.processInfo.hostName && processIsAlive(pid, started: started)
    }
}
