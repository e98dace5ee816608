import Autotune
import Foundation

/// The part of a study's loop that depends on where the study is kept: one process with its own history over a
/// ``StudyStore`` (``LocalCoordinator``), or one of several workers that decide under the study's lock in a
/// ``SharedStudyStore`` (``SharedCoordinator``).
///
/// Both decide through a ``StudyBook``; the ``StudyLoop`` actor owns the coordinator and calls it from its own
/// isolation only, so a coordinator is a plain class that needs no lock.
protocol StudyCoordinator: AnyObject {
    /// The study.
    var study: StoredStudy { get }

    /// Where the store keeps the study, which trial tokens include.
    var storeLocation: String { get }

    /// Where the study stands, for progress lines: counts, best trial, expected size.
    var standing: StudyStanding { get }

    /// Whether another process may produce work this one can take (re-queued trials, a strategy that changes
    /// its mind once others' trials finish): the loop then looks again after a while when it finds none.
    var waitsForOthers: Bool { get }

    /// How often heartbeats are stamped.
    var heartbeatInterval: Duration { get }

    /// Why the study should give up now rather than spend its budget failing, when it should.
    var failFastReason: String? { get }

    /// The finished trials this coordinator knows of (all of them for one process; as of the last read under
    /// the lock for a worker).
    var finishedTrials: [Trial] { get }

    /// Prepares the run: marks the study as running and recovers what a dead runner left behind.
    func begin(elapsed: Duration) async throws

    /// Up to `room` trials to start now, already saved as running; `done` when the study can produce nothing
    /// more and nothing runs anywhere.
    func obtain(room: Int, elapsed: Duration) async throws -> (trials: [Trial], done: Bool)

    /// Records a trial whose experiment ended; returns whether it was finished (told and saved) rather than
    /// put back to pending.
    func finish(_ trial: Trial, elapsed: Duration) async throws -> Bool

    /// Stamps this run's trials as alive, and takes back trials of runners that stopped stamping theirs.
    func heartbeat(elapsed: Duration) async throws

    /// Records how the run ended and returns the study's status; `nil` when other workers go on with it.
    func end(done: Bool, stopped: Bool, elapsed: Duration) async throws -> StudyStatus?

    /// Records that the run failed with an error.
    func abort(elapsed: Duration) async
}

extension StudyCoordinator {
    /// The token trial `number`'s programs carry in their environment.
    func token(trial number: Int) -> String {
        TrialProcesses.token(storeLocation: storeLocation, study: study.definition.name, trial: number)
    }

    /// Trial `number` as a runner that takes it back from `previousRunner` sees it, its directory under
    /// `trialsDirectory`.
    func abandoned(trial number: Int, trialsDirectory: URL, previousRunner: RunnerIdentity?) -> AbandonedTrial {
        AbandonedTrial(
            directory: StudyLoop.trialDirectory(trialsDirectory, study: study.definition.name, trial: number),
            token: token(trial: number), previousRunner: previousRunner)
    }
}

/// Where a study stands, as progress lines show it.
struct StudyStanding: Sendable {
    /// How many trials are in each state, every worker's included.
    var counts: [TrialState: Int] = [:]
    /// The best trial so far.
    var best: BestTrial?
    /// The number of trials the study will have, when known.
    var expected: Int?
}

extension StudyBook {
    /// The book's standing, with the strategy's own size when it has one.
    func standing(strategyTotal: Int?) -> StudyStanding {
        StudyStanding(counts: counts, best: best, expected: expectedCount(strategyTotal: strategyTotal))
    }
}
