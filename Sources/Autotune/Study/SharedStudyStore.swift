public import Foundation

/// A store that several workers, possibly on different machines, share one study through.
///
/// Trials are claimed by one worker at a time; everything that reads or changes the strategy (ask, tell,
/// checkpoint) runs under the study's lock, one writer at a time, on the latest checkpoint. A worker that dies
/// stops stamping its trials, and a surviving worker takes them back once their heartbeat is stale.
public protocol SharedStudyStore: StudyStore, ResourceLedger {
    /// Claims the lowest-numbered pending trial (one re-queued after an interruption or a dead worker) for
    /// `worker`, marking it running; `nil` when no pending trial is free.
    ///
    /// Two workers claiming at once never get the same trial.
    func claimPending(studyID: Int64, worker: RunnerIdentity) async throws -> Trial?

    /// Under the study's lock, hands the latest checkpoint and the trials that changed since change `since` to
    /// `decide`, then saves the trials it returns as running, claimed by `worker`, with its checkpoint.
    ///
    /// `since` is the ``SharedStudyState/sequence`` the worker read last (`nil` the first time: every trial), so a
    /// worker keeps a whole book of the study by reading only what moved, whatever the study's size.
    func propose(
        studyID: Int64,
        worker: RunnerIdentity,
        since: Int64?,
        _ decide: (SharedStudyState) async throws -> SharedProposal
    ) async throws -> SharedProposal

    /// Under the study's lock, hands the latest checkpoint and the trials that changed since change `since` to
    /// `decide`, then saves the finished trial with the checkpoint and best it returns.
    func finish(
        _ trial: Trial,
        studyID: Int64,
        elapsedSeconds: Double,
        since: Int64?,
        _ decide: (SharedStudyState) async throws -> SharedVerdict
    ) async throws

    /// Stamps `worker`'s running trials as alive (with the database's clock, so machines need not agree) and
    /// raises the study's running time to `elapsedSeconds` if it is behind.
    func heartbeat(studyID: Int64, worker: RunnerIdentity, elapsedSeconds: Double) async throws

    /// Takes back running trials whose heartbeat is older than `age`, releasing their resource leases: they stay
    /// running, claimed by `worker`, which then re-queues or fails them as the study's book says.
    ///
    /// `cleanUp` runs for each before any other worker can claim it (to end what the dead worker left
    /// running, which a new attempt's records would otherwise replace).
    func reclaimStale(
        studyID: Int64,
        olderThan age: Duration,
        worker: RunnerIdentity,
        cleanUp: (ReclaimedTrial) async -> Void
    ) async throws -> [ReclaimedTrial]
}

/// What a worker sees of a shared study while it holds the study's lock.
public struct SharedStudyState: Sendable {
    /// The latest strategy checkpoint.
    public var checkpoint: Data?
    /// Counts the checkpoint's writes, so a worker knows whether the strategy it holds is the latest.
    public var version: Int64
    /// The trials whose rows changed after the change the worker read last (every trial the first time), in
    /// number order.
    public var changes: [Trial]
    /// The study's latest change: every write of a trial's row moves it. What to pass as `since` next time.
    public var sequence: Int64
    /// The best trial so far.
    public var best: BestTrial?

    /// Creates a snapshot.
    public init(checkpoint: Data?, version: Int64, changes: [Trial], sequence: Int64, best: BestTrial?) {
        self.checkpoint = checkpoint
        self.version = version
        self.changes = changes
        self.sequence = sequence
        self.best = best
    }
}

/// New trials from an ask under the study's lock.
public struct SharedProposal: Sendable {
    /// The trials to start, numbered; saved as running.
    public var trials: [Trial]
    /// The strategy's state after the ask; `nil` when it did not ask.
    public var checkpoint: Data?

    /// Creates a proposal.
    public init(trials: [Trial], checkpoint: Data?) {
        self.trials = trials
        self.checkpoint = checkpoint
    }
}

/// The checkpoint and best trial after a tell under the study's lock.
public struct SharedVerdict: Sendable {
    /// The strategy's state after the tell.
    public var checkpoint: Data?
    /// The study's best trial afterwards.
    public var best: BestTrial?

    /// Creates a verdict.
    public init(checkpoint: Data?, best: BestTrial?) {
        self.checkpoint = checkpoint
        self.best = best
    }
}

/// A trial taken back from a worker that stopped stamping it.
public struct ReclaimedTrial: Sendable, Hashable {
    /// The trial, still running, now claimed by the reclaiming worker.
    public var trial: Trial
    /// The worker that had it.
    public var previousWorker: RunnerIdentity?

    /// Creates a record.
    public init(trial: Trial, previousWorker: RunnerIdentity?) {
        self.trial = trial
        self.previousWorker = previousWorker
    }
}
